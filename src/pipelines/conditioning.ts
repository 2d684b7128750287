// Prompt text → text-encoder hidden states, as A1111 or ComfyUI compute them.
//
// A1111 (modules/prompt_parser.py, sd_hijack_clip.py, sd_emphasis.py): extra networks cut out, AND
// split, each part's prompt-editing schedule; all texts of one part's schedule are encoded together,
// chunk by chunk (chunk i of every text in one batch, missing chunks as empty ones), the chunks
// concatenated along the tokens; emphasis multiplies each token's hidden vector and ("Original")
// restores the mean of that batch-chunk. Cond and uncond keep their own lengths (the denoiser deals
// with a difference as A1111 does).
// ComfyUI (comfy/sd1_clip.py): its own weight syntax and chunking, all chunks of a prompt in one
// batch, weighted tokens interpolated towards the encoding of an empty prompt.
import type { EmbeddingLibrary } from '../adapters/textual-inversion.js';
import { formatTiHashes } from '../adapters/textual-inversion.js';
import type { StableDiffusionModel, TextEncoderView } from '../models/sd-model.js';
import { chunkA1111, chunkComfy, type EmbeddingMatcher, type EmbeddingVectors, type PromptChunk } from '../text/chunking.js';
import type { ClipTokenizer } from '../text/clip-tokenizer.js';
import { parseExtraNetworks, type ExtraNetworkParams } from '../text/extra-networks.js';
import { promptSchedule, splitAnd, stripComments, type ScheduleOptions } from '../text/prompt-a1111.js';
import { Tensor } from '../tensor/tensor.js';

const CHUNK = 75;
const WINDOW = 77;
/** CLIP's end-of-text id (both SDXL tokenizers). */
const EOS = 49407;

// ------------------------------------------------------------------------------ plain (no syntax)

export function promptChunks(tokenizer: ClipTokenizer, text: string, padId: number, minChunks = 1): number[][] {
  const ids = tokenizer.encode(text);
  const chunks: number[][] = [];
  for (let i = 0; i < ids.length || chunks.length < minChunks; i += CHUNK) {
    const part = ids.slice(i, i + CHUNK);
    chunks.push([tokenizer.bos, ...part, tokenizer.eos, ...new Array(CHUNK - part.length).fill(padId)]);
  }
  return chunks;
}

/** Hidden states [1, 77·chunks, W] for one prompt read as plain text (no weights, no schedules). */
export async function encodePrompt(model: StableDiffusionModel, tokenizer: ClipTokenizer, text: string, clipSkip: number, minChunks = 1): Promise<Tensor> {
  const chunks = promptChunks(tokenizer, text, model.padTokenId, minChunks);
  const ids = new Tensor('i64', [chunks.length, 77], BigInt64Array.from(chunks.flat(), (v) => BigInt(v)));
  const hidden = await model.encodeText(ids, clipSkip);
  const w = hidden.shape[2];
  return Tensor.f32([1, chunks.length * 77, w], hidden.toFloat32Array());
}

export function tokenCount(tokenizer: ClipTokenizer, text: string): number {
  return tokenizer.encode(text).length;
}

/** Repeats [1, T, W] to [B, T, W]. */
export function repeatBatch(t: Tensor, batch: number): Tensor {
  const src = t.toFloat32Array();
  const out = new Float32Array(src.length * batch);
  for (let b = 0; b < batch; b++) out.set(src, b * src.length);
  return Tensor.f32([batch, ...t.shape.slice(1)], out);
}

/** Cond and uncond for a batch read as plain text, padded to the same number of chunks. */
export async function encodePair(model: StableDiffusionModel, tokenizer: ClipTokenizer, prompt: string, negative: string, clipSkip: number, batch: number): Promise<{ cond: Tensor; uncond: Tensor }> {
  const n = Math.max(1, Math.ceil(tokenCount(tokenizer, prompt) / CHUNK), Math.ceil(tokenCount(tokenizer, negative) / CHUNK));
  const cond = await encodePrompt(model, tokenizer, prompt, clipSkip, n);
  const uncond = await encodePrompt(model, tokenizer, negative, clipSkip, n);
  return { cond: repeatBatch(cond, batch), uncond: repeatBatch(uncond, batch) };
}

// ------------------------------------------------------------------------------ types

export type PromptSyntax = 'a1111' | 'comfy';
export const PROMPT_SYNTAXES: readonly PromptSyntax[] = ['a1111', 'comfy'];

/**
 * A1111's emphasis option: 'original' (multiply, restore the mean; the default), 'no-norm'
 * (multiply only), 'ignore' (parse brackets, apply nothing), 'off' (A1111 "None": brackets are text).
 */
export type EmphasisMode = 'original' | 'no-norm' | 'ignore' | 'off';
export const EMPHASIS_MODES: readonly EmphasisMode[] = ['original', 'no-norm', 'ignore', 'off'];
const EMPHASIS_INFOTEXT: Record<EmphasisMode, string> = { original: 'Original', 'no-norm': 'No norm', ignore: 'Ignore', off: 'None' };

/** Hidden states of one prompt text: [tokens, width], tokens a multiple of 77. */
export interface CondTensor {
  readonly data: Float32Array;
  readonly tokens: number;
  readonly width: number;
  /** SDXL's vector conditioning of this prompt (pooled text + sizes), which the UNet's label_emb takes. */
  readonly y?: Float32Array;
}

/** A1111's ScheduledPromptConditioning: used while the denoiser's step counter is ≤ endAtStep. */
export interface ScheduledCond {
  readonly endAtStep: number;
  readonly cond: CondTensor;
}

/** One AND part of the positive prompt. */
export interface ComposableCond {
  readonly weight: number;
  readonly schedule: readonly ScheduledCond[];
}

/** What the denoiser needs: the positive prompt's AND parts and the negative prompt, each scheduled. */
export interface TextConditioning {
  readonly cond: readonly ComposableCond[];
  readonly uncond: readonly ScheduledCond[];
}

export interface ConditioningResult extends TextConditioning {
  /** Infotext fields A1111 would add (`TI hashes`, `Emphasis`). */
  readonly infotext: ReadonlyArray<readonly [string, string | undefined]>;
  /** Extra-network tags taken out of the positive prompt (`<lora:name:0.8>` …), for the loaders. */
  readonly extraNetworks: Record<string, ExtraNetworkParams[]>;
}

/**
 * The model surface conditioning needs (tests may pass a stand-in): an SD1/SD2 model or one SDXL
 * text encoder. `encodeWithPooled` (OpenCLIP-G) also gives the pooled output of each window.
 */
export type TextEncoderLike = Pick<StableDiffusionModel, 'padTokenId' | 'textWidth' | 'encodeText' | 'encodeEmbeds' | 'tokenEmbeddings'>
  & { encodeWithPooled?: TextEncoderView['encodeWithPooled'] };

export interface ConditioningOptions {
  /** Sampling steps: prompt-editing switch points are read against them. */
  readonly steps: number;
  readonly syntax?: PromptSyntax;
  readonly emphasis?: EmphasisMode;
  readonly clipSkip?: number;
  /** A1111 `comma_padding_backtrack` (20). */
  readonly commaBacktrack?: number;
  /** Hires second pass / old timelines, as A1111's `get_learned_conditioning_prompt_schedules`. */
  readonly schedule?: ScheduleOptions;
  /** Strip `#` comments (A1111's default; ignored for the comfy syntax). */
  readonly stripComments?: boolean;
  readonly embeddings?: EmbeddingLibrary;
  readonly warn?: (message: string) => void;
  /** How texts become hidden states; by default the model's one text encoder (SD1/SD2). SDXL passes its own. */
  readonly encoder?: PromptEncoder;
}

/** Turns prompt texts into conditioning, in either syntax; `negative` says which prompt of the pair the texts are. */
export interface PromptEncoder {
  a1111(texts: readonly string[], opts: A1111TextOptions, negative: boolean): Promise<CondTensor[]>;
  comfy(text: string, opts: ComfyPromptOptions, negative: boolean): Promise<CondTensor>;
}

/** The encoder of SD1/SD2 models: their single text encoder. */
export function singleEncoder(model: TextEncoderLike, tokenizer: ClipTokenizer): PromptEncoder {
  return {
    a1111: (texts, opts) => encodeA1111Texts(model, tokenizer, texts, opts),
    comfy: (text, opts) => encodeComfyPrompt(model, tokenizer, text, opts),
  };
}

// ------------------------------------------------------------------------------ encoding windows

/** One 77-token text-encoder input: ids, with some positions replaced by embedding vectors. */
interface Window {
  readonly ids: number[];
  readonly vectors: { readonly pos: number; readonly row: Float32Array }[];
}

function windowKey(w: Window, vectorIds: Map<Float32Array, number>): string {
  let key = w.ids.join(',');
  for (const v of w.vectors) {
    if (!vectorIds.has(v.row)) vectorIds.set(v.row, vectorIds.size);
    key += `|${v.pos}:${vectorIds.get(v.row)}`;
  }
  return key;
}

/** Hidden states [n·77·W] of windows and, for encoders that have one, each window's pooled output [n·E]. */
interface Encoded {
  readonly hidden: Float32Array;
  readonly pooled?: Float32Array;
}

/** Encodes windows as one batch (identical windows once). */
async function encodeWindows(model: TextEncoderLike, windows: readonly Window[], clipSkip: number): Promise<Encoded> {
  const W = model.textWidth;
  const vectorIds = new Map<Float32Array, number>();
  const unique: Window[] = [];
  const slot = new Map<string, number>();
  const index = windows.map((w) => {
    const k = windowKey(w, vectorIds);
    let i = slot.get(k);
    if (i === undefined) {
      i = unique.push(w) - 1;
      slot.set(k, i);
    }
    return i;
  });
  let input: Tensor;
  if (unique.some((w) => w.vectors.length > 0)) {
    const embeds = await model.tokenEmbeddings(unique.flatMap((w) => w.ids));
    unique.forEach((w, b) => {
      for (const v of w.vectors) embeds.set(v.row, (b * WINDOW + v.pos) * W);
    });
    input = Tensor.f32([unique.length, WINDOW, W], embeds);
  } else {
    input = new Tensor('i64', [unique.length, WINDOW], BigInt64Array.from(unique.flatMap((w) => w.ids), (v) => BigInt(v)));
  }
  let hidden: Float32Array;
  let pooledRows: Float32Array | undefined;
  if (model.encodeWithPooled) {
    // The pooled output is read at each window's first EOS (OpenCLIP's argmax of the ids).
    const eos = unique.map((w) => { const i = w.ids.indexOf(EOS); return i < 0 ? WINDOW - 1 : i; });
    const r = await model.encodeWithPooled(input, eos, clipSkip);
    hidden = r.hidden.toFloat32Array();
    pooledRows = r.pooled.toFloat32Array();
  } else {
    hidden = (input.dtype === 'i64' ? await model.encodeText(input, clipSkip) : await model.encodeEmbeds(input, clipSkip)).toFloat32Array();
  }
  const per = WINDOW * W;
  const out = new Float32Array(windows.length * per);
  index.forEach((u, i) => out.set(hidden.subarray(u * per, (u + 1) * per), i * per));
  if (!pooledRows) return { hidden: out };
  const E = pooledRows.length / unique.length;
  const pooled = new Float32Array(windows.length * E);
  index.forEach((u, i) => pooled.set(pooledRows!.subarray(u * E, (u + 1) * E), i * E));
  return { hidden: out, pooled };
}

// ------------------------------------------------------------------------------ emphasis

/**
 * A1111 `sd_emphasis` on z [n, 77, W] (in place) with multipliers [n][77]. `f32` rounds every
 * step to float32 as torch does on a float32 tensor; the means are accumulated in float64.
 */
export function applyEmphasis(z: Float32Array | Float64Array, multipliers: readonly (readonly number[])[], width: number, mode: EmphasisMode, f32 = z instanceof Float32Array): void {
  if (mode === 'ignore' || mode === 'off') return;
  const r = f32 ? Math.fround : (v: number) => v;
  const mean = () => {
    let s = 0;
    for (let i = 0; i < z.length; i++) s += z[i];
    return r(s / z.length);
  };
  const before = mode === 'original' ? mean() : 0;
  multipliers.forEach((row, b) => {
    row.forEach((m, t) => {
      const mm = r(m);
      const o = (b * row.length + t) * width;
      for (let c = 0; c < width; c++) z[o + c] = r(z[o + c] * mm);
    });
  });
  if (mode !== 'original') return;
  const ratio = r(before / mean());
  for (let i = 0; i < z.length; i++) z[i] = r(z[i] * ratio);
}

/**
 * ComfyUI `encode_token_weights` weighting of one section z [77, W] (in place): every token whose
 * weight is not 1 becomes `(z − z_empty)·w + z_empty`, position by position.
 */
export function applyComfyWeights(z: Float32Array | Float64Array, empty: Float32Array | Float64Array, weights: readonly number[], width: number, f32 = z instanceof Float32Array): void {
  const r = f32 ? Math.fround : (v: number) => v;
  weights.forEach((w, j) => {
    if (w === 1.0) return;
    const ww = r(w);
    for (let c = 0; c < width; c++) {
      const o = j * width + c;
      z[o] = r(r(r(z[o] - empty[o]) * ww) + empty[o]);
    }
  });
}

// ------------------------------------------------------------------------------ A1111

function a1111Window(chunk: PromptChunk, tokenizer: ClipTokenizer, padId: number): Window {
  let ids = chunk.tokens;
  // OpenCLIP (SD2) pads with 0: A1111 rewrites everything after the first EOS (process_tokens).
  if (padId !== tokenizer.eos) {
    const end = ids.indexOf(tokenizer.eos);
    if (end >= 0) ids = ids.map((t, i) => (i > end ? padId : t));
  }
  const vectors: Window['vectors'][number][] = [];
  for (const fix of chunk.fixes) {
    const { embedding: e, offset } = fix;
    const n = Math.min(WINDOW - offset - 1, e.count);
    for (let k = 0; k < n; k++) vectors.push({ pos: offset + 1 + k, row: e.vectors.subarray(k * e.width, (k + 1) * e.width) });
  }
  return { ids, vectors };
}

export interface A1111TextOptions {
  readonly emphasis: EmphasisMode;
  readonly clipSkip: number;
  readonly commaBacktrack: number;
  readonly matcher?: EmbeddingMatcher;
}

/**
 * A1111 `FrozenCLIPEmbedderWithCustomWords.forward(texts)`: one CondTensor per text, all the same
 * length; for an encoder with a pooled output also each text's pooled vector, that of its first chunk
 * (`zs[0].pooled`), not re-weighted by emphasis.
 */
export async function encodeA1111Texts(model: TextEncoderLike, tokenizer: ClipTokenizer, texts: readonly string[], opts: A1111TextOptions): Promise<CondTensor[]> {
  return (await encodeA1111TextsPooled(model, tokenizer, texts, opts)).conds;
}

export async function encodeA1111TextsPooled(model: TextEncoderLike, tokenizer: ClipTokenizer, texts: readonly string[], opts: A1111TextOptions): Promise<{ conds: CondTensor[]; pooled?: Float32Array[] }> {
  const W = model.textWidth;
  const perText = texts.map((t) => chunkA1111(tokenizer, t, {
    commaBacktrack: opts.commaBacktrack, parseEmphasis: opts.emphasis !== 'off', embeddings: opts.matcher,
  }).chunks);
  const k = Math.max(...perText.map((c) => c.length));
  const empty: PromptChunk = { tokens: [tokenizer.bos, ...new Array<number>(WINDOW - 1).fill(tokenizer.eos)], multipliers: new Array<number>(WINDOW).fill(1), fixes: [] };
  const outs = texts.map(() => new Float32Array(k * WINDOW * W));
  let pooled: Float32Array[] | undefined;
  for (let i = 0; i < k; i++) {
    const batch = perText.map((c) => c[i] ?? empty);
    const r = await encodeWindows(model, batch.map((c) => a1111Window(c, tokenizer, model.padTokenId)), opts.clipSkip);
    const z = r.hidden;
    if (i === 0 && r.pooled) {
      const E = r.pooled.length / texts.length;
      pooled = texts.map((_, j) => r.pooled!.slice(j * E, (j + 1) * E));
    }
    applyEmphasis(z, batch.map((c) => c.multipliers), W, opts.emphasis, true);
    outs.forEach((o, j) => o.set(z.subarray(j * WINDOW * W, (j + 1) * WINDOW * W), i * WINDOW * W));
  }
  return { conds: outs.map((data) => ({ data, tokens: k * WINDOW, width: W })), pooled };
}

async function scheduleConds(encoder: PromptEncoder, schedule: readonly [number, string][], opts: A1111TextOptions, negative: boolean): Promise<ScheduledCond[]> {
  const conds = await encoder.a1111(schedule.map(([, t]) => t), opts, negative);
  return schedule.map(([endAtStep], i) => ({ endAtStep, cond: conds[i] }));
}

// ------------------------------------------------------------------------------ ComfyUI

export interface ComfyPromptOptions {
  readonly clipSkip?: number;
  readonly embeddings?: (name: string) => EmbeddingVectors | undefined;
  readonly warn?: (m: string) => void;
  /**
   * Sections to reach by appending the empty prompt's (CLIPTextEncodeSDXL evens out text_g and
   * text_l this way before encoding).
   */
  readonly minSections?: number;
}

/** Sections (77-token windows) ComfyUI's tokenizer makes of a prompt. */
export function comfySectionCount(tokenizer: ClipTokenizer, prompt: string, opts: Pick<ComfyPromptOptions, 'embeddings'> = {}): number {
  return chunkComfy(tokenizer, prompt, { embeddings: opts.embeddings }).length;
}

/** ComfyUI CLIPTextEncode of one prompt: [77·chunks, W]. */
export async function encodeComfyPrompt(model: TextEncoderLike, tokenizer: ClipTokenizer, prompt: string, opts: ComfyPromptOptions = {}): Promise<CondTensor> {
  return (await encodeComfyPromptPooled(model, tokenizer, prompt, opts)).cond;
}

/** encodeComfyPrompt, with the pooled output of the first section for an encoder that has one (SDXL's G). */
export async function encodeComfyPromptPooled(model: TextEncoderLike, tokenizer: ClipTokenizer, prompt: string, opts: ComfyPromptOptions = {}): Promise<{ cond: CondTensor; pooled?: Float32Array }> {
  const W = model.textWidth;
  const pad = model.padTokenId;
  const batches = chunkComfy(tokenizer, prompt, { padId: pad, embeddings: opts.embeddings, warn: opts.warn });
  while (batches.length < (opts.minSections ?? 0)) batches.push([[tokenizer.bos, 1.0, 0], [tokenizer.eos, 1.0, 0], ...Array.from({ length: WINDOW - 2 }, () => [pad, 1.0, 0] as [number, number, number])]);
  const weights = batches.map((b) => b.map((e) => e[1]));
  const hasWeights = weights.some((ws) => ws.some((w) => w !== 1.0));
  const windows: Window[] = batches.map((b) => {
    const ids: number[] = [];
    const vectors: Window['vectors'][number][] = [];
    let dropped = 0;
    for (const [t] of b) {
      if (typeof t === 'number') {
        ids.push(t);
      } else if (t.embedding.width !== W) {
        // ComfyUI drops a misfitting embedding at encode time and pads the end instead.
        if (t.row === 0) opts.warn?.(`embedding '${t.embedding.name}' has ${t.embedding.width}-wide vectors, the text encoder ${W}; ignored`);
        dropped++;
      } else {
        vectors.push({ pos: ids.length, row: t.embedding.vectors.subarray(t.row * W, (t.row + 1) * W) });
        ids.push(0);
      }
    }
    for (let i = 0; i < dropped; i++) ids.push(pad);
    return { ids, vectors };
  });
  if (hasWeights) windows.push({ ids: [tokenizer.bos, tokenizer.eos, ...new Array<number>(WINDOW - 2).fill(pad)], vectors: [] });
  const r = await encodeWindows(model, windows, opts.clipSkip ?? 1);
  const z = r.hidden;
  const per = WINDOW * W;
  const data = new Float32Array(batches.length * per);
  for (let k = 0; k < batches.length; k++) {
    const section = z.subarray(k * per, (k + 1) * per);
    if (hasWeights) applyComfyWeights(section, z.subarray(batches.length * per, (batches.length + 1) * per), weights[k], W, true);
    data.set(section, k * per);
  }
  // ComfyUI's pooled output is that of the first section (`first_pooled`), never weighted.
  const pooled = r.pooled ? r.pooled.slice(0, r.pooled.length / windows.length) : undefined;
  return { cond: { data, tokens: batches.length * WINDOW, width: W }, pooled };
}

/** `embedding:name` words of a ComfyUI prompt (what its tokenizer will try to load). */
export function comfyEmbeddingNames(prompt: string): string[] {
  const names = new Set<string>();
  for (const m of prompt.matchAll(/(?:^|\s)embedding:([^\s<[]*)/gu)) {
    const n = m[1];
    if (n) names.add(n);
    const stripped = n.replace(/^,+|,+$/g, '');
    if (stripped) names.add(stripped);
  }
  return [...names];
}

// ------------------------------------------------------------------------------ the whole prompt pair

/**
 * Conditioning for a positive and a negative prompt, read with A1111's syntax (default) or
 * ComfyUI's. Unparseable emphasis weights (`(x:1.2.3)`) raise as A1111 raises.
 */
export async function encodeConditioning(model: TextEncoderLike, tokenizer: ClipTokenizer, prompt: string, negative: string, opts: ConditioningOptions): Promise<ConditioningResult> {
  const clipSkip = opts.clipSkip ?? 1;
  const library = opts.embeddings;
  library?.resetUsage();
  const encoder = opts.encoder ?? singleEncoder(model, tokenizer);
  if ((opts.syntax ?? 'a1111') === 'comfy') {
    const lookup = library ? await library.comfyPreload(comfyEmbeddingNames(`${prompt}\n${negative}`)) : undefined;
    const c = await encoder.comfy(prompt, { clipSkip, embeddings: lookup, warn: opts.warn }, false);
    const u = await encoder.comfy(negative, { clipSkip, embeddings: lookup, warn: opts.warn }, true);
    const used = library ? await library.usedEmbeddings() : [];
    return {
      cond: [{ weight: 1, schedule: [{ endAtStep: opts.steps, cond: c }] }],
      uncond: [{ endAtStep: opts.steps, cond: u }],
      infotext: [['TI hashes', formatTiHashes(used)]],
      extraNetworks: {},
    };
  }

  const strip = opts.stripComments ?? true;
  const positive = strip ? stripComments(prompt) : prompt;
  const neg = strip ? stripComments(negative) : negative;
  const { prompt: cleaned, networks } = parseExtraNetworks(positive);
  const { indexes, flat } = splitAnd(cleaned);
  const schedules = flat.map((p) => promptSchedule(p, opts.steps, opts.schedule));
  const negSchedule = promptSchedule(neg, opts.steps, opts.schedule);
  const texts = [...schedules.flat(), ...negSchedule].map(([, t]) => t);
  const emphasis = opts.emphasis ?? 'original';
  const textOpts: A1111TextOptions = {
    emphasis, clipSkip, commaBacktrack: opts.commaBacktrack ?? 20,
    matcher: library ? await library.a1111Matcher(tokenizer, texts) : undefined,
  };
  // A1111 caches by prompt text, so a repeated AND part is encoded once.
  const flatConds: ScheduledCond[][] = [];
  for (const s of schedules) flatConds.push(await scheduleConds(encoder, s, textOpts, false));
  const uncond = await scheduleConds(encoder, negSchedule, textOpts, true);
  const used = library ? await library.usedEmbeddings() : [];
  const bracketed = texts.some((t) => t.includes('(') || t.includes('['));
  return {
    cond: indexes.map(([i, weight]) => ({ weight, schedule: flatConds[i] })),
    uncond,
    infotext: [['TI hashes', formatTiHashes(used)], ['Emphasis', emphasis !== 'original' && bracketed ? EMPHASIS_INFOTEXT[emphasis] : undefined]],
    extraNetworks: networks,
  };
}

/** The schedule entry A1111's `reconstruct_cond_batch` picks for a step. */
export function condAtStep(schedule: readonly ScheduledCond[], step: number): CondTensor {
  for (const e of schedule) if (step <= e.endAtStep) return e.cond;
  return schedule[0].cond;
}
