// Inputs shared by the img2img / inpaint / outpaint / hires tests: a deterministic picture, masks, and
// a tiny 9-channel inpainting checkpoint made from tiny-sd1.
import { writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { openSafetensors, writeSafetensors } from '../../src/formats/safetensors.js';
import { loadCheckpoint } from '../../src/models/checkpoint.js';
import type { StableDiffusionModel } from '../../src/models/sd-model.js';
import type { RasterImage } from '../../src/pipelines/image-input.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { REF } from '../ref.js';
import { TINY_OPTIONS } from './models.js';

/** Smooth colour ramps with a few hard edges: something a VAE round trip visibly changes. */
export function testPicture(width = 64, height = 64): RasterImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = Math.round((255 * x) / (width - 1));
      data[i + 1] = Math.round((255 * y) / (height - 1));
      data[i + 2] = ((x >> 3) + (y >> 3)) % 2 ? 200 : 40;
    }
  }
  return { width, height, channels: 3, data };
}

/** 255 inside [x1, x2) × [y1, y2). */
export function rectMask(width: number, height: number, x1: number, y1: number, x2: number, y2: number): RasterImage {
  const data = new Uint8Array(width * height);
  for (let y = y1; y < y2; y++) data.fill(255, y * width + x1, y * width + x2);
  return { width, height, channels: 1, data };
}

export async function writePng(path: string, img: RasterImage): Promise<void> {
  await writeFile(path, await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: img.channels } }).png().toBuffer());
}

/** Worst |a − b| over the pixels where `where(i)` holds (i is the pixel index). */
export function worstDiff(a: Uint8Array, b: Uint8Array, where: (i: number) => boolean): number {
  let worst = 0;
  for (let i = 0; i < a.length / 3; i++) {
    if (!where(i)) continue;
    for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(a[i * 3 + c] - b[i * 3 + c]));
  }
  return worst;
}

const KEY = 'model.diffusion_model.input_blocks.0.0.weight';

/**
 * tiny-sd1 with its first UNet convolution widened from 4 to 9 input channels, as an inpainting
 * checkpoint has it: the 4 latent channels keep their weights, the mask and masked-image channels
 * get small deterministic values.
 */
export async function makeTinyInpaintCheckpoint(base: 'tiny-sd1' | 'tiny-sd1-std' = 'tiny-sd1'): Promise<string> {
  const src = await openSafetensors(`${REF}/ckpt/${base}.safetensors`);
  const tensors: Record<string, Tensor> = {};
  for (const key of src.keys()) tensors[key] = await src.read(key);
  await src.close();
  const w = tensors[KEY];
  const [out, cin, kh, kw] = w.shape;
  const old = w.toFloat32Array();
  const wide = new Float32Array(out * 9 * kh * kw);
  for (let o = 0; o < out; o++) {
    for (let c = 0; c < 9; c++) {
      for (let k = 0; k < kh * kw; k++) {
        wide[(o * 9 + c) * kh * kw + k] = c < cin ? old[(o * cin + c) * kh * kw + k] : 0.1 * Math.sin(1 + o * 7 + c * 13 + k);
      }
    }
  }
  tensors[KEY] = new Tensor('f32', [out, 9, kh, kw], wide).to('f16');
  const path = join(await mkdtemp(join(tmpdir(), 'lk-inpaint-')), `${base}-inpainting.safetensors`);
  await writeSafetensors(path, tensors);
  return path;
}

export async function loadTinyInpaint(path: string): Promise<StableDiffusionModel> {
  return loadCheckpoint(path, TINY_OPTIONS['tiny-sd1']);
}
