// Wraps the UNet as k-diffusion's denoiser D(x, σ) with classifier-free guidance: one UNet call per
// step evaluates cond and uncond together as a batch of 2·B.
import type { StableDiffusionModel } from '../models/sd-model.js';
import type { DiscreteSchedule } from '../sampling/discrete.js';
import type { GuidedDenoiser, GuidedPrediction } from '../sampling/types.js';
import { Tensor } from '../tensor/tensor.js';
import type { Profile } from './profiles.js';

/** What the denoiser needs of a model; pipelines may wrap it (e.g. inpainting adds mask channels). */
export type UNetLike = Pick<StableDiffusionModel, 'prediction' | 'predict'>;

export interface GuidanceInput {
  readonly model: UNetLike;
  readonly profile: Profile;
  readonly schedule: DiscreteSchedule;
  /** Latent shape [B, C, h, w]. */
  readonly shape: readonly [number, number, number, number];
  /** Text conditioning, [B, T, W] each (already repeated to the batch). */
  readonly cond: Tensor;
  readonly uncond: Tensor;
  readonly cfgScale: number;
  /** Called after each model evaluation (progress accounting). */
  readonly onEval?: () => void;
}

function concatBatch(a: Tensor, b: Tensor): Tensor {
  const out = new Float32Array(a.size + b.size);
  out.set(a.toFloat32Array(), 0);
  out.set(b.toFloat32Array(), a.size);
  return Tensor.f32([a.shape[0] + b.shape[0], ...a.shape.slice(1)], out);
}

export function cfgDenoiser(input: GuidanceInput): GuidedDenoiser {
  const { model, profile, schedule, shape, cond, uncond, cfgScale } = input;
  const [B] = shape;
  const per = shape[1] * shape[2] * shape[3];
  const n = B * per;
  if (cond.shape[0] !== B || uncond.shape[0] !== B) throw new Error('conditioning batch does not match the latent batch');
  if (cond.shape[1] !== uncond.shape[1]) throw new Error('cond and uncond have different token lengths; pad them to the same number of chunks');
  const contextPair = profile.condFirst ? concatBatch(cond, uncond) : concatBatch(uncond, cond);

  /** One UNet call on x (cond only, or cond and uncond together); returns each half's denoised prediction. */
  async function evaluate(x: Float64Array, sigma: number, withUncond: boolean): Promise<{ c: Float64Array; u?: Float64Array }> {
    const copies = withUncond ? 2 : 1;
    const xin = new Float32Array(n * copies);
    for (let i = 0; i < n; i++) {
      const v = profile.scaleInput(x[i], sigma);
      for (let k = 0; k < copies; k++) xin[k * n + i] = v;
    }
    const t = profile.timestep(schedule, sigma);
    const ctx = withUncond ? contextPair : cond;
    const out = (await model.predict(Tensor.f32([B * copies, ...shape.slice(1)], xin), Tensor.f32([B * copies], new Float32Array(B * copies).fill(t)), ctx)).toFloat32Array();
    input.onEval?.();
    const s2 = sigma * sigma + 1;
    const toDenoised = (offset: number) => {
      const d = new Float64Array(n);
      if (model.prediction === 'eps') {
        for (let i = 0; i < n; i++) d[i] = x[i] - sigma * out[offset + i];
      } else {
        const cSkip = 1 / s2;
        const cOut = -sigma / Math.sqrt(s2);
        for (let i = 0; i < n; i++) d[i] = x[i] * cSkip + out[offset + i] * cOut;
      }
      return d;
    };
    if (!withUncond) return { c: toDenoised(0) };
    const [cOff, uOff] = profile.condFirst ? [0, n] : [n, 0];
    return { c: toDenoised(cOff), u: toDenoised(uOff) };
  }

  async function withUncond(x: Float64Array, sigma: number): Promise<GuidedPrediction> {
    const { c, u } = await evaluate(x, sigma, true);
    const denoised = new Float64Array(n);
    for (let i = 0; i < n; i++) denoised[i] = u![i] + (c[i] - u![i]) * cfgScale;
    return { denoised, uncond: u! };
  }

  const denoise = async (x: Float64Array, sigma: number): Promise<Float64Array> => {
    if (cfgScale === 1 && profile.skipUncondAtCfg1) return (await evaluate(x, sigma, false)).c;
    return (await withUncond(x, sigma)).denoised;
  };
  return Object.assign(denoise, { withUncond });
}
