import sharp from 'sharp';
import { withPngText } from '../formats/png-text.js';
import type { StableDiffusionModel } from '../models/sd-model.js';
import { Tensor } from '../tensor/tensor.js';
import { decodeMaybeTiled, type VaeTiling } from './vae-tiling.js';

/** One generated image: 8-bit RGB (HWC) and the PNG with its A1111 `parameters` chunk. */
export interface GeneratedImage {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
  readonly png: Buffer;
  readonly seed: number;
  readonly parameters: string;
}

/** VAE output [B, 3, H, W] in about [-1, 1] → 8-bit HWC per image, truncating as CompVis / A1111 / ComfyUI do. */
export function toRgb8(decoded: Tensor): Uint8Array[] {
  const [b, c, h, w] = decoded.shape;
  if (c !== 3) throw new Error(`expected a 3-channel image, got ${c} channels`);
  const src = decoded.toFloat32Array();
  const images: Uint8Array[] = [];
  for (let n = 0; n < b; n++) {
    const out = new Uint8Array(h * w * 3);
    for (let ch = 0; ch < 3; ch++) {
      const base = (n * 3 + ch) * h * w;
      for (let i = 0; i < h * w; i++) {
        const v = Math.min(Math.max(Math.fround(Math.fround(src[base + i] + 1) / 2), 0), 1);
        out[i * 3 + ch] = Math.floor(Math.fround(255 * v));
      }
    }
    images.push(out);
  }
  return images;
}

/**
 * Latents as the sampler leaves them → decoded RGB images (latent ÷ scale factor, then the VAE).
 * `tiling` defaults to 'auto': images above 1024×1024 decode tile by tile (vae-tiling.ts).
 */
export async function decodeLatents(model: StableDiffusionModel, latents: Float64Array, shape: readonly number[], tiling?: VaeTiling): Promise<Uint8Array[]> {
  const inv = Math.fround(1 / model.scaleFactor);
  const z = Float32Array.from(latents, (v) => Math.fround(v) * inv);
  return toRgb8(await decodeMaybeTiled(model, Tensor.f32(shape, z), tiling));
}

export async function encodePng(rgb: Uint8Array, width: number, height: number, parameters: string): Promise<Buffer> {
  const png = await sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } }).png().toBuffer();
  return withPngText(png, { parameters });
}
