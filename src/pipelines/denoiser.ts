// Wraps the UNet as k-diffusion's denoiser D(x, σ) with classifier-free guidance.
//
// The text conditioning may change during sampling (A1111 prompt editing and alternation) and may
// have several weighted parts (A1111 `AND`). Which schedule entry applies is decided as each tool
// decides it: A1111's CFGDenoiser counts its own calls from 0 (so Heun's second evaluation already
// counts as the next step); for the comfy profile the step is read off the σ list. Cond and uncond
// of equal length run as one batch ([cond…, uncond…] in A1111, [uncond, cond] in ComfyUI); when the
// lengths differ A1111 makes two UNet calls and ComfyUI repeats both contexts to a common length.
import type { StableDiffusionModel } from '../models/sd-model.js';
import type { DiscreteSchedule } from '../sampling/discrete.js';
import type { GuidedDenoiser, GuidedPrediction } from '../sampling/types.js';
import { Tensor } from '../tensor/tensor.js';
import { condAtStep, type CondTensor, type TextConditioning } from './conditioning.js';
import type { Profile } from './profiles.js';

/**
 * What the denoiser needs of a model; pipelines may wrap it (e.g. inpainting adds mask channels).
 * `admKind` (SDXL) says the UNet also takes each row's vector `y`.
 */
export type UNetLike = Pick<StableDiffusionModel, 'prediction' | 'predict'> & { readonly admKind?: StableDiffusionModel['admKind']; readonly unetHeads?: StableDiffusionModel['unetHeads'] };

export interface GuidanceInput {
  readonly model: UNetLike;
  readonly profile: Profile;
  readonly schedule: DiscreteSchedule;
  /** Latent shape [B, C, h, w]. */
  readonly shape: readonly [number, number, number, number];
  /** Fixed text conditioning, [B, T, W] each (already repeated to the batch). Ignored when `conditioning` is given. */
  readonly cond?: Tensor;
  readonly uncond?: Tensor;
  /** Scheduled / composable conditioning shared by every image of the batch. */
  readonly conditioning?: TextConditioning;
  /** The sampler's σ list (needed to place a call on the schedule under the comfy profile). */
  readonly sigmas?: readonly number[];
  readonly cfgScale: number;
  /** Called after each model evaluation (progress accounting). */
  readonly onEval?: () => void;
}

/** Context rows for one evaluation: cond rows, which rows (and weights) belong to each image, and uncond rows. */
interface StepContext {
  readonly cond: Float32Array;
  readonly condTokens: number;
  readonly condRows: number;
  /** Per image: [cond row, AND weight]. */
  readonly parts: readonly (readonly [number, number])[][];
  readonly uncond: Float32Array;
  readonly uncondTokens: number;
  readonly width: number;
  /** SDXL: the vector y of each cond row and of the uncond, [rows × adm]. */
  readonly condY?: Float32Array;
  readonly uncondY?: Float32Array;
}

/** The rows' vectors side by side, or undefined when the conds carry none (SD1/SD2). */
function stackY(ys: readonly (Float32Array | undefined)[]): Float32Array | undefined {
  if (ys.some((y) => !y)) return undefined;
  const n = ys[0]!.length;
  const out = new Float32Array(ys.length * n);
  ys.forEach((y, i) => out.set(y!, i * n));
  return out;
}

function fixedContext(cond: Tensor, uncond: Tensor, B: number): StepContext {
  if (cond.shape[0] !== B || uncond.shape[0] !== B) throw new Error('conditioning batch does not match the latent batch');
  return {
    cond: cond.toFloat32Array(), condTokens: cond.shape[1], condRows: B,
    parts: Array.from({ length: B }, (_, i) => [[i, 1.0] as const]),
    uncond: uncond.toFloat32Array(), uncondTokens: uncond.shape[1], width: cond.shape[2],
  };
}

/** A1111 `stack_conds`: shorter parts are extended by repeating their last token vector. */
function padTo(c: CondTensor, tokens: number): Float32Array {
  if (c.tokens === tokens) return c.data;
  const out = new Float32Array(tokens * c.width);
  out.set(c.data);
  const last = c.data.subarray((c.tokens - 1) * c.width, c.tokens * c.width);
  for (let t = c.tokens; t < tokens; t++) out.set(last, t * c.width);
  return out;
}

function scheduledContext(tc: TextConditioning, step: number, B: number): StepContext {
  const parts = tc.cond.map((p) => condAtStep(p.schedule, step));
  const width = parts[0].width;
  const tokens = Math.max(...parts.map((p) => p.tokens));
  const P = parts.length;
  const per = tokens * width;
  const cond = new Float32Array(B * P * per);
  const padded = parts.map((p) => padTo(p, tokens));
  for (let i = 0; i < B; i++) padded.forEach((d, j) => cond.set(d, (i * P + j) * per));
  const u = condAtStep(tc.uncond, step);
  const uncond = new Float32Array(B * u.tokens * width);
  for (let i = 0; i < B; i++) uncond.set(u.data, i * u.data.length);
  const rowsOf = <T>(perImage: readonly T[]) => Array.from({ length: B }, () => perImage).flat();
  return {
    cond, condTokens: tokens, condRows: B * P,
    parts: Array.from({ length: B }, (_, i) => tc.cond.map((p, j) => [i * P + j, p.weight] as const)),
    uncond, uncondTokens: u.tokens, width,
    condY: stackY(rowsOf(parts.map((p) => p.y))), uncondY: stackY(rowsOf([u.y])),
  };
}

/** Repeats each row's tokens `times` times (ComfyUI's CONDCrossAttn.concat to a common length). */
export function tile(data: Float32Array, rows: number, tokens: number, width: number, times: number): Float32Array {
  if (times === 1) return data;
  const per = tokens * width;
  const out = new Float32Array(data.length * times);
  for (let r = 0; r < rows; r++) {
    const row = data.subarray(r * per, (r + 1) * per);
    for (let k = 0; k < times; k++) out.set(row, (r * times + k) * per);
  }
  return out;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * The denoised prediction D = c_skip·x + c_out·F of `n` values: x from `x[xo…]`, the raw UNet output
 * F (eps or v) from `out[o…]`, in float64 (k-diffusion's / ComfyUI's `calculate_denoised`).
 */
export function denoisedFromOutput(prediction: UNetLike['prediction'], x: ArrayLike<number>, xo: number, sigma: number, out: ArrayLike<number>, o: number, n: number): Float64Array {
  const d = new Float64Array(n);
  if (prediction === 'eps') {
    for (let i = 0; i < n; i++) d[i] = x[xo + i] - sigma * out[o + i];
  } else {
    const s2 = sigma * sigma + 1;
    const cSkip = 1 / s2;
    const cOut = -sigma / Math.sqrt(s2);
    for (let i = 0; i < n; i++) d[i] = x[xo + i] * cSkip + out[o + i] * cOut;
  }
  return d;
}

/** A1111 sampler step for a call at σ under σ-based scheduling: the last σ-list index at or above it. */
export function stepFromSigma(sigmas: readonly number[], sigma: number): number {
  let step = 0;
  for (let i = 0; i < sigmas.length; i++) if (sigmas[i] >= sigma * (1 - 1e-6)) step = i;
  return step;
}

export function cfgDenoiser(input: GuidanceInput): GuidedDenoiser {
  const { model, profile, schedule, shape, cfgScale } = input;
  const [B] = shape;
  const per = shape[1] * shape[2] * shape[3];
  const n = B * per;
  let fixed: StepContext | undefined;
  if (!input.conditioning) {
    if (!input.cond || !input.uncond) throw new Error('the denoiser needs text conditioning (cond and uncond, or conditioning)');
    fixed = fixedContext(input.cond, input.uncond, B);
  }
  // A1111's CFGDenoiser.step: every call counts, starting at 0.
  let calls = 0;
  const stepFor = (sigma: number) => (profile.name === 'comfy' && input.sigmas ? stepFromSigma(input.sigmas, sigma) : calls);
  const contexts = new Map<number, StepContext>();
  const contextAt = (step: number): StepContext => {
    if (fixed) return fixed;
    let c = contexts.get(step);
    if (!c) {
      c = scheduledContext(input.conditioning!, step, B);
      // Schedules switch a few times at most; keep the last few contexts only.
      if (contexts.size > 8) contexts.clear();
      contexts.set(step, c);
    }
    return c;
  };

  /** One UNet call: `rows` copies of x (image i repeated as `reps[i]`), each with its context row (and vector y). */
  async function unet(x: Float64Array, sigma: number, imageOfRow: readonly number[], context: Float32Array, tokens: number, width: number, y?: Float32Array): Promise<Float32Array> {
    const rows = imageOfRow.length;
    const xin = new Float32Array(rows * per);
    imageOfRow.forEach((img, r) => {
      for (let i = 0; i < per; i++) xin[r * per + i] = profile.scaleInput(x[img * per + i], sigma);
    });
    const t = profile.timestep(schedule, sigma);
    if (model.admKind && !y) throw new Error('this SDXL model needs its vector conditioning (pooled text and sizes); the prompt was not encoded for SDXL');
    const out = await model.predict(
      Tensor.f32([rows, ...shape.slice(1)], xin), Tensor.f32([rows], new Float32Array(rows).fill(t)), Tensor.f32([rows, tokens, width], context),
      y ? Tensor.f32([rows, y.length / rows], y) : undefined,
    );
    return out.toFloat32Array();
  }
  const joinY = (a?: Float32Array, b?: Float32Array) => {
    if (!a || !b) return undefined;
    const out = new Float32Array(a.length + b.length);
    out.set(a);
    out.set(b, a.length);
    return out;
  };

  const toDenoised = (x: Float64Array, sigma: number, out: Float32Array, row: number, img: number): Float64Array =>
    denoisedFromOutput(model.prediction, x, img * per, sigma, out, row * per, per);

  /** Denoised predictions of every cond row and (optionally) every image's uncond. */
  async function evaluate(x: Float64Array, sigma: number, withUncond: boolean): Promise<{ ctx: StepContext; c: Float64Array[]; u?: Float64Array[] }> {
    const ctx = contextAt(stepFor(sigma));
    calls++;
    const condImages: number[] = [];
    ctx.parts.forEach((ps, img) => ps.forEach(() => condImages.push(img)));
    const uncondImages = Array.from({ length: B }, (_, i) => i);
    const W = ctx.width;
    let condOut: Float32Array;
    let uncondOut: Float32Array | undefined;
    if (!withUncond) {
      condOut = await unet(x, sigma, condImages, ctx.cond, ctx.condTokens, W, ctx.condY);
    } else if (ctx.condTokens === ctx.uncondTokens || profile.name === 'comfy') {
      let tokens = ctx.condTokens;
      let cond = ctx.cond;
      let uncond = ctx.uncond;
      if (ctx.condTokens !== ctx.uncondTokens) {
        tokens = (ctx.condTokens / gcd(ctx.condTokens, ctx.uncondTokens)) * ctx.uncondTokens;
        cond = tile(cond, ctx.condRows, ctx.condTokens, W, tokens / ctx.condTokens);
        uncond = tile(uncond, B, ctx.uncondTokens, W, tokens / ctx.uncondTokens);
      }
      const context = new Float32Array(cond.length + uncond.length);
      context.set(profile.condFirst ? cond : uncond, 0);
      context.set(profile.condFirst ? uncond : cond, profile.condFirst ? cond.length : uncond.length);
      const images = profile.condFirst ? [...condImages, ...uncondImages] : [...uncondImages, ...condImages];
      const y = profile.condFirst ? joinY(ctx.condY, ctx.uncondY) : joinY(ctx.uncondY, ctx.condY);
      const out = await unet(x, sigma, images, context, tokens, W, y);
      const condStart = profile.condFirst ? 0 : B;
      condOut = out.subarray(condStart * per, (condStart + ctx.condRows) * per);
      const uStart = profile.condFirst ? ctx.condRows : 0;
      uncondOut = out.subarray(uStart * per, (uStart + B) * per);
    } else {
      condOut = await unet(x, sigma, condImages, ctx.cond, ctx.condTokens, W, ctx.condY);
      uncondOut = await unet(x, sigma, uncondImages, ctx.uncond, ctx.uncondTokens, W, ctx.uncondY);
    }
    input.onEval?.();
    const c = condImages.map((img, r) => toDenoised(x, sigma, condOut, r, img));
    const u = uncondOut ? uncondImages.map((img) => toDenoised(x, sigma, uncondOut!, img, img)) : undefined;
    return { ctx, c, u };
  }

  const join = (parts: Float64Array[]): Float64Array => {
    const out = new Float64Array(n);
    parts.forEach((p, i) => out.set(p, i * per));
    return out;
  };

  async function withUncond(x: Float64Array, sigma: number): Promise<GuidedPrediction> {
    const { ctx, c, u } = await evaluate(x, sigma, true);
    const denoised = new Float64Array(n);
    // A1111 combine_denoised: u + Σ (c_k − u)·(w_k·cfg).
    ctx.parts.forEach((ps, img) => {
      const ui = u![img];
      const o = img * per;
      for (let i = 0; i < per; i++) denoised[o + i] = ui[i];
      for (const [row, w] of ps) {
        const scale = w * cfgScale;
        const ci = c[row];
        for (let i = 0; i < per; i++) denoised[o + i] += (ci[i] - ui[i]) * scale;
      }
    });
    return { denoised, uncond: join(u!) };
  }

  const denoise = async (x: Float64Array, sigma: number): Promise<Float64Array> => {
    if (cfgScale === 1 && profile.skipUncondAtCfg1) {
      const { ctx, c } = await evaluate(x, sigma, false);
      return join(ctx.parts.map((ps) => c[ps[0][0]]));
    }
    return (await withUncond(x, sigma)).denoised;
  };
  return Object.assign(denoise, { withUncond });
}
