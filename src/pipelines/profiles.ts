// The two reproduction profiles: every convention that decides the image in A1111 and in ComfyUI
// (../shared/ref/profiles.md lists them with their sources). Pipelines ask the profile instead of
// hard-coding one tool's choices.
import { DiscreteSchedule, sdSchedule, sigmaTable } from '../sampling/discrete.js';
import { ImageRNG, type A1111RandnSource } from '../sampling/rng-philox.js';
import { comfyPrepareNoise, TorchCpuGenerator } from '../sampling/rng-torch-cpu.js';
import type { NoiseSource } from '../sampling/types.js';
import type { Tensor } from '../tensor/tensor.js';

export type ProfileName = 'a1111' | 'comfy';
export const PROFILES: readonly ProfileName[] = ['a1111', 'comfy'];
export type RngName = 'cpu' | 'gpu' | 'nv';

export interface NoiseSetup {
  /** Initial noise [B, C, h, w], unit variance. */
  readonly initial: Float64Array;
  /** Per-step noise for ancestral / SDE samplers. */
  readonly source: NoiseSource;
  /** The seed of each image, as written into its metadata. */
  readonly seeds: readonly number[];
}

export interface NoiseRequest {
  readonly seed: number;
  readonly batchSize: number;
  /** Latent shape of one image: [C, h, w]. */
  readonly shape: readonly [number, number, number];
  readonly rng?: RngName;
  readonly variationSeed?: number;
  readonly variationStrength?: number;
  readonly etaNoiseSeedDelta?: number;
  /** A1111 "Resize seed from width/height": draw the noise at this pixel size and centre it. */
  readonly seedResizeFrom?: { readonly width: number; readonly height: number };
}

export interface Profile {
  readonly name: ProfileName;
  /** The σ table the denoiser and schedules use. */
  schedule(alphasCumprod?: ArrayLike<number>): DiscreteSchedule;
  /** The UNet timestep for σ: fractional (k-diffusion) or the nearest table index (ComfyUI). */
  timestep(schedule: DiscreteSchedule, sigma: number): number;
  /** Input scaling c_in applied to x (A1111 multiplies by the reciprocal, ComfyUI divides). */
  scaleInput(x: number, sigma: number): number;
  /** Order of the CFG batch. */
  readonly condFirst: boolean;
  /** Whether cfg = 1 skips the unconditional pass. */
  readonly skipUncondAtCfg1: boolean;
  /** Multiplier of the initial noise for a full-strength run. */
  startScale(sigma0: number, sigmaMax: number): number;
  noise(req: NoiseRequest): NoiseSetup;
  readonly defaultRng: RngName;
  /** LMS applies its update on the last step (k-diffusion upstream) or returns `denoised` (ComfyUI). */
  readonly lmsUpdateOnLastStep: boolean;
}

const toF64 = (a: Float32Array) => Float64Array.from(a);

const a1111: Profile = {
  name: 'a1111',
  schedule: (acp) => (acp ? new DiscreteSchedule('kdiffusion', sigmaTable('kdiffusion', acp)) : sdSchedule('kdiffusion')),
  timestep: (s, sigma) => s.sigmaToT(sigma),
  scaleInput: (x, sigma) => Math.fround(x * Math.fround(1 / Math.sqrt(sigma * sigma + 1))),
  condFirst: true,
  skipUncondAtCfg1: false,
  startScale: (sigma0) => sigma0,
  defaultRng: 'gpu',
  lmsUpdateOnLastStep: true,
  noise(req) {
    const seeds = Array.from({ length: req.batchSize }, (_, i) => req.seed + i);
    const subseeds = req.variationSeed !== undefined ? seeds.map((_, i) => req.variationSeed! + i) : undefined;
    const rng = new ImageRNG(req.shape, {
      seeds, subseeds, subseedStrength: req.variationStrength ?? 0,
      etaNoiseSeedDelta: req.etaNoiseSeedDelta ?? 0, source: (req.rng ?? 'gpu') as A1111RandnSource,
      seedResizeFromW: req.seedResizeFrom?.width ?? 0, seedResizeFromH: req.seedResizeFrom?.height ?? 0,
    });
    const initial = toF64(rng.next());
    return { initial, source: () => toF64(rng.next()), seeds };
  },
};

const comfy: Profile = {
  name: 'comfy',
  schedule: () => sdSchedule('comfy'),
  timestep: (s, sigma) => s.sigmaToTQuantized(sigma),
  scaleInput: (x, sigma) => Math.fround(x / Math.sqrt(sigma * sigma + 1)),
  condFirst: false,
  skipUncondAtCfg1: true,
  startScale: (sigma0, sigmaMax) => (Math.abs(sigma0 - sigmaMax) <= 1e-5 * Math.max(Math.abs(sigma0), Math.abs(sigmaMax)) || sigma0 > sigmaMax ? Math.sqrt(1 + sigma0 * sigma0) : sigma0),
  defaultRng: 'cpu',
  lmsUpdateOnLastStep: false,
  noise(req) {
    const full = [req.batchSize, ...req.shape];
    if (req.rng && req.rng !== 'cpu') {
      throw new Error(`rng '${req.rng}': the comfy profile draws noise with torch's CPU generator only (use rng 'cpu', or the a1111 profile for GPU/NV noise)`);
    }
    if (req.variationStrength) throw new Error('variation seeds are an A1111 feature: use the a1111 profile');
    if (req.seedResizeFrom) throw new Error('"resize seed from" is an A1111 feature: use the a1111 profile');
    const initial = toF64(comfyPrepareNoise(full, req.seed));
    // ComfyUI seeds a fresh generator with the same seed for sampler noise: its first draw repeats the initial noise.
    const gen = new TorchCpuGenerator(req.seed);
    return { initial, source: () => toF64(gen.randn(full)), seeds: Array.from({ length: req.batchSize }, () => req.seed) };
  },
};

export interface NoiseOptions {
  readonly rng?: RngName;
  readonly variationSeed?: number;
  readonly variationStrength?: number;
  readonly etaNoiseSeedDelta?: number;
  readonly seedResizeFrom?: { readonly width: number; readonly height: number };
  /** Initial noise [B, C, h, w] of unit variance replacing the seeded draw (reproducibility tests). */
  readonly noise?: Tensor;
}

/** A run's noise for a latent of `shape` [B, C, h, w]: the profile's seeded draws, or the caller's tensor. */
export function runNoise(profile: Profile, seed: number, shape: readonly [number, number, number, number], opts: NoiseOptions): NoiseSetup {
  const setup = profile.noise({
    seed, batchSize: shape[0], shape: [shape[1], shape[2], shape[3]], rng: opts.rng ?? profile.defaultRng,
    variationSeed: opts.variationSeed, variationStrength: opts.variationStrength, etaNoiseSeedDelta: opts.etaNoiseSeedDelta,
    seedResizeFrom: opts.seedResizeFrom,
  });
  if (!opts.noise) return setup;
  const n = opts.noise;
  if (n.shape.length !== 4 || !n.shape.every((d, i) => d === shape[i])) {
    throw new Error(`noise must have shape [${shape.join(', ')}], got [${n.shape.join(', ')}]`);
  }
  return { ...setup, initial: Float64Array.from(n.toFloat32Array()) };
}

export function getProfile(name: string): Profile {
  if (name === 'a1111') return a1111;
  if (name === 'comfy') return comfy;
  throw new Error(`unknown profile '${name}' (choose ${PROFILES.join(' or ')})`);
}
