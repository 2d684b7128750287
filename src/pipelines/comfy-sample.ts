// ComfyUI's `common_ksampler` as one stage: the noise prepared from the seed for the whole batch, the
// σ list cut by denoise / start / end step, the latent scaled in and out, inpainting by noise mask
// (KSamplerX0Inpaint) and the extra channels of inpainting checkpoints — what KSampler,
// KSamplerAdvanced and the custom-sampling nodes share.
import type { StableDiffusionModel } from '../models/sd-model.js';
import { comfyPrepareNoise, TorchCpuGenerator } from '../sampling/rng-torch-cpu.js';
import type { GuidedDenoiser } from '../sampling/types.js';
import { comfyGuidedDenoiser } from './comfy-guidance.js';
import type { ComfyConditioning } from './comfy-conditioning.js';
import type { UNetLike } from './denoiser.js';
import { blendDenoiser, img2imgSigmas, withConcat } from './img2img.js';
import { interpolate } from './masks.js';
import { getProfile } from './profiles.js';
import { sampleLatents, type Progress } from './sample.js';
import { comfySigmas } from '../sampling/schedules.js';

export interface LatentBatch {
  /** Unscaled VAE latents [B, C, h, w]. */
  readonly samples: Float32Array;
  readonly shape: readonly [number, number, number, number];
  /** 1 = denoise, 0 = keep; [B or 1, H, W] at any resolution. */
  readonly noiseMask?: { readonly data: Float32Array; readonly batch: number; readonly height: number; readonly width: number };
  readonly batchIndex?: readonly number[];
}

export interface ComfySampleRequest {
  readonly model: StableDiffusionModel;
  readonly positive: ComfyConditioning;
  readonly negative: ComfyConditioning;
  readonly latent: LatentBatch;
  readonly seed: number;
  readonly cfg: number;
  readonly sampler: string;
  /** The σ list to walk (see comfySigmas), already cut to the steps that run. */
  readonly sigmas: readonly number[];
  /** KSamplerAdvanced `add_noise: disable`: start from the latent itself. */
  readonly disableNoise?: boolean;
  readonly onProgress?: (p: Progress) => void | Promise<void>;
}

/** KSampler.sample's σ list: `steps` of the schedule (of ⌊steps ÷ denoise⌋ when denoise < 1), then cut (cutSigmas). */
export function comfyKSamplerSigmas(sampler: string, scheduler: string, steps: number, opts: {
  readonly denoise?: number; readonly startStep?: number; readonly lastStep?: number; readonly forceFullDenoise?: boolean;
} = {}): number[] {
  return cutSigmas(img2imgSigmas('comfy', sampler, scheduler, steps, opts.denoise ?? 1).sigmas, opts);
}

/** KSampler.sample's cut of a σ list at `lastStep` (the end forced to 0 with forceFullDenoise) and from `startStep`. */
export function cutSigmas(sigmas: number[], opts: { readonly startStep?: number; readonly lastStep?: number; readonly forceFullDenoise?: boolean }): number[] {
  if (opts.lastStep !== undefined && opts.lastStep < sigmas.length - 1) {
    sigmas = sigmas.slice(0, opts.lastStep + 1);
    if (opts.forceFullDenoise) sigmas[sigmas.length - 1] = 0;
  }
  if (opts.startStep !== undefined) {
    if (opts.startStep < sigmas.length - 1) sigmas = sigmas.slice(opts.startStep);
    else return [];
  }
  return sigmas;
}

/** ComfyUI's blank masked-image latent of SD1/SD2 inpainting checkpoints (zero pixels, encoded). */
const BLANK_INPAINT = [0.8223, -0.6876, 0.6364, 0.138];

/**
 * BasicScheduler (custom sampling): `steps` of the schedule, or the last steps + 1 σ of a
 * ⌊steps ÷ denoise⌋-step schedule — without KSampler's sampler-specific σ rules.
 */
export function comfyBasicSigmas(scheduler: string, steps: number, denoise: number): number[] {
  if (denoise <= 0) return [];
  if (denoise >= 1) return comfySigmas(scheduler, steps);
  return comfySigmas(scheduler, Math.trunc(steps / denoise)).slice(-(steps + 1));
}

/** SDTurboScheduler: the σ of timesteps 999, 899, … (from 10 − ⌊10·denoise⌋ on), then 0. */
export function sdTurboSigmas(steps: number, denoise: number): number[] {
  const table = getProfile('comfy').schedule().sigmas;
  const start = 10 - Math.trunc(10 * denoise);
  const ts = Array.from({ length: 10 }, (_, i) => (10 - i) * 100 - 1).slice(start, start + steps);
  return [...ts.map((t) => table[t]), 0];
}

/**
 * model_base.concat_cond: the mask (concat_mask, else the noise mask; resized, rounded; ones without)
 * and the masked image's latent (concat_latent_image scaled in, else the latent being sampled; the
 * blank-image latent without a mask) that an inpainting checkpoint takes beside x.
 */
function inpaintChannels(req: ComfySampleRequest, init: Float64Array, noiseMask: Float64Array | undefined, scale: number): Float32Array {
  const [B, C, h, w] = req.latent.shape;
  const plane = h * w;
  const entry = req.positive.find((e) => e.concatLatent || e.concatMask);
  let mask = noiseMask;
  if (entry?.concatMask) {
    const m = entry.concatMask;
    const first = m.data.subarray(0, m.height * m.width);
    mask = m.height === h && m.width === w ? Float64Array.from(first) : interpolate(first, 1, m.height, m.width, h, w, 'bilinear');
  }
  let image: ArrayLike<number> = init;
  if (entry?.concatLatent) {
    const l = entry.concatLatent;
    const [lb, lc, lh, lw] = l.shape;
    const src = lh === h && lw === w ? l.samples : interpolate(l.samples, lb * lc, lh, lw, h, w, 'bilinear');
    image = Float64Array.from({ length: B * C * plane }, (_, k) => Math.fround(src[k % (lb * lc * plane)] * scale));
  }
  const concat = new Float32Array(B * (1 + C) * plane);
  for (let b = 0; b < B; b++) {
    const o = b * (1 + C) * plane;
    for (let i = 0; i < plane; i++) concat[o + i] = mask ? Math.round(mask[i]) : 1;
    for (let c = 0; c < C; c++) {
      for (let i = 0; i < plane; i++) concat[o + (1 + c) * plane + i] = mask ? image[(b * C + c) * plane + i] : BLANK_INPAINT[c];
    }
  }
  return concat;
}

/** Samples a latent batch as ComfyUI's KSampler does; returns unscaled latents of the same shape. */
export async function comfySample(req: ComfySampleRequest): Promise<Float32Array> {
  return (await comfySampleWithDenoised(req)).samples;
}

/** comfySample, also returning the last prediction of the clean latent (SamplerCustom's `denoised_output`). */
export async function comfySampleWithDenoised(req: ComfySampleRequest): Promise<{ samples: Float32Array; denoised: Float32Array }> {
  const { model, latent } = req;
  const shape = latent.shape;
  const [B, C, h, w] = shape;
  if (C !== model.latentChannels) throw new Error(`the latent has ${C} channels, the model denoises ${model.latentChannels}`);
  const sigmas = [...req.sigmas];
  if (sigmas.length === 0) return { samples: latent.samples, denoised: latent.samples };
  const profile = getProfile('comfy');
  const schedule = profile.schedule();
  const scale = model.scaleFactor;
  const init = Float64Array.from(latent.samples, (v) => Math.fround(v * scale));
  const n = init.length;
  const plane = h * w;

  const initial = req.disableNoise ? new Float64Array(n) : Float64Array.from(comfyPrepareNoise([...shape], req.seed, latent.batchIndex));
  // ComfyUI seeds a fresh generator with the same seed for the sampler's own noise.
  const gen = new TorchCpuGenerator(req.seed);
  const noise = () => Float64Array.from(gen.randn([...shape]));
  const startScale = profile.startScale(sigmas[0], schedule.sigmaMax);
  const x = Float64Array.from(init, (v, i) => v + initial[i] * startScale);

  let mask: Float64Array | undefined;
  if (latent.noiseMask) {
    const m = latent.noiseMask;
    const first = m.data.subarray(0, m.height * m.width);
    mask = m.height === h && m.width === w ? Float64Array.from(first) : interpolate(first, 1, m.height, m.width, h, w, 'bilinear');
  }
  let unet: UNetLike = model;
  if (model.concatChannels > 0) {
    // The extra channels are laid out at full latent size; area entries would crop x but not them.
    if ([...req.positive, ...req.negative].some((e) => e.area || e.setAreaToBounds)) {
      throw new Error(`${model.path}: area conditioning with an inpainting checkpoint is not supported yet`);
    }
    unet = withConcat(model, inpaintChannels(req, init, mask, scale), [B, C, h, w]);
  }
  const denoiser: GuidedDenoiser = comfyGuidedDenoiser({
    model: unet, profile, schedule, shape: [B, C, h, w], positive: req.positive, negative: req.negative, cfgScale: req.cfg, sigmas,
  });
  let wrap: ((d: GuidedDenoiser) => GuidedDenoiser) | undefined;
  if (mask) {
    const blendNoise = req.sampler === 'ddim' ? Float64Array.from(new TorchCpuGenerator(req.seed + 1).randn([...shape])) : initial;
    const m = mask;
    wrap = (d) => blendDenoiser(d, profile, init, m, plane, blendNoise);
  }
  let last: Float64Array | undefined;
  const out = await sampleLatents({
    model: unet, profile, sampler: req.sampler, sigmas, x, shape: [B, C, h, w], cfgScale: req.cfg, noise,
    denoiser, wrapDenoiser: wrap, onProgress: async (p) => {
      if (p.denoised) last = Float64Array.from(p.denoised);
      await req.onProgress?.(p);
    },
  });
  const inv = 1 / scale;
  const samples = Float32Array.from(out, (v) => v * inv);
  return { samples, denoised: last ? Float32Array.from(last, (v) => v * inv) : samples };
}
