// Text to image: conditioning, initial noise, a sampler over the profile's σ schedule, VAE decode,
// PNG with A1111 metadata.
import { basename, extname } from 'node:path';
import { autoV2Hash } from '../formats/hash.js';
import type { StableDiffusionModel } from '../models/sd-model.js';
import { sigmasFor } from '../sampling/schedules.js';
import { ClipTokenizer } from '../text/clip-tokenizer.js';
import type { Tensor } from '../tensor/tensor.js';
import { encodePair } from './conditioning.js';
import { sampleLatents, type Progress } from './sample.js';
import { decodeLatents, encodePng, type GeneratedImage } from './image-output.js';
import { formatParameters } from './parameters.js';
import { getProfile, type Profile, type ProfileName, type RngName } from './profiles.js';
import { a1111InfotextFields, parseSamplerName } from '../sampling/names.js';

export const VERSION = 'latentkit 0.1.0';

export type { Progress } from './sample.js';

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
  readonly onProgress?: (p: Progress) => void;
}

export interface Txt2ImgResult {
  readonly images: GeneratedImage[];
  /** The sampler's final latents [B, C, h, w] (before the 1/0.18215 scaling the VAE gets). */
  readonly latents: Float64Array;
  readonly latentShape: readonly [number, number, number, number];
  readonly sigmas: readonly number[];
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

export async function txt2img(model: StableDiffusionModel, opts: Txt2ImgOptions): Promise<Txt2ImgResult> {
  const { width, height, steps, cfgScale, batch, clipSkip, seed, profile, sampler, scheduler } = checkTxt2ImgOptions(opts);
  const schedule = profile.schedule();
  const sigmas = sigmasFor(profile.name, sampler, scheduler, steps);
  const shape: [number, number, number, number] = [batch, model.latentChannels, height / 8, width / 8];

  const tokenizer = opts.tokenizer ?? (await ClipTokenizer.load({ modelPath: model.path }));
  const { cond, uncond } = await encodePair(model, tokenizer, opts.prompt, opts.negativePrompt ?? '', clipSkip, batch);

  const noise = profile.noise({
    seed, batchSize: batch, shape: [shape[1], shape[2], shape[3]], rng: opts.rng ?? profile.defaultRng,
    variationSeed: opts.variationSeed, variationStrength: opts.variationStrength, etaNoiseSeedDelta: opts.etaNoiseSeedDelta,
    seedResizeFrom: opts.seedResizeFrom,
  });
  let initial = noise.initial;
  if (opts.noise) {
    check(opts.noise.shape.length === 4 && opts.noise.shape.every((d, i) => d === shape[i]), `noise must have shape [${shape.join(', ')}], got [${opts.noise.shape.join(', ')}]`);
    initial = Float64Array.from(opts.noise.toFloat32Array());
  }
  const scale = profile.startScale(sigmas[0], schedule.sigmaMax);
  const x = Float64Array.from(initial, (v) => v * scale);

  const latents = await sampleLatents({
    model, profile, sampler, sigmas, x, shape, cond, uncond, cfgScale, noise: noise.source,
    eta: opts.eta, sNoise: opts.sNoise, onProgress: opts.onProgress,
  });

  const rgb = await decodeLatents(model, latents, shape);
  const names = a1111InfotextFields(sampler, scheduler);
  const modelName = basename(model.path, extname(model.path));
  const hash = await autoV2Hash(model.path).catch(() => undefined);
  const images: GeneratedImage[] = [];
  for (let i = 0; i < batch; i++) {
    const parameters = formatParameters(opts.prompt, opts.negativePrompt ?? '', [
      ['Steps', steps], ['Sampler', names.Sampler], ['Schedule type', names['Schedule type']], ['CFG scale', cfgScale],
      ['Seed', noise.seeds[i]], ['Size', `${width}x${height}`], ['Model hash', hash], ['Model', modelName],
      ['Variation seed', opts.variationStrength ? opts.variationSeed! + i : undefined],
      ['Variation seed strength', opts.variationStrength || undefined],
      ['Seed resize from', opts.seedResizeFrom ? `${opts.seedResizeFrom.width}x${opts.seedResizeFrom.height}` : undefined],
      ['Clip skip', clipSkip > 1 ? clipSkip : undefined],
      ['ENSD', opts.etaNoiseSeedDelta || undefined],
      ['RNG', (opts.rng ?? profile.defaultRng) === 'gpu' ? undefined : (opts.rng === 'cpu' ? 'CPU' : 'NV')],
      ['Eta', opts.eta],
      ['Profile', profile.name === 'a1111' ? undefined : profile.name],
      ['Version', VERSION],
    ]);
    images.push({ width, height, rgb: rgb[i], seed: noise.seeds[i], parameters, png: await encodePng(rgb[i], width, height, parameters) });
  }
  return { images, latents, latentShape: shape, sigmas };
}
