// SDXL's refiner: the base samples the first part of the σ schedule and the refiner, with its own
// conditioning (aesthetic scores, G alone), the rest. The two tools do it differently:
// - ComfyUI (two KSamplerAdvanced): the base runs steps 0…s and returns its noisy latent; the
//   refiner starts a fresh sampler on steps s…end without adding noise. s = round(switchAt·steps).
// - A1111 (`sd_samplers_common.apply_refiner`): one sampler run; at each denoiser call the
//   completed ratio (999 − t)/1000, t the σ's nearest table index, is compared with switchAt, and
//   from the first call at or past it on, the refiner and its conds answer. A multistep sampler keeps
//   its history across the switch.
import type { StableDiffusionModel } from '../models/sd-model.js';
import type { GuidedDenoiser, NoiseSource } from '../sampling/types.js';
import type { ConditioningResult } from './conditioning.js';
import { cfgDenoiser } from './denoiser.js';
import type { Profile } from './profiles.js';
import { sampleLatents, type Progress } from './sample.js';
import { roundHalfEven } from '../sampling/schedules.js';

export interface RefinerOptions {
  /** An SDXL refiner (or any model of the same latent space). */
  readonly model: StableDiffusionModel;
  /** Fraction of the schedule the base runs (A1111 "Switch at", default 0.8). */
  readonly switchAt?: number;
}

export interface RefinedRun {
  readonly base: StableDiffusionModel;
  readonly refiner: StableDiffusionModel;
  readonly switchAt: number;
  readonly profile: Profile;
  readonly sampler: string;
  readonly sigmas: readonly number[];
  readonly x: Float64Array;
  readonly shape: readonly [number, number, number, number];
  readonly baseText: ConditioningResult;
  readonly refinerText: ConditioningResult;
  readonly cfgScale: number;
  readonly noise: NoiseSource;
  /** A fresh noise stream for ComfyUI's second KSamplerAdvanced (seeded again with the same seed). */
  readonly freshNoise: () => NoiseSource;
  readonly eta?: number;
  readonly sNoise?: number;
  readonly onProgress?: (p: Progress) => void | Promise<void>;
}


/** The step at which ComfyUI's hand-off gives the latent to the refiner. */
export function comfySwitchStep(switchAt: number, steps: number): number {
  return Math.min(steps, Math.max(0, roundHalfEven(switchAt * steps)));
}

export function checkSwitchAt(switchAt: number): void {
  if (!(Number.isFinite(switchAt) && switchAt >= 0 && switchAt <= 1)) throw new Error(`refiner switch-at must be from 0 to 1, got ${switchAt}`);
}

export async function sampleWithRefiner(run: RefinedRun): Promise<Float64Array> {
  checkSwitchAt(run.switchAt);
  if (run.refiner.latentChannels !== run.base.latentChannels) throw new Error(`${run.refiner.path}: the refiner's latent has ${run.refiner.latentChannels} channels, the base's ${run.base.latentChannels}`);
  return run.profile.name === 'comfy' ? comfyHandoff(run) : a1111Switch(run);
}

async function comfyHandoff(run: RefinedRun): Promise<Float64Array> {
  const steps = run.sigmas.length - 1;
  const s = comfySwitchStep(run.switchAt, steps);
  const common = { profile: run.profile, sampler: run.sampler, shape: run.shape, cfgScale: run.cfgScale, eta: run.eta, sNoise: run.sNoise, onProgress: run.onProgress };
  let x = run.x;
  if (s > 0) {
    x = await sampleLatents({ ...common, model: run.base, sigmas: run.sigmas.slice(0, s + 1), x, conditioning: run.baseText, noise: run.noise });
  }
  if (s >= steps) return x;
  // The LATENT between the two samplers is x / scale (float32), read back × the refiner's scale.
  const sb = run.base.scaleFactor;
  const sr = run.refiner.scaleFactor;
  const handed = Float64Array.from(x, (v) => Math.fround(Math.fround(Math.fround(v) / sb) * sr));
  return sampleLatents({ ...common, model: run.refiner, sigmas: run.sigmas.slice(s), x: handed, conditioning: run.refinerText, noise: run.freshNoise() });
}

async function a1111Switch(run: RefinedRun): Promise<Float64Array> {
  const schedule = run.profile.schedule();
  const guidance = (model: StableDiffusionModel, conditioning: ConditioningResult) => cfgDenoiser({
    model, profile: run.profile, schedule, shape: run.shape, conditioning, sigmas: run.sigmas, cfgScale: run.cfgScale,
  });
  const base = guidance(run.base, run.baseText);
  const refiner = guidance(run.refiner, run.refinerText);
  let switched = false;
  const pick = (sigma: number): GuidedDenoiser => {
    if (!switched && (999 - schedule.sigmaToTQuantized(sigma)) / 1000 >= run.switchAt) switched = true;
    return switched ? refiner : base;
  };
  const denoiser: GuidedDenoiser = Object.assign((x: Float64Array, sigma: number) => pick(sigma)(x, sigma), {
    withUncond: (x: Float64Array, sigma: number) => pick(sigma).withUncond(x, sigma),
  });
  return sampleLatents({
    model: run.base, profile: run.profile, sampler: run.sampler, sigmas: run.sigmas, x: run.x, shape: run.shape, cfgScale: run.cfgScale,
    noise: run.noise, eta: run.eta, sNoise: run.sNoise, onProgress: run.onProgress, denoiser,
  });
}
