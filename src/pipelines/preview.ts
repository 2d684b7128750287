// Live previews while sampling: every N steps the sampler's current prediction of the clean latent
// is turned into a small RGB image, either by TAESD (full image size, a small fraction of a VAE decode) or
// by a fixed 4→3 linear map at latent resolution (ComfyUI's "latent2rgb", A1111's "Approx cheap").
//
//   const onProgress = withPreview({ every: 5, decoder: taesdPreviewer(taesd), onPreview: (p) => show(p.png) });
//   await txt2img(model, { prompt, onProgress });
//
// The returned callback is async; the sampling loop waits for it, so a slow preview slows sampling
// rather than piling up.
import sharp from 'sharp';
import type { TinyAutoencoder } from '../models/taesd.js';
import { Tensor } from '../tensor/tensor.js';
import type { Progress } from './sample.js';

export interface PreviewImage {
  readonly step: number;
  readonly total: number;
  /** Which image of the batch. */
  readonly index: number;
  readonly width: number;
  readonly height: number;
  /** 8-bit RGB, HWC. */
  readonly rgb: Uint8Array;
}

/** Turns latents [B, C, h, w] (as the sampler holds them) into one RGB image per batch item. */
export type PreviewDecoder = (latents: Float64Array, shape: readonly [number, number, number, number]) => Promise<{ width: number; height: number; rgb: Uint8Array }[]>;

/** SD1.x / SD2.x latent → RGB factors (ComfyUI latent_formats.SD15), rows are latent channels. */
export const SD15_LATENT_RGB: readonly (readonly [number, number, number])[] = [
  [0.3512, 0.2297, 0.3227],
  [0.3250, 0.4974, 0.2350],
  [-0.2829, 0.1762, 0.2721],
  [-0.2120, -0.2616, -0.7177],
];

/** Linear latent → RGB at latent resolution (1/8 of the image): free, and enough to follow composition. */
export function latentRgbPreviewer(factors: readonly (readonly [number, number, number])[] = SD15_LATENT_RGB): PreviewDecoder {
  return async (latents, shape) => {
    const [b, c, h, w] = shape;
    if (c !== factors.length) throw new Error(`latent2rgb factors are for ${factors.length} channels, the latent has ${c}`);
    const images = [];
    for (let n = 0; n < b; n++) {
      const rgb = new Uint8Array(h * w * 3);
      for (let i = 0; i < h * w; i++) {
        for (let k = 0; k < 3; k++) {
          let v = 0;
          for (let ch = 0; ch < c; ch++) v += latents[(n * c + ch) * h * w + i] * factors[ch][k];
          rgb[i * 3 + k] = Math.round(Math.min(Math.max((v + 1) / 2, 0), 1) * 255);
        }
      }
      images.push({ width: w, height: h, rgb });
    }
    return images;
  };
}

/** TAESD decode of the (scaled) latents at full image size. */
export function taesdPreviewer(taesd: Pick<TinyAutoencoder, 'decode'>): PreviewDecoder {
  return async (latents, shape) => {
    const out = await taesd.decode(Tensor.f32(shape, Float32Array.from(latents)));
    const [b, , h, w] = out.shape;
    const d = out.toFloat32Array();
    const images = [];
    for (let n = 0; n < b; n++) {
      const rgb = new Uint8Array(h * w * 3);
      for (let k = 0; k < 3; k++) {
        const base = (n * 3 + k) * h * w;
        for (let i = 0; i < h * w; i++) rgb[i * 3 + k] = Math.round(Math.min(Math.max(d[base + i], 0), 1) * 255);
      }
      images.push({ width: w, height: h, rgb });
    }
    return images;
  };
}

export interface PreviewOptions {
  /** Preview every this many model evaluations (the progress unit); the last step always previews. */
  readonly every: number;
  readonly decoder: PreviewDecoder;
  readonly onPreview: (image: PreviewImage) => void | Promise<void>;
  /** Still called on every step, before any preview. */
  readonly onProgress?: (p: Progress) => void | Promise<void>;
  /** Only the first image of a batch, as A1111 and ComfyUI show (default true). */
  readonly firstOnly?: boolean;
}

/** A progress callback for txt2img / img2img / sampleLatents that also delivers previews. */
export function withPreview(opts: PreviewOptions): (p: Progress) => Promise<void> {
  if (!Number.isInteger(opts.every) || opts.every < 1) throw new Error(`preview interval must be a positive integer, got ${opts.every}`);
  return async (p) => {
    await opts.onProgress?.(p);
    if (!p.denoised || !p.shape) return;
    if (p.step % opts.every !== 0 && p.step !== p.total) return;
    const shape = opts.firstOnly === false ? p.shape : ([1, p.shape[1], p.shape[2], p.shape[3]] as const);
    const n = shape[0] * shape[1] * shape[2] * shape[3];
    const images = await opts.decoder(p.denoised.subarray(0, n), shape);
    for (let i = 0; i < images.length; i++) await opts.onPreview({ step: p.step, total: p.total, index: i, ...images[i] });
  };
}

/** PNG bytes of a preview, for UIs and the CLI. */
export async function previewPng(p: { width: number; height: number; rgb: Uint8Array }): Promise<Buffer> {
  return sharp(Buffer.from(p.rgb.buffer, p.rgb.byteOffset, p.rgb.byteLength), { raw: { width: p.width, height: p.height, channels: 3 } }).png().toBuffer();
}
