// The sampling loop shared by txt2img, img2img and the rest: CFG denoiser + a registered sampler over
// a σ list, with progress reporting in model evaluations.
import { getSampler } from '../sampling/registry.js';
import type { GuidedDenoiser, NoiseSource, SamplerOptions } from '../sampling/types.js';
import type { Tensor } from '../tensor/tensor.js';
import { cfgDenoiser, type UNetLike } from './denoiser.js';
import type { TextConditioning } from './conditioning.js';
import type { Profile } from './profiles.js';

export interface Progress {
  readonly step: number;
  readonly total: number;
  readonly elapsedMs: number;
  /**
   * The current prediction of the clean latent [B, C, h, w] (after CFG and any wrapper), for previews
   * (see preview.ts). Read it, never write it; copy it to keep it past the callback.
   */
  readonly denoised?: Float64Array;
  readonly shape?: readonly [number, number, number, number];
}

/**
 * Thrown from `onProgress` to end sampling early: the run then finishes with the last prediction of
 * the clean latent as its result, as A1111's interrupt and skip do (`launch_sampling` returns
 * `last_latent`), so the caller still gets an image of the current state.
 */
export class SamplingStopped extends Error {
  constructor() {
    super('sampling stopped');
    this.name = 'SamplingStopped';
  }
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
  /** Fixed text conditioning [B, T, W]; not needed when `conditioning` is given. */
  readonly cond?: Tensor;
  readonly uncond?: Tensor;
  /** Scheduled / composable prompt conditioning (prompt editing, AND), from encodeConditioning. */
  readonly conditioning?: TextConditioning;
  readonly cfgScale: number;
  readonly noise: NoiseSource;
  readonly eta?: number;
  readonly sNoise?: number;
  /** May return a promise (a preview decode, say); sampling waits for it before the next step. */
  readonly onProgress?: (p: Progress) => void | Promise<void>;
  /**
   * Wraps the CFG denoiser before the sampler sees it: inpainting blends the original latent into x
   * and into the prediction around each call (A1111's CFGDenoiser mask, ComfyUI's KSamplerX0Inpaint).
   */
  readonly wrapDenoiser?: (denoiser: GuidedDenoiser) => GuidedDenoiser;
  /** A guidance of the caller's (ComfyUI's conditioning lists, say) instead of the text CFG denoiser. */
  readonly denoiser?: GuidedDenoiser;
}

export async function sampleLatents(req: SampleRequest): Promise<Float64Array> {
  const info = getSampler(req.sampler);
  const steps = req.sigmas.length - 1;
  const expected = info.evalsPerStep ? Math.round(info.evalsPerStep * steps) : steps;
  const started = Date.now();
  let evals = 0;
  const count = (d: GuidedDenoiser): GuidedDenoiser => Object.assign(async (x: Float64Array, sigma: number) => {
    const r = await d(x, sigma);
    evals++;
    return r;
  }, {
    withUncond: async (x: Float64Array, sigma: number) => {
      const r = await d.withUncond(x, sigma);
      evals++;
      return r;
    },
  });
  const denoiser = req.denoiser ? count(req.denoiser) : cfgDenoiser({
    model: req.model, profile: req.profile, schedule: req.profile.schedule(), shape: req.shape,
    cond: req.cond, uncond: req.uncond, conditioning: req.conditioning, sigmas: req.sigmas, cfgScale: req.cfgScale,
    onEval: () => { evals++; },
  });
  const inner = req.wrapDenoiser ? req.wrapDenoiser(denoiser) : denoiser;
  let last: Float64Array | undefined;
  // Progress is reported once each call returns, so it can carry the prediction the sampler will use.
  const report = async (denoised: Float64Array): Promise<void> => {
    last = denoised;
    await req.onProgress?.({ step: Math.min(evals, expected), total: expected, elapsedMs: Date.now() - started, denoised, shape: req.shape });
  };
  const reporting: GuidedDenoiser = Object.assign(async (x: Float64Array, sigma: number) => {
    const d = await inner(x, sigma);
    await report(d);
    return d;
  }, {
    withUncond: async (x: Float64Array, sigma: number) => {
      const r = await inner.withUncond(x, sigma);
      await report(r.denoised);
      return r;
    },
  });
  const options: SamplerOptions = { eta: req.eta, sNoise: req.sNoise, lmsUpdateOnLastStep: req.profile.lmsUpdateOnLastStep };
  try {
    return await info.fn(reporting, req.x, req.sigmas, options, req.noise);
  } catch (err) {
    if (err instanceof SamplingStopped && last) return Float64Array.from(last);
    throw err;
  }
}
