// Hires fix (A1111 processing.StableDiffusionProcessingTxt2Img.sample_hr_pass): generate at the base
// size, upscale — the latent (A1111's "Latent (…)" modes, torch interpolate) or the decoded image
// (Lanczos, nearest, or an ESRGAN-family model) — then img2img at the target size with its own steps
// and denoising strength.
import { stat } from 'node:fs/promises';
import type { StableDiffusionModel } from '../models/sd-model.js';
import { decodeLatents, encodePng, type GeneratedImage } from './image-output.js';
import { rgbToTensor } from './image-input.js';
import { a1111InfotextFields } from '../sampling/names.js';
import { infoFloat } from './infotext.js';
import { checkStrength, defaultEncodeMode, denoiseLatents, encodeImage, infotext, inpaintConcat } from './img2img.js';
import { interpolate, type LatentResize } from './masks.js';
import { checkTxt2ImgOptions, type HiresOptions, type Txt2ImgOptions, type Txt2ImgResult } from './options.js';
import { txt2imgPass } from './txt2img-pass.js';
import { resample, UpscalerModel, upscaleImage } from './upscale.js';


/** modules/shared_items.py `latent_upscale_modes`. */
export const LATENT_UPSCALE_MODES: Readonly<Record<string, { mode: LatentResize; antialias: boolean }>> = {
  'Latent': { mode: 'bilinear', antialias: false },
  'Latent (antialiased)': { mode: 'bilinear', antialias: true },
  'Latent (bicubic)': { mode: 'bicubic', antialias: false },
  'Latent (bicubic antialiased)': { mode: 'bicubic', antialias: true },
  'Latent (nearest)': { mode: 'nearest', antialias: false },
  'Latent (nearest-exact)': { mode: 'nearest-exact', antialias: false },
};
export const PIXEL_UPSCALERS = ['Lanczos', 'Nearest'] as const;

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

/** Canonical upscaler name (case-insensitive match), or undefined for something that must be a model file. */
export function upscalerName(name: string): string | undefined {
  const all = [...Object.keys(LATENT_UPSCALE_MODES), ...PIXEL_UPSCALERS];
  return all.find((n) => n.toLowerCase() === name.toLowerCase());
}

/** The second pass's size: int(base · scale), taken down to a multiple of 8 (the latent grid). */
export function hiresSize(width: number, height: number, scale: number): { width: number; height: number } {
  return { width: Math.floor(Math.trunc(width * scale) / 8) * 8, height: Math.floor(Math.trunc(height * scale) / 8) * 8 };
}

export async function checkHires(h: HiresOptions, width: number, height: number): Promise<void> {
  check(Number.isFinite(h.scale) && h.scale >= 1 && h.scale <= 8, `hires scale must be from 1 to 8, got ${h.scale}`);
  if (h.steps !== undefined) check(Number.isInteger(h.steps) && h.steps >= 0 && h.steps <= 1000, `hires steps must be an integer from 0 to 1000, got ${h.steps}`);
  checkStrength(h.denoise ?? 0.7, 'hires denoising strength');
  const target = hiresSize(width, height, h.scale);
  check(target.width <= 8192 && target.height <= 8192, `hires target ${target.width}x${target.height} is larger than 8192`);
  const name = h.upscaler ?? 'Latent';
  if (!upscalerName(name)) {
    const info = await stat(name).catch(() => undefined);
    check(info?.isFile() === true, `hires upscaler '${name}' is neither an upscaler name (${[...Object.keys(LATENT_UPSCALE_MODES), ...PIXEL_UPSCALERS].join(', ')}) nor a model file`);
  }
}

export type { HiresOptions } from './options.js';

/** txt2img with the hires fix; `txt2img` hands over here when `opts.hires` is set. */
export async function txt2imgHires(model: StableDiffusionModel, opts: Txt2ImgOptions & { readonly hires: HiresOptions }): Promise<Txt2ImgResult> {
  const h = opts.hires;
  const checked = checkTxt2ImgOptions(opts);
  const { width, height, batch } = checked;
  await checkHires(h, width, height);
  const denoise = h.denoise ?? 0.7;
  const target = hiresSize(width, height, h.scale);
  const name = h.upscaler ?? 'Latent';
  const known = upscalerName(name);

  const base = await txt2imgPass(model, { ...opts, hires: undefined, seed: checked.seed });
  if (opts.stopped?.()) return base;
  const [, C, bh, bw] = base.latentShape;
  const th = target.height / 8;
  const tw = target.width / 8;
  let init: Float64Array;
  let concat: Float32Array | undefined;
  const mode = h.encode ?? defaultEncodeMode(checked.profile);
  const latent = known ? LATENT_UPSCALE_MODES[known] : undefined;
  if (latent) {
    init = interpolate(base.latents, batch * C, bh, bw, th, tw, latent.mode, latent.antialias);
    // txt2img_image_conditioning: an all-ones mask over a grey image.
    if (model.concatChannels > 0) {
      const grey = { width: target.width, height: target.height, channels: 3 as const, data: new Uint8Array(target.width * target.height * 3).fill(128) };
      concat = await inpaintConcat(model, grey, undefined, batch, mode, checked.seed);
    }
  } else {
    let upscaler: UpscalerModel | undefined;
    if (!known) upscaler = await UpscalerModel.load(name, { device: model.device });
    try {
      init = new Float64Array(batch * C * th * tw);
      for (let b = 0; b < batch; b++) {
        const img = { width, height, rgb: base.images[b].rgb };
        const up = upscaler
          ? await resample(await upscaleImage(img, { scale: Math.max(target.width / width, target.height / height), upscaler, tile: h.tile }), target.width, target.height, 'lanczos')
          : await resample(img, target.width, target.height, known === 'Nearest' ? 'nearest' : 'lanczos');
        const raster = { width: target.width, height: target.height, channels: 3 as const, data: up.rgb };
        init.set(await encodeImage(model, rgbToTensor(raster, 1), mode, base.images[b].seed), b * C * th * tw);
        if (model.concatChannels > 0) {
          const one = await inpaintConcat(model, raster, undefined, 1, mode, base.images[b].seed);
          concat ??= new Float32Array(batch * one.length);
          concat.set(one, b * one.length);
        }
      }
    } finally {
      await upscaler?.close();
    }
  }

  // The second pass always runs exactly its step count (setup_img2img_steps is called with steps).
  const steps = h.steps || checked.steps;
  const prompt = h.prompt || opts.prompt;
  const negativePrompt = h.negativePrompt || opts.negativePrompt;
  const sampler = h.sampler ?? checked.sampler;
  const scheduler = h.scheduler ?? checked.scheduler;
  const r = await denoiseLatents({
    model, opts: { ...opts, steps, seed: checked.seed, prompt, negativePrompt, sampler, scheduler }, width: target.width, height: target.height, strength: denoise, fixSteps: true, init, concat,
    textBaseSteps: checked.steps, textSchedule: { hiresSteps: steps },
  });
  const rgb = await decodeLatents(model, r.latents, r.shape);
  const images: GeneratedImage[] = [];
  const displayName = known ?? name.split(/[\\/]/).pop()!.replace(/\.(pth|pt|safetensors|ckpt|bin)$/i, '');
  for (let i = 0; i < batch; i++) {
    // the infotext names the first pass's prompts and sampler, and the second pass's where they differ
    const parameters = await infotext(model, opts, checked, i, r.seeds, { width, height }, {
      denoisingStrength: denoise,
      extra: [
        ['Hires sampler', sampler !== checked.sampler ? a1111InfotextFields(sampler, scheduler).Sampler : undefined],
        ['Hires prompt', prompt !== opts.prompt ? prompt : undefined],
        ['Hires negative prompt', negativePrompt !== opts.negativePrompt ? negativePrompt : undefined],
        ['Hires upscale', infoFloat(h.scale, opts.pythonFloats)], ['Hires steps', h.steps || undefined], ['Hires upscaler', displayName],
      ],
      text: r.text && (prompt !== opts.prompt || negativePrompt !== opts.negativePrompt)
        ? { ...r.text, prompt: opts.prompt, negativePrompt: opts.negativePrompt ?? '' } : r.text,
    });
    images.push({ width: target.width, height: target.height, rgb: rgb[i], seed: r.seeds[i], parameters, png: await encodePng(rgb[i], target.width, target.height, parameters) });
  }
  return { images, latents: r.latents, latentShape: r.shape, sigmas: r.sigmas };
}
