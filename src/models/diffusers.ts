// Loading a diffusers folder (model_index.json + unet/ vae/ text_encoder/ tokenizer/ scheduler/) as
// the same ModelParts a single-file checkpoint gives: the weights are looked up under their LDM names,
// so the graph builders and the session cache treat both layouts alike.
import { readFile, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { openStateDict } from '../formats/open.js';
import type { StateDict, TensorInfo } from '../formats/state-dict.js';
import type { WeightSource } from '../graph/weights.js';
import type { Tensor } from '../tensor/tensor.js';
import type { LoadOptions } from './load-options.js';
import { stateDictWeights } from '../graph/weights.js';
import { fileIdentity } from '../formats/file-identity.js';
import { detectClipText, type ClipTextConfig } from './clip-text.js';
import { ldmKeyMap, textLdmKey, unetLdmKey, vaeLdmKey, type UNetKeyLayout } from './diffusers-keys.js';
import type { Family, ModelParts, Prediction } from './sd-model.js';
import { detectUNet, type UNetConfig } from './unet.js';

const UNET = 'model.diffusion_model';
const VAE = 'first_stage_model';
const TEXT = 'cond_stage_model.transformer';

type Json = Record<string, unknown>;

/** Weights of one part, possibly spread over shards, answering to LDM key names. */
interface Part {
  /** Diffusers key → the file that holds it. */
  readonly where: ReadonlyMap<string, StateDict>;
  /** The file (or shard index) the part was read from, for error messages. */
  readonly label: string;
  readonly id: string;
}

class MappedWeights implements WeightSource {
  constructor(readonly id: string, private readonly part: Part, private readonly map: ReadonlyMap<string, string>) {}

  get label(): string {
    return this.part.label;
  }

  info(key: string): TensorInfo | undefined {
    const src = this.map.get(key);
    return src === undefined ? undefined : this.part.where.get(src)?.info(src);
  }

  async read(key: string): Promise<Tensor> {
    const src = this.map.get(key);
    const sd = src === undefined ? undefined : this.part.where.get(src);
    if (src === undefined || !sd) throw new Error(`${this.part.label}: no tensor for '${key}'`);
    return sd.read(src);
  }

  keys(): Set<string> {
    return new Set(this.map.keys());
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

async function readJson(path: string): Promise<Json> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${path}: missing`, { cause: err });
    throw new Error(`${path}: cannot read (${(err as Error).message})`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${path}: expected a JSON object`);
  return value as Json;
}

async function readJsonIfPresent(path: string): Promise<Json | undefined> {
  return (await exists(path)) ? readJson(path) : undefined;
}

/**
 * Candidate weight files in diffusers' order of preference: full precision before the fp16 variant,
 * safetensors before pickles, a single file before a shard index. Variants insert `.fp16` before the
 * last extension, so an index becomes `….safetensors.index.fp16.json`.
 */
function weightCandidates(safetensorsStem: string, binStem: string): string[] {
  const out: string[] = [];
  for (const [stem, ext] of [[safetensorsStem, 'safetensors'], [binStem, 'bin']]) {
    out.push(`${stem}.${ext}`, `${stem}.${ext}.index.json`, `${stem}.fp16.${ext}`, `${stem}.${ext}.index.fp16.json`);
  }
  return out;
}

/** diffusers names both kinds `diffusion_pytorch_model.*`; transformers uses model.safetensors but pytorch_model.bin. */
async function openPart(dir: string, safetensorsStem: string, binStem: string, opened: StateDict[]): Promise<Part> {
  const names = weightCandidates(safetensorsStem, binStem);
  for (const name of names) {
    const file = join(dir, name);
    if (!(await exists(file))) continue;
    if (!name.endsWith('.json')) {
      const sd = await openStateDict(file);
      opened.push(sd);
      return { where: new Map(sd.keys().map((k) => [k, sd])), label: file, id: await fileIdentity(file) };
    }
    const index = await readJson(file);
    const map = index.weight_map;
    if (typeof map !== 'object' || map === null) throw new Error(`${file}: no "weight_map" object`);
    const shards = new Map<string, StateDict>();
    const where = new Map<string, StateDict>();
    for (const [key, shard] of Object.entries(map as Record<string, unknown>)) {
      if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\')) throw new Error(`${file}: bad shard name for '${key}'`);
      let sd = shards.get(shard);
      if (!sd) {
        sd = await openStateDict(join(dirname(file), shard));
        opened.push(sd);
        shards.set(shard, sd);
      }
      if (!sd.has(key)) throw new Error(`${sd.path}: has no tensor '${key}', which ${file} says it holds`);
      where.set(key, sd);
    }
    const ids = await Promise.all([...shards.values()].map((sd) => fileIdentity(sd.path)));
    return { where, label: file, id: ids.join('+') };
  }
  throw new Error(`${dir}: no weights found (looked for ${names.filter((n) => !n.endsWith('.json')).join(', ')})`);
}

function numberList(value: unknown): number[] | undefined {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'number' && Number.isInteger(v))) return undefined;
  return value as number[];
}

function stringList(value: unknown): string[] | undefined {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) return undefined;
  return value as string[];
}

function hasPrefix(keys: Iterable<string>, prefix: string): boolean {
  for (const k of keys) if (k.startsWith(prefix)) return true;
  return false;
}

function countWhile(test: (i: number) => boolean): number {
  let n = 0;
  while (test(n)) n++;
  return n;
}

/** The UNet's block layout from its config; the keys fill in whatever an unusual config leaves out. */
function unetLayout(cfg: Json, keys: readonly string[], file: string): UNetKeyLayout {
  const downTypes = stringList(cfg.down_block_types);
  const boc = numberList(cfg.block_out_channels);
  const levels = boc?.length ?? downTypes?.length ?? countWhile((i) => hasPrefix(keys, `down_blocks.${i}.`));
  if (levels === 0) throw new Error(`${file}: no down_blocks (not a Stable Diffusion UNet)`);
  const lpbRaw = cfg.layers_per_block;
  const layersPerBlock = typeof lpbRaw === 'number' ? Array<number>(levels).fill(lpbRaw)
    : numberList(lpbRaw) ?? Array.from({ length: levels }, (_, i) => countWhile((j) => hasPrefix(keys, `down_blocks.${i}.resnets.${j}.`)));
  if (layersPerBlock.length !== levels) throw new Error(`${file}: layers_per_block has ${layersPerBlock.length} entries for ${levels} levels`);
  const upTypes = stringList(cfg.up_block_types);
  const upHasAttention = Array.from({ length: levels }, (_, i) => (upTypes ? /Attn/.test(upTypes[i] ?? '') : hasPrefix(keys, `up_blocks.${i}.attentions.`)));
  const midType = cfg.mid_block_type;
  const midHasAttention = typeof midType === 'string' ? /Attn/.test(midType) : hasPrefix(keys, 'mid_block.attentions.0.');
  return { layersPerBlock, upHasAttention, midHasAttention };
}

/**
 * diffusers' `attention_head_dim` is really the head COUNT for SD 1.x/2.x (a historical misnomer it
 * keeps for compatibility; `num_attention_heads`, when set, wins): an int for one count everywhere,
 * a list for a count per level. SD2's list is channels / 64 per level, i.e. a fixed head width.
 */
function unetHeads(cfg: Json, file: string, options: LoadOptions, family: Family): UNetConfig['heads'] {
  if (options.unetHeads) return { count: options.unetHeads };
  if (options.unetHeadWidth) return { width: options.unetHeadWidth };
  const raw = cfg.num_attention_heads ?? cfg.attention_head_dim;
  if (typeof raw === 'number') return { count: raw };
  const counts = numberList(raw);
  const boc = numberList(cfg.block_out_channels);
  if (!counts || !boc || counts.length !== boc.length) return family === 'sd1' ? { count: 8 } : { width: 64 };
  // Only levels that run attention matter; the mid block uses the last level's entry.
  const downTypes = stringList(cfg.down_block_types);
  const used = boc.map((_, i) => i).filter((i) => i === boc.length - 1 || !downTypes || /Attn/.test(downTypes[i] ?? ''));
  const cs = used.map((i) => counts[i]);
  if (cs.every((c) => c === cs[0])) return { count: cs[0] };
  const widths = used.map((i) => boc[i] / counts[i]);
  if (widths.every((w) => w === widths[0] && Number.isInteger(w))) return { width: widths[0] };
  throw new Error(`${file}: attention heads ${JSON.stringify(raw)} for channels ${JSON.stringify(boc)} are neither one count nor one width (pass unetHeads or unetHeadWidth)`);
}

function tokenOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as Json).content === 'string') return (value as Json).content as string;
  return undefined;
}

/** The tokenizer's pad token id: SD1 folders pad with EOS, SD2 folders with "!" (id 0, as OpenCLIP pads). */
async function padTokenId(folder: string, family: Family): Promise<number> {
  const dir = join(folder, 'tokenizer');
  let token: string | undefined;
  for (const name of ['special_tokens_map.json', 'tokenizer_config.json']) {
    token ??= tokenOf((await readJsonIfPresent(join(dir, name)))?.pad_token);
  }
  const known: Readonly<Record<string, number>> = { '<|endoftext|>': 49407, '!': 0 };
  if (token !== undefined && Object.hasOwn(known, token)) return known[token];
  if (token !== undefined) {
    const id = (await readJsonIfPresent(join(dir, 'vocab.json')))?.[token];
    if (typeof id === 'number') return id;
  }
  return family === 'sd1' ? 49407 : 0;
}

async function predictionOf(folder: string): Promise<Prediction | undefined> {
  const file = join(folder, 'scheduler', 'scheduler_config.json');
  const cfg = await readJsonIfPresent(file);
  if (!cfg) return undefined;
  // diffusers' schedulers default to epsilon when the key is absent.
  const raw = cfg.prediction_type ?? 'epsilon';
  if (raw === 'epsilon') return 'eps';
  if (raw === 'v_prediction') return 'v';
  throw new Error(`${file}: prediction_type ${JSON.stringify(raw)} is not supported (epsilon or v_prediction)`);
}

function mapPart(part: Part, rename: (key: string) => string | undefined, prefix: string, strict: boolean): MappedWeights {
  let map: Map<string, string>;
  try {
    map = ldmKeyMap(part.where.keys(), rename, prefix);
  } catch (err) {
    throw new Error(`${part.label}: ${(err as Error).message}`, { cause: err });
  }
  if (strict) {
    // A tensor that fits nowhere means another architecture (SDXL's add_embedding, say) or a config
    // that disagrees with the weights; running without it would give wrong images silently.
    const left = [...part.where.keys()].filter((k) => rename(k) === undefined);
    if (left.length > 0) {
      throw new Error(`${part.label}: ${left.length} tensor(s) do not fit the SD 1.x/2.x layout its config describes (e.g. '${left[0]}')`);
    }
  }
  return new MappedWeights(part.id, part, map);
}

async function openVaeFolder(dir: string, opened: StateDict[]): Promise<MappedWeights> {
  const cfgFile = join(dir, 'config.json');
  const cfg = await readJson(cfgFile);
  const part = await openPart(dir, 'diffusion_pytorch_model', 'diffusion_pytorch_model', opened);
  const keys = [...part.where.keys()];
  const levels = numberList(cfg.block_out_channels)?.length ?? countWhile((i) => hasPrefix(keys, `encoder.down_blocks.${i}.`));
  return mapPart(part, (k) => vaeLdmKey(k, levels), VAE, true);
}

/**
 * A VAE that replaces the model's own: a diffusers `vae/` folder, a diffusers-layout file, or an
 * LDM-layout file (bare `decoder.*` or under `first_stage_model.`).
 */
export async function openVaeWeights(path: string): Promise<{ source: WeightSource; prefix: string; close: () => Promise<void> }> {
  const opened: StateDict[] = [];
  const close = async () => { await Promise.all(opened.map((sd) => sd.close())); };
  try {
    if ((await stat(path).catch(() => undefined))?.isDirectory()) {
      const source = await openVaeFolder(path, opened);
      return { source, prefix: VAE, close };
    }
    const sd = await openStateDict(path);
    opened.push(sd);
    const keys = sd.keys();
    if (hasPrefix(keys, 'decoder.up_blocks.')) {
      const levels = countWhile((i) => hasPrefix(keys, `encoder.down_blocks.${i}.`) || hasPrefix(keys, `decoder.up_blocks.${i}.`));
      const part: Part = { where: new Map(keys.map((k) => [k, sd])), label: path, id: await fileIdentity(path) };
      return { source: mapPart(part, (k) => vaeLdmKey(k, levels), VAE, true), prefix: VAE, close };
    }
    const prefix = hasPrefix(keys, `${VAE}.decoder.`) ? VAE : hasPrefix(keys, 'decoder.') ? '' : undefined;
    if (prefix === undefined) throw new Error(`${path}: not a VAE (no 'decoder.*' or '${VAE}.decoder.*' weights)`);
    const id = await fileIdentity(path);
    return { source: stateDictWeights(sd, id), prefix, close };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Opens a diffusers Stable Diffusion 1.x / 2.x folder. Only configs and tensor headers are read here;
 * the UNet, VAE and text encoder weights are read (full precision or the fp16 variant, safetensors or
 * PyTorch pickles, single or sharded) when a session first needs them.
 */
export async function openDiffusersFolder(path: string, options: LoadOptions): Promise<ModelParts> {
  const indexFile = join(path, 'model_index.json');
  if (!(await exists(indexFile))) {
    throw new Error(`${path}: not a diffusers folder (no model_index.json) and not a checkpoint file`);
  }
  const index = await readJson(indexFile);
  const pipeline = typeof index._class_name === 'string' ? index._class_name : '';
  if (/XL/.test(pipeline) || 'text_encoder_2' in index) throw new Error(`${path}: SDXL diffusers folders are not supported yet (only SD 1.x and 2.x)`);
  for (const sub of ['unet', 'text_encoder', ...(options.vae ? [] : ['vae'])]) {
    if (!(await exists(join(path, sub)))) throw new Error(`${path}: the diffusers folder has no ${sub}/ subfolder`);
  }

  const opened: StateDict[] = [];
  const closeAll = async () => { await Promise.all(opened.map((sd) => sd.close())); };
  let vaeOverride: Awaited<ReturnType<typeof openVaeWeights>> | undefined;
  try {
    const unetFile = join(path, 'unet', 'config.json');
    const textFile = join(path, 'text_encoder', 'config.json');
    const unetCfg = await readJson(unetFile);
    const textCfg = await readJson(textFile);

    const unetPart = await openPart(join(path, 'unet'), 'diffusion_pytorch_model', 'diffusion_pytorch_model', opened);
    const unetKeys = [...unetPart.where.keys()];
    const layout = unetLayout(unetCfg, unetKeys, unetFile);
    const unetW = mapPart(unetPart, (k) => unetLdmKey(k, layout), UNET, true);

    const textPart = await openPart(join(path, 'text_encoder'), 'model', 'pytorch_model', opened);
    const textW = mapPart(textPart, textLdmKey, TEXT, false);

    let vae: { source: WeightSource; prefix: string };
    if (options.vae) {
      vaeOverride = await openVaeWeights(options.vae);
      vae = vaeOverride;
    } else {
      vae = { source: await openVaeFolder(join(path, 'vae'), opened), prefix: VAE };
    }

    const hiddenAct = textCfg.hidden_act ?? 'quick_gelu';
    if (hiddenAct !== 'quick_gelu' && hiddenAct !== 'gelu') {
      throw new Error(`${textFile}: hidden_act ${JSON.stringify(hiddenAct)} is not supported (quick_gelu or gelu)`);
    }
    const crossDim = unetCfg.cross_attention_dim;
    const family: Family = crossDim === 768 ? 'sd1' : crossDim === 1024 ? 'sd2' : hiddenAct === 'quick_gelu' ? 'sd1' : 'sd2';

    let unet: UNetConfig;
    try {
      const keys = unetW.keys();
      unet = detectUNet(keys, (k) => unetW.info(k)?.shape, `${UNET}.`, unetHeads(unetCfg, unetFile, options, family));
    } catch (err) {
      throw new Error(`${unetPart.label}: ${(err as Error).message}`, { cause: err });
    }
    let text: ClipTextConfig;
    try {
      const heads = options.textHeads ?? (typeof textCfg.num_attention_heads === 'number' ? textCfg.num_attention_heads : undefined);
      text = { ...detectClipText(textW.keys(), (k) => textW.info(k)?.shape, `${TEXT}.text_model.`, heads), activation: hiddenAct };
    } catch (err) {
      throw new Error(`${textPart.label}: ${(err as Error).message}`, { cause: err });
    }
    if (text.layers === 0) throw new Error(`${textPart.label}: no text encoder layers ('text_model.encoder.layers.*')`);
    if (unet.contextDim !== text.width) {
      throw new Error(`${path}: the UNet expects ${unet.contextDim}-wide text conditioning but the text encoder is ${text.width} wide`);
    }

    const prediction = options.prediction ?? (await predictionOf(path)) ?? (family === 'sd2' ? 'v' : 'eps');
    return {
      path, family, prediction, unet, text,
      prefixes: { unet: UNET, text: `${TEXT}.text_model`, vae: vae.prefix },
      weights: { unet: unetW, text: textW, vae: vae.source },
      padTokenId: await padTokenId(path, family),
      textSkipBase: family === 'sd1' ? 1 : 2,
      // diffusers SD2 text encoders are stored without OpenCLIP's last layer.
      textLayersRemoved: family === 'sd2' ? 1 : 0,
      close: async () => { await closeAll(); await vaeOverride?.close(); },
    };
  } catch (err) {
    await closeAll();
    await vaeOverride?.close();
    throw err;
  }
}
