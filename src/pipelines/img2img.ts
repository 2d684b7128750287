// Image to image: encode the input with the VAE, noise it to the σ that the denoising strength
// selects, and sample the rest of the schedule. The same core (`denoiseLatents`) runs inpainting
// (latent mask, 9-channel UNets), outpainting and the hires-fix second pass.
import type { StableDiffusionModel } from '../models/sd-model.js';
import { TorchCpuGenerator } from '../sampling/rng-torch-cpu.js';
import { sigmasFor } from '../sampling/schedules.js';
import type { GuidedDenoiser } from '../sampling/types.js';
import { Tensor } from '../tensor/tensor.js';
import { imageInfotext } from './infotext.js';
import { prepareText, withNetworks, type PreparedText } from './prompt-setup.js';
import type { ScheduleOptions } from '../text/prompt-a1111.js';
import type { UNetLike } from './denoiser.js';
import { decodeLatents, encodePng, type GeneratedImage } from './image-output.js';
import { loadRgb, resizeImage, rgbToTensor, type ImageSource, type RasterImage, type ResizeMode } from './image-input.js';
import type { InfoValue } from './parameters.js';
import { runNoise, type Profile, type ProfileName } from './profiles.js';
import { sampleLatents } from './sample.js';
import { checkTxt2ImgOptions, type EncodeMode, type Txt2ImgOptions, type Txt2ImgResult } from './options.js';
export type { EncodeMode } from './options.js';

/** How the VAE posterior becomes the init latent. */

export interface Img2ImgOptions extends Omit<Txt2ImgOptions, 'width' | 'height' | 'noise'> {
  readonly image: ImageSource;
  /** Processing size; by default the input's size rounded down to a multiple of 8. */
  readonly width?: number;
  readonly height?: number;
  /** Denoising strength from 0 (return the input's VAE round trip) to 1; default 0.75 as in A1111. */
  readonly strength?: number;
  readonly resizeMode?: ResizeMode;
  /**
   * A1111's `img2img_fix_steps` ("do exactly the amount of steps the slider specifies"): run `steps`
   * steps of a ⌊steps ÷ strength⌋-step schedule. Off by default, as in A1111.
   */
  readonly fixSteps?: boolean;
  /**
   * A1111 samples the VAE posterior (`get_first_stage_encoding` → `.sample()`), ComfyUI takes its
   * mean (`DiagonalGaussianRegularizer(sample=False)`); the default follows the profile.
   */
  readonly encode?: EncodeMode;
  /** Initial noise [B, 4, h, w] of unit variance, replacing the seeded draw. */
  readonly noise?: Tensor;
}

/** txt2img's result (its σ list is empty at strength 0) plus the init latent. */
export interface Img2ImgResult extends Txt2ImgResult {
  /** The init latent (VAE encoding × scale factor) before any noise. */
  readonly initLatent: Float64Array;
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

export function checkStrength(strength: number, what = 'strength'): void {
  check(Number.isFinite(strength) && strength >= 0 && strength <= 1, `${what} must be from 0 to 1, got ${strength}`);
}

export interface StrengthSchedule {
  /** The σ list the sampler walks (ending in 0); empty when nothing is sampled. */
  readonly sigmas: number[];
  /** Length (in steps) of the full schedule the run is cut from. */
  readonly scheduleSteps: number;
}

/**
 * Which σ the sampler walks for `steps` at denoising strength `strength`:
 * - a1111 (`sd_samplers_common.setup_img2img_steps` + `KDiffusionSampler.sample_img2img`): the
 *   schedule has `steps` steps and the last t_enc + 1 of them run, t_enc = ⌊min(s, 0.999)·steps⌋;
 *   with fixSteps (and always in the hires pass) the schedule has ⌊steps ÷ min(s, 0.999)⌋ steps and
 *   the last `steps` run. Strength 0 runs nothing here — A1111 itself would still run one step from
 *   its smallest σ.
 * - comfy (`KSampler.set_steps`): above 0.9999 the plain schedule; otherwise a ⌊steps ÷ s⌋-step
 *   schedule of which the last `steps` steps run; 0 runs nothing.
 * The sampler's own rules (discarding the penultimate σ, …) apply to the full schedule, as in both tools.
 */
export function img2imgSigmas(profile: ProfileName, sampler: string, scheduler: string, steps: number, strength: number, fixSteps = false): StrengthSchedule {
  checkStrength(strength);
  if (strength <= 0) return { sigmas: [], scheduleSteps: 0 };
  if (profile === 'comfy') {
    if (strength > 0.9999) return { sigmas: sigmasFor('comfy', sampler, scheduler, steps), scheduleSteps: steps };
    const total = Math.trunc(steps / strength);
    return { sigmas: sigmasFor('comfy', sampler, scheduler, total).slice(-(steps + 1)), scheduleSteps: total };
  }
  const s = Math.min(strength, 0.999);
  const total = fixSteps ? Math.trunc(steps / s) : steps;
  const tEnc = fixSteps ? steps - 1 : Math.trunc(s * steps);
  const all = sigmasFor('a1111', sampler, scheduler, total);
  return { sigmas: all.slice(total - tEnc - 1), scheduleSteps: total };
}

/**
 * VAE-encodes images in [-1, 1] to init latents (× scale factor). `sample` draws the posterior noise
 * from a torch-CPU generator seeded with the seed: A1111 draws it from torch's global generator,
 * which it never seeds, so no seed reproduces A1111's draw; this keeps runs repeatable.
 */
export async function encodeImage(model: StableDiffusionModel, image: Tensor, mode: EncodeMode, seed: number): Promise<Float64Array> {
  const { mean, logvar } = await model.encode(image);
  const m = mean.toFloat32Array();
  const out = new Float64Array(m.length);
  if (mode === 'mean') {
    for (let i = 0; i < m.length; i++) out[i] = Math.fround(m[i] * model.scaleFactor);
    return out;
  }
  const lv = logvar.toFloat32Array();
  const eps = new TorchCpuGenerator(seed).randn(mean.shape);
  for (let i = 0; i < m.length; i++) out[i] = Math.fround((m[i] + Math.exp(0.5 * lv[i]) * eps[i]) * model.scaleFactor);
  return out;
}

export function defaultEncodeMode(profile: Profile): EncodeMode {
  return profile.name === 'comfy' ? 'mean' : 'sample';
}

/** Everything the shared denoising core needs beyond the prompt options. */
export interface DenoiseJob {
  readonly model: StableDiffusionModel;
  readonly opts: Omit<Txt2ImgOptions, 'width' | 'height'>;
  readonly width: number;
  readonly height: number;
  readonly strength: number;
  readonly fixSteps?: boolean;
  /** Init latent [B, 4, h, w] (scaled), before noise. */
  readonly init: Float64Array;
  /** Latent-resolution repaint mask (h·w, 1 = repaint) for ordinary checkpoints' latent blending. */
  readonly latentMask?: Float64Array;
  /** A1111 masked content "latent noise" / "latent nothing": replaces the init latent under the mask. */
  readonly latentFill?: 'noise' | 'nothing';
  /** Extra UNet input [B, 5, h, w] of an inpainting checkpoint: mask, then the masked image's latent. */
  readonly concat?: Float32Array;
  /** Prompt-editing timeline: a hires pass reads switch points on its own steps after the base pass's. */
  readonly textSchedule?: ScheduleOptions;
  /** Steps of the base pass the prompt schedule is written against (default: this pass's steps). */
  readonly textBaseSteps?: number;
}

export interface DenoiseResult {
  readonly latents: Float64Array;
  readonly shape: [number, number, number, number];
  readonly sigmas: readonly number[];
  readonly seeds: readonly number[];
  readonly init: Float64Array;
  readonly checked: ReturnType<typeof checkTxt2ImgOptions>;
  /** The prompts as resolved (dynamic prompts) and their conditioning fields; absent when nothing was sampled. */
  readonly text?: PreparedText;
}

/** The UNet with an inpainting checkpoint's extra channels appended after x (ldm `c_concat`, ComfyUI `concat_keys`). */
export function withConcat(model: UNetLike, concat: Float32Array, shape: readonly [number, number, number, number]): UNetLike {
  const [B, C, h, w] = shape;
  const extra = concat.length / (B * h * w);
  return {
    prediction: model.prediction,
    admKind: model.admKind,
    unetHeads: model.unetHeads,
    async predict(x: Tensor, t: Tensor, ctx: Tensor, y?: Tensor, control?: readonly Tensor[]): Promise<Tensor> {
      const n = x.shape[0];
      const xs = x.toFloat32Array();
      const plane = h * w;
      const out = new Float32Array(n * (C + extra) * plane);
      for (let b = 0; b < n; b++) {
        const dst = b * (C + extra) * plane;
        out.set(xs.subarray(b * C * plane, (b + 1) * C * plane), dst);
        const src = (b % B) * extra * plane;
        out.set(concat.subarray(src, src + extra * plane), dst + C * plane);
      }
      return model.predict(Tensor.f32([n, C + extra, h, w], out), t, ctx, y, control);
    },
  };
}

/**
 * Inpainting's latent blending around each denoiser call. A1111 (CFGDenoiser, mask_before_denoising
 * off): denoised·m + init·(1 − m). ComfyUI (KSamplerX0Inpaint): also x·m + (init + noise·σ)·(1 − m)
 * before the call.
 */
export function blendDenoiser(inner: GuidedDenoiser, profile: Profile, init: Float64Array, mask: Float64Array, plane: number, noise: Float64Array): GuidedDenoiser {
  const n = init.length;
  const before = (x: Float64Array, sigma: number) => {
    if (profile.name !== 'comfy') return x;
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const m = mask[i % plane];
      out[i] = x[i] * m + (init[i] + noise[i] * sigma) * (1 - m);
    }
    return out;
  };
  const after = (d: Float64Array) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const m = mask[i % plane];
      out[i] = d[i] * m + init[i] * (1 - m);
    }
    return out;
  };
  const call = async (x: Float64Array, sigma: number) => after(await inner(before(x, sigma), sigma));
  return Object.assign(call, {
    withUncond: async (x: Float64Array, sigma: number) => {
      const r = await inner.withUncond(before(x, sigma), sigma);
      return { denoised: after(r.denoised), uncond: r.uncond };
    },
  });
}

/** Noises the init latent to the strength's σ and samples the rest of the schedule. */
export async function denoiseLatents(job: DenoiseJob): Promise<DenoiseResult> {
  const { model, opts } = job;
  const checked = checkTxt2ImgOptions({ ...opts, width: job.width, height: job.height });
  const { steps, cfgScale, batch, clipSkip, seed, profile, sampler, scheduler } = checked;
  checkStrength(job.strength);
  const shape: [number, number, number, number] = [batch, model.latentChannels, job.height / 8, job.width / 8];
  check(job.init.length === shape.reduce((a, b) => a * b, 1), `init latent has ${job.init.length} values, [${shape.join(', ')}] needs ${shape.reduce((a, b) => a * b, 1)}`);
  const plane = shape[2] * shape[3];
  const { sigmas } = img2imgSigmas(profile.name, sampler, scheduler, steps, job.strength, job.fixSteps);

  const noise = runNoise(profile, seed, shape, opts);
  const initial = noise.initial;

  let init = job.init;
  if (job.latentMask && job.latentFill) {
    // A1111 fills with create_random_tensors(seeds): each image's first Philox draw, i.e. the initial noise.
    init = Float64Array.from(init, (v, i) => {
      const m = job.latentMask![i % plane];
      return v * (1 - m) + (job.latentFill === 'noise' ? initial[i] * m : 0);
    });
  }
  if (sigmas.length === 0) return { latents: init, shape, sigmas, seeds: noise.seeds, init, checked };

  const text = await prepareText(model, opts, { seed, steps: job.textBaseSteps ?? steps, clipSkip, profile, schedule: job.textSchedule, size: { width: job.width, height: job.height } });

  const scale = profile.startScale(sigmas[0], profile.schedule().sigmaMax);
  const x = Float64Array.from(init, (v, i) => v + initial[i] * scale);
  let unet: UNetLike = model;
  if (model.concatChannels > 0) {
    check(job.concat !== undefined && job.concat.length === batch * model.concatChannels * plane, `${model.path}: an inpainting checkpoint (${model.concatChannels} extra UNet channels) needs its mask and masked-image conditioning`);
    unet = withConcat(model, job.concat!, shape);
  }
  let wrap: ((d: GuidedDenoiser) => GuidedDenoiser) | undefined;
  if (job.latentMask) {
    // ComfyUI's ddim sampler is euler with inpaint_options {"random": True}: the blend noise is a fresh draw with seed + 1.
    const blendNoise = profile.name === 'comfy' && sampler === 'ddim' && !opts.noise
      ? Float64Array.from(new TorchCpuGenerator(seed + 1).randn(shape)) : initial;
    wrap = (d) => blendDenoiser(d, profile, init, job.latentMask!, plane, blendNoise);
  }
  let latents = await sampleLatents({
    model: unet, profile, sampler, sigmas, x, shape, conditioning: text.conditioning, cfgScale, noise: noise.source,
    eta: opts.eta, sNoise: opts.sNoise, onProgress: opts.onProgress, wrapDenoiser: wrap,
  });
  if (job.latentMask && profile.name === 'a1111') {
    // processing.StableDiffusionProcessingImg2Img.sample: samples·nmask + init_latent·mask.
    latents = Float64Array.from(latents, (v, i) => {
      const m = job.latentMask![i % plane];
      return v * m + init[i] * (1 - m);
    });
  }
  return { latents, shape, sigmas, seeds: noise.seeds, init, checked, text };
}

/** The A1111 infotext of an image, with the pipeline's own fields (`Denoising strength`, `Mask blur`, …) in A1111's order. */
export async function infotext(model: StableDiffusionModel, opts: Omit<Txt2ImgOptions, 'width' | 'height'>, checked: DenoiseResult['checked'], seedIndex: number, seeds: readonly number[], size: { width: number; height: number }, fields: {
  denoisingStrength?: number; extra?: ReadonlyArray<readonly [string, InfoValue]>; text?: PreparedText;
}): Promise<string> {
  return imageInfotext(model, {
    ...opts, prompt: fields.text?.prompt ?? opts.prompt, negativePrompt: fields.text?.negativePrompt ?? opts.negativePrompt ?? '',
    steps: checked.steps, sampler: checked.sampler, scheduler: checked.scheduler, cfgScale: checked.cfgScale,
    seed: seeds[seedIndex], width: size.width, height: size.height, clipSkip: checked.clipSkip, profile: checked.profile,
    variationSeed: opts.variationStrength ? opts.variationSeed! + seedIndex : undefined,
    denoisingStrength: fields.denoisingStrength, extra: fields.extra, text: fields.text?.conditioning.infotext,
  });
}

/** The default processing size of an input: its own, rounded down to a multiple of 8. */
export function defaultSize(img: { width: number; height: number }, width?: number, height?: number): { width: number; height: number } {
  const w = width ?? Math.floor(img.width / 8) * 8;
  const h = height ?? Math.floor(img.height / 8) * 8;
  check(w >= 8 && h >= 8, `the image is ${img.width}x${img.height}: give a processing size (width and height, multiples of 8)`);
  return { width: w, height: h };
}

/** Image conditioning of an inpainting checkpoint: [B, 5, h, w] = mask (nearest-resized) then the masked image's latent. */
export async function inpaintConcat(model: StableDiffusionModel, source: RasterImage, mask: Float64Array | undefined, batch: number, mode: EncodeMode, seed: number): Promise<Float32Array> {
  const { width, height } = source;
  const h = height / 8;
  const w = width / 8;
  const src = rgbToTensor(source, 1).toFloat32Array();
  const plane = width * height;
  // conditioning_image = image·(1 − mask) in [-1, 1] (inpainting_mask_weight 1): masked pixels become 0 (grey).
  const masked = new Float32Array(src.length);
  for (let c = 0; c < 3; c++) for (let i = 0; i < plane; i++) masked[c * plane + i] = mask ? Math.fround(src[c * plane + i] * (1 - mask[i])) : 0;
  const latent = await encodeImage(model, Tensor.f32([1, 3, height, width], masked), mode, seed);
  const extra = model.concatChannels;
  const out = new Float32Array(batch * extra * h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // torch interpolate default (nearest): source index ⌊dst · in/out⌋.
      const sy = Math.min(Math.floor(y * (height / h)), height - 1);
      const sx = Math.min(Math.floor(x * (width / w)), width - 1);
      out[y * w + x] = mask ? mask[sy * width + sx] : 1;
    }
  }
  out.set(Float32Array.from(latent), h * w);
  for (let b = 1; b < batch; b++) out.copyWithin(b * extra * h * w, 0, extra * h * w);
  return out;
}

export { withNetworks };

export async function img2img(model: StableDiffusionModel, opts: Img2ImgOptions): Promise<Img2ImgResult> {
  if (opts.loras?.length || opts.hypernetworks?.length) return withNetworks(model, opts, img2img);
  const strength = opts.strength ?? 0.75;
  checkStrength(strength);
  const input = await loadRgb(opts.image);
  const { width, height } = defaultSize(input, opts.width, opts.height);
  const checked = checkTxt2ImgOptions({ ...opts, width, height });
  const resizeMode = opts.resizeMode ?? 'just';
  const image = await resizeImage(input, width, height, resizeMode);
  const mode = opts.encode ?? defaultEncodeMode(checked.profile);
  const one = await encodeImage(model, rgbToTensor(image, 1), mode, checked.seed);
  const init = new Float64Array(one.length * checked.batch);
  for (let b = 0; b < checked.batch; b++) init.set(one, b * one.length);
  // A1111 img2img_image_conditioning without a mask: an all-ones mask over a fully masked (grey) image.
  const concat = model.concatChannels > 0 ? await inpaintConcat(model, image, undefined, checked.batch, mode, checked.seed) : undefined;
  const r = await denoiseLatents({ model, opts, width, height, strength, fixSteps: opts.fixSteps, init, concat });
  const rgb = await decodeLatents(model, r.latents, r.shape);
  const images: GeneratedImage[] = [];
  for (let i = 0; i < checked.batch; i++) {
    const parameters = await infotext(model, opts, r.checked, i, r.seeds, { width, height }, { denoisingStrength: strength, text: r.text });
    images.push({ width, height, rgb: rgb[i], seed: r.seeds[i], parameters, png: await encodePng(rgb[i], width, height, parameters) });
  }
  return { images, latents: r.latents, latentShape: r.shape, sigmas: r.sigmas, initLatent: r.init };
}
