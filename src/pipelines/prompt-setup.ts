// What every pipeline does with the prompt before sampling: extra networks named in it
// (`<lora:name:w>`, `<hypernet:name:w>`), dynamic prompts, textual-inversion embeddings, and the
// conditioning in the chosen syntax. One place, so txt2img, img2img, inpainting and hires agree.
import { readdir } from 'node:fs/promises';
import { extname, join, parse } from 'node:path';
import { applyExtraNetworks } from '../adapters/networks.js';
import { EmbeddingLibrary } from '../adapters/textual-inversion.js';
import type { HypernetworkSpec } from '../adapters/hypernetwork.js';
import type { LoraSpec } from '../adapters/lora.js';
import type { StableDiffusionModel } from '../models/sd-model.js';
import { ClipTokenizer } from '../text/clip-tokenizer.js';
import { resolveDynamicPrompt } from '../text/dynamic-prompts.js';
import { loraRequests, parseExtraNetworks } from '../text/extra-networks.js';
import type { ScheduleOptions } from '../text/prompt-a1111.js';
import { encodeConditioning, type ConditioningResult } from './conditioning.js';
import { sdxlPromptEncoder } from './sdxl-conditioning.js';
import type { Profile } from './profiles.js';
import type { Txt2ImgOptions } from './options.js';

type PromptOptions = Omit<Txt2ImgOptions, 'width' | 'height'>;

const NETWORK_EXTS = ['.safetensors', '.pt', '.ckpt', '.bin', '.pth'];

/** Finds `<name>.<ext>` in the folders (and their subfolders, as A1111 lists them), first match wins. */
async function findNetworkFile(name: string, dirs: readonly string[], depth = 4): Promise<string | undefined> {
  for (const dir of dirs) {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (e.isFile() && NETWORK_EXTS.includes(extname(e.name).toLowerCase()) && parse(e.name).name === name) return join(dir, e.name);
    }
    if (depth > 0) {
      const sub = entries.filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
      const hit = await findNetworkFile(name, sub, depth - 1);
      if (hit) return hit;
    }
  }
  return undefined;
}

/** LoRAs and hypernetworks named in the prompt's `<…>` tags, resolved to files in the configured folders. */
export async function promptNetworks(prompt: string, opts: PromptOptions, warn: (m: string) => void): Promise<{ loras: LoraSpec[]; hypernetworks: HypernetworkSpec[] }> {
  const { networks } = parseExtraNetworks(prompt);
  const loras: LoraSpec[] = [];
  const hypernetworks: HypernetworkSpec[] = [];
  for (const r of loraRequests(networks)) {
    const path = await findNetworkFile(r.name, opts.loraDirs ?? []);
    if (!path) warn(`LoRA '${r.name}' named in the prompt was not found (looked in: ${(opts.loraDirs ?? []).join(', ') || 'no folders; pass --lora-dir'})`);
    else loras.push({ path, weight: r.weight, teWeight: r.textEncoderWeight, name: r.name });
  }
  for (const p of networks.hypernet ?? []) {
    const name = p.positional[0] ?? '';
    const strength = p.positional[1] !== undefined ? Number(p.positional[1]) : 1;
    const path = await findNetworkFile(name, opts.hypernetworkDirs ?? []);
    if (!path) warn(`hypernetwork '${name}' named in the prompt was not found (looked in: ${(opts.hypernetworkDirs ?? []).join(', ') || 'no folders; pass --hypernetwork-dir'})`);
    else hypernetworks.push({ path, strength });
  }
  return { loras, hypernetworks };
}

/**
 * Runs `run` on the model patched with the request's LoRAs / hypernetworks — those passed as options
 * and those named in the prompt — or on the model itself when there are none.
 */
export async function withNetworks<O extends PromptOptions, R extends object>(
  model: StableDiffusionModel, opts: O, run: (m: StableDiffusionModel, o: O) => Promise<R>,
): Promise<R> {
  const warnings: string[] = [];
  const warn = (m: string) => { warnings.push(m); opts.onWarning?.(m); };
  const fromPrompt = opts.networksResolved ? { loras: [], hypernetworks: [] } : await promptNetworks(opts.prompt, opts, warn);
  const loras = [...(opts.loras ?? []), ...fromPrompt.loras];
  const hypernetworks = [...(opts.hypernetworks ?? []), ...fromPrompt.hypernetworks];
  const next = { ...opts, loras: undefined, hypernetworks: undefined, networksResolved: true };
  let result: R;
  if (!loras.length && !hypernetworks.length) result = await run(model, next);
  else {
    const nets = await applyExtraNetworks(model, { loras, hypernetworks });
    for (const w of nets.warnings) warn(w);
    result = await run(nets.model, { ...next, loraHashes: nets.loraHashes ?? opts.loraHashes });
  }
  const earlier = (result as { warnings?: readonly string[] }).warnings ?? [];
  return warnings.length ? { ...result, warnings: [...warnings, ...earlier] } : result;
}

export interface PreparedText {
  /** The prompts after dynamic-prompt resolution: what the metadata records. */
  readonly prompt: string;
  readonly negativePrompt: string;
  readonly conditioning: ConditioningResult;
  readonly warnings: string[];
}

/** Dynamic prompts, embeddings and conditioning for one run. */
export async function prepareText(model: StableDiffusionModel, opts: PromptOptions, ctx: {
  readonly seed: number; readonly steps: number; readonly clipSkip: number; readonly profile: Profile; readonly schedule?: ScheduleOptions;
  /** The size being generated: SDXL conditions on it (original and target size default to it). */
  readonly size?: { readonly width: number; readonly height: number };
}): Promise<PreparedText> {
  const tokenizer = opts.tokenizer ?? (await ClipTokenizer.load({ modelPath: model.path }));
  // Dynamic prompts are resolved once per call, from the first image's seed; the result is what the metadata records.
  const prompt = resolveDynamicPrompt(opts.prompt, ctx.seed, { wildcardDirs: opts.wildcards });
  const negativePrompt = resolveDynamicPrompt(opts.negativePrompt ?? '', ctx.seed, { wildcardDirs: opts.wildcards });
  const warnings: string[] = [];
  const warn = (m: string) => { warnings.push(m); opts.onWarning?.(m); };
  const embeddings = opts.embeddings instanceof EmbeddingLibrary ? opts.embeddings
    : opts.embeddings?.length ? await EmbeddingLibrary.open(opts.embeddings, { width: model.textWidth, warn }) : undefined;
  const size = ctx.size ?? { width: 1024, height: 1024 };
  const encoder = model.isSdxl ? sdxlPromptEncoder(model, tokenizer, { ...size, ...opts.sdxl }) : undefined;
  const conditioning = await encodeConditioning(model, tokenizer, prompt, negativePrompt, {
    steps: ctx.steps, clipSkip: ctx.clipSkip, syntax: opts.promptSyntax ?? (ctx.profile.name === 'comfy' ? 'comfy' : 'a1111'),
    emphasis: opts.emphasis, embeddings, warn, schedule: ctx.schedule, encoder,
  });
  return { prompt, negativePrompt, conditioning, warnings };
}
