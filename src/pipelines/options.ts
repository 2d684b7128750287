// The options every A1111-style pipeline takes (txt2img's, which img2img, inpainting and hires extend)
// and their validation, in one module below the pipelines so none of them imports another for types.
import type { HypernetworkSpec } from '../adapters/hypernetwork.js';
import type { LoraSpec } from '../adapters/lora.js';
import type { EmbeddingLibrary } from '../adapters/textual-inversion.js';
import { parseSamplerName } from '../sampling/names.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ClipTokenizer } from '../text/clip-tokenizer.js';
import type { EmphasisMode, PromptSyntax } from './conditioning.js';
import type { SdxlEncoderOptions } from './sdxl-conditioning.js';
import type { RefinerOptions } from './refiner.js';
import type { GeneratedImage } from './image-output.js';
import { getProfile, type Profile, type ProfileName, type RngName } from './profiles.js';
import type { Progress } from './sample.js';

export type EncodeMode = 'sample' | 'mean';

/** SDXL's size and aesthetic conditioning (see sdxl-conditioning.ts); every field has A1111's default. */
export type SdxlOptions = Omit<SdxlEncoderOptions, 'width' | 'height'>;

export interface HiresOptions {
  /** Target size ÷ base size (A1111 "Upscale by"). */
  readonly scale: number;
  /** Second-pass steps; 0 or absent = the first pass's steps (A1111 "Hires steps"). */
  readonly steps?: number;
  /** Second-pass denoising strength (A1111 default 0.7). */
  readonly denoise?: number;
  /**
   * A1111 upscaler name — `Latent`, `Latent (antialiased)`, `Latent (bicubic)`, `Latent (bicubic
   * antialiased)`, `Latent (nearest)`, `Latent (nearest-exact)`, `Lanczos`, `Nearest` — or the path
   * of an upscaler model (.pth / .safetensors). Default `Latent`.
   */
  readonly upscaler?: string;
  /** Tile size for a model upscaler (input pixels). */
  readonly tile?: number;
  readonly encode?: EncodeMode;
  /** Second-pass prompts (A1111 `hr_prompt` / `hr_negative_prompt`); empty or absent = the first pass's. */
  readonly prompt?: string;
  readonly negativePrompt?: string;
  /** Second-pass sampler and scheduler (A1111 `hr_sampler_name` / `hr_scheduler`); absent = the first pass's. */
  readonly sampler?: string;
  readonly scheduler?: string;
}

export interface Txt2ImgOptions {
  readonly prompt: string;
  readonly negativePrompt?: string;
  readonly width?: number;
  readonly height?: number;
  readonly steps?: number;
  readonly cfgScale?: number;
  /** ComfyUI id (`dpmpp_2m`) or A1111 name (`DPM++ 2M Karras`, `Euler a`). */
  readonly sampler?: string;
  /** ComfyUI id (`karras`), A1111 schedule type (`Karras`) or `automatic`. */
  readonly scheduler?: string;
  readonly seed?: number;
  readonly rng?: RngName;
  readonly profile?: ProfileName;
  readonly batchSize?: number;
  readonly clipSkip?: number;
  readonly eta?: number;
  readonly sNoise?: number;
  readonly variationSeed?: number;
  readonly variationStrength?: number;
  readonly etaNoiseSeedDelta?: number;
  /** A1111 "Resize seed from width/height" (pixels): keeps a seed's composition at another size. */
  readonly seedResizeFrom?: { readonly width: number; readonly height: number };
  /** Initial noise [B, C, h, w] of unit variance, replacing the seeded draw (reproducibility tests). */
  readonly noise?: Tensor;
  /** Tokenizer; by default the CLIP vocabulary is looked up next to the model, then in the package. */
  readonly tokenizer?: ClipTokenizer;
  /** Prompt syntax: A1111's (default for the a1111 profile) or ComfyUI's (default for comfy). */
  readonly promptSyntax?: PromptSyntax;
  /** A1111 emphasis mode: 'original' (default), 'no-norm', 'ignore', 'off'. */
  readonly emphasis?: EmphasisMode;
  /** Textual-inversion folders (or an opened library): A1111 file-name triggers, ComfyUI `embedding:name`. */
  readonly embeddings?: readonly string[] | EmbeddingLibrary;
  /** Wildcard folders for dynamic prompts (`__name__` → name.txt); `{a|b}` works without. */
  readonly wildcards?: readonly string[];
  /** Non-fatal problems (a skipped embedding, say); also returned in `warnings`. */
  readonly onWarning?: (message: string) => void;
  readonly onProgress?: (p: Progress) => void;
  /** LoRAs / LyCORIS (any supported format) for this call; the model itself is left unpatched. */
  readonly loras?: readonly LoraSpec[];
  /** A1111 hypernetworks for this call, each with a strength. */
  readonly hypernetworks?: readonly HypernetworkSpec[];
  /** Infotext `Lora hashes` for networks the caller applied itself (set from `loras` otherwise). */
  readonly loraHashes?: string;
  /** Folders searched for `<lora:name:w>` in the prompt (subfolders included). */
  readonly loraDirs?: readonly string[];
  /** Folders searched for `<hypernet:name:w>` in the prompt. */
  readonly hypernetworkDirs?: readonly string[];
  /** Set once the prompt's and the options' networks have been applied (pipelines pass it on). */
  readonly networksResolved?: boolean;
  /** Hires fix: a second, img2img pass at `scale` × the size (see pipelines/hires.ts). */
  readonly hires?: HiresOptions;
  /**
   * True once the caller has stopped sampling (its `onProgress` threw SamplingStopped): the hires pass is
   * left out and the first pass's image returned, as A1111's `sample_hr_pass` does when interrupted.
   */
  readonly stopped?: () => boolean;
  /** Float settings in the infotext as Python prints them (`CFG scale: 7.0`), as A1111's API writes them. */
  readonly pythonFloats?: boolean;
  /** SDXL models: original / target size, crop, aesthetic scores, A1111's empty-negative zeroing and CLIP-L skip. */
  readonly sdxl?: SdxlOptions;
  /** SDXL refiner: the base samples the first `switchAt` of the schedule, the refiner the rest (see refiner.ts). */
  readonly refiner?: RefinerOptions;
}

export interface Txt2ImgResult {
  readonly images: GeneratedImage[];
  /** The sampler's final latents [B, C, h, w] (before the 1/0.18215 scaling the VAE gets). */
  readonly latents: Float64Array;
  readonly latentShape: readonly [number, number, number, number];
  readonly sigmas: readonly number[];
  /** LoRA keys that matched nothing, one line per file. */
  readonly warnings?: readonly string[];
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

function randomSeed(): number {
  return Math.floor(Math.random() * 4294967295);
}

interface CheckedOptions {
  width: number; height: number; steps: number; cfgScale: number; batch: number; clipSkip: number; seed: number;
  profile: Profile; sampler: string; scheduler: string;
}

/** Validates and normalises options without touching the model, so bad input fails before any loading. */
export function checkTxt2ImgOptions(opts: Omit<Txt2ImgOptions, 'prompt'> & { prompt?: string }): CheckedOptions {
  const width = opts.width ?? 512;
  const height = opts.height ?? 512;
  const steps = opts.steps ?? 20;
  const cfgScale = opts.cfgScale ?? 7;
  const batch = opts.batchSize ?? 1;
  const clipSkip = opts.clipSkip ?? 1;
  check(opts.prompt === undefined || typeof opts.prompt === 'string', 'prompt must be a string');
  check(Number.isInteger(width) && width >= 8 && width <= 8192 && width % 8 === 0, `width must be a multiple of 8 from 8 to 8192, got ${width}`);
  check(Number.isInteger(height) && height >= 8 && height <= 8192 && height % 8 === 0, `height must be a multiple of 8 from 8 to 8192, got ${height}`);
  check(Number.isInteger(steps) && steps >= 1 && steps <= 1000, `steps must be an integer from 1 to 1000, got ${steps}`);
  check(Number.isFinite(cfgScale) && cfgScale >= 0 && cfgScale <= 100, `cfg scale must be from 0 to 100, got ${cfgScale}`);
  check(Number.isInteger(batch) && batch >= 1 && batch <= 64, `batch size must be an integer from 1 to 64, got ${batch}`);
  check(Number.isInteger(clipSkip) && clipSkip >= 1 && clipSkip <= 12, `clip skip must be an integer from 1 to 12, got ${clipSkip}`);
  const seed = opts.seed ?? randomSeed();
  check(Number.isSafeInteger(seed) && seed >= 0, `seed must be a non-negative integer, got ${seed}`);

  const profile = getProfile(opts.profile ?? 'a1111');
  const requested = opts.scheduler ?? 'automatic';
  // ComfyUI has no "Automatic": its KSampler default is `normal`.
  const scheduleType = profile.name === 'comfy' && requested.toLowerCase() === 'automatic' ? 'normal' : requested;
  const { sampler, scheduler } = parseSamplerName(opts.sampler ?? 'euler', scheduleType);
  return { width, height, steps, cfgScale, batch, clipSkip, seed, profile, sampler, scheduler };
}
