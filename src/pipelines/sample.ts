// The sampling loop shared by txt2img, img2img and the rest: CFG denoiser + a registered sampler over
// a σ list, with progress reporting in model evaluations.
import { getSampler } from '../sampling/registry.js';
import type { NoiseSource, SamplerOptions } from '../sampling/types.js';
import type { Tensor } from '../tensor/tensor.js';
import { cfgDenoiser, type UNetLike } from './denoiser.js';
import type { Profile } from './profiles.js';

export interface Progress {
  readonly step: number;
  readonly total: number;
  readonly elapsedMs: number;
}

export interface SampleRequest {
  /** The UNet to call: a loaded model, or a wrapper around one (inpainting's extra channels). */
  readonly model: UNetLike;
  readonly profile: Profile;
  /** ComfyUI sampler id (already resolved). */
  readonly sampler: string;
  readonly sigmas: readonly number[];
  /** Start latent [B, C, h, w] (already noised / scaled for sigmas[0]). */
  readonly x: Float64Array;
  readonly shape: readonly [number, number, number, number];
  readonly cond: Tensor;
  readonly uncond: Tensor;
  readonly cfgScale: number;
  readonly noise: NoiseSource;
  readonly eta?: number;
  readonly sNoise?: number;
  readonly onProgress?: (p: Progress) => void;
}

export async function sampleLatents(req: SampleRequest): Promise<Float64Array> {
  const info = getSampler(req.sampler);
  const steps = req.sigmas.length - 1;
  const expected = info.evalsPerStep ? Math.round(info.evalsPerStep * steps) : steps;
  const started = Date.now();
  let evals = 0;
  const denoiser = cfgDenoiser({
    model: req.model, profile: req.profile, schedule: req.profile.schedule(), shape: req.shape,
    cond: req.cond, uncond: req.uncond, cfgScale: req.cfgScale,
    onEval: () => {
      evals++;
      req.onProgress?.({ step: Math.min(evals, expected), total: expected, elapsedMs: Date.now() - started });
    },
  });
  const options: SamplerOptions = { eta: req.eta, sNoise: req.sNoise, lmsUpdateOnLastStep: req.profile.lmsUpdateOnLastStep };
  return info.fn(denoiser, req.x, req.sigmas, options, req.noise);
}
