// LATENT nodes: empty latents, VAE decode / encode (plain, tiled, for inpainting), noise masks, and
// the batch and geometry operations of ComfyUI's latent category.
import { decodeMaybeTiled, encodeMaybeTiled } from '../../pipelines/vae-tiling.js';
import { Tensor } from '../../tensor/tensor.js';
import type { ImageBatch, MaskBatch } from '../types.js';
import type { LatentValue, VaeValue } from '../values.js';
import { defineNode, imageToVaeInput, maskBatch, vaeOutputToImage } from './define.js';
import { interpolate } from '../../pipelines/masks.js';
import { LATENT_UPSCALE_METHODS, upscalePlanes } from './resize.js';

type Shape4 = readonly [number, number, number, number];

export function latent(samples: Float32Array, shape: Shape4, from?: LatentValue): LatentValue {
  return { ...(from ?? {}), samples, shape };
}

async function decode(vae: VaeValue, l: LatentValue, tiling?: { tile: number; overlap: number }): Promise<ImageBatch> {
  const z = Tensor.f32(l.shape, l.samples);
  return vaeOutputToImage(await decodeMaybeTiled(vae, z, tiling ?? 'auto'));
}

/** ComfyUI's vae_encode_crop_pixels: both sides down to a multiple of 8, centred. */
function cropToMultiple(img: ImageBatch): { img: ImageBatch; x0: number; y0: number } {
  const H = Math.floor(img.height / 8) * 8;
  const W = Math.floor(img.width / 8) * 8;
  if (H === img.height && W === img.width) return { img, x0: 0, y0: 0 };
  const y0 = Math.floor((img.height % 8) / 2);
  const x0 = Math.floor((img.width % 8) / 2);
  const C = img.channels;
  const out = new Float32Array(img.batch * H * W * C);
  for (let b = 0; b < img.batch; b++) {
    for (let y = 0; y < H; y++) {
      const src = ((b * img.height + y + y0) * img.width + x0) * C;
      out.set(img.data.subarray(src, src + W * C), ((b * H + y) * W) * C);
    }
  }
  return { img: { ...img, height: H, width: W, data: out }, x0, y0 };
}

/**
 * What VAEEncodeForInpaint and InpaintModelConditioning share: the pixels cropped to a multiple of 8,
 * the mask at that size (bilinear, not rounded), and the pixels greyed (0.5) where the rounded mask is 1.
 */
export function maskedForInpaint(pixels: ImageBatch, mask: MaskBatch): { img: ImageBatch; mask: MaskBatch; masked: ImageBatch } {
  const { height: H0, width: W0 } = pixels;
  const full = Float32Array.from(interpolate(mask.data, mask.batch, mask.height, mask.width, H0, W0, 'bilinear'));
  const { img, x0, y0 } = cropToMultiple(pixels);
  const H = img.height;
  const W = img.width;
  const mb = mask.batch;
  const m = new Float32Array(mb * H * W);
  for (let b = 0; b < mb; b++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) m[(b * H + y) * W + x] = full[(b * H0 + y + y0) * W0 + x + x0];
  const C = img.channels;
  const masked = Float32Array.from(img.data);
  for (let b = 0; b < img.batch; b++) {
    const mi = Math.min(b, mb - 1);
    for (let p = 0; p < H * W; p++) {
      const keep = 1 - Math.round(m[mi * H * W + p]);
      for (let c = 0; c < 3; c++) {
        const k = (b * H * W + p) * C + c;
        masked[k] = Math.fround(Math.fround(Math.fround(masked[k] - 0.5) * keep) + 0.5);
      }
    }
  }
  return { img, mask: maskBatch(mb, H, W, m), masked: { ...img, data: masked } };
}

export async function encode(vae: VaeValue, pixels: ImageBatch, tiling?: { tile: number; overlap: number }): Promise<LatentValue> {
  const { img } = cropToMultiple(pixels);
  const { mean } = await encodeMaybeTiled(vae, imageToVaeInput(img), tiling ?? false);
  return { samples: mean.toFloat32Array(), shape: mean.shape as unknown as Shape4 };
}

/** The tiled VAE nodes' `tile_size` / `overlap` (pixels) as latent tiles. */
function latentTiles(i: Record<string, unknown>): { tile: number; overlap: number } {
  const tile = Math.max(8, Math.floor((i.tile_size as number) / 8));
  return { tile, overlap: Math.min(Math.floor((i.overlap as number) / 8), tile - 1) };
}

function mapPlanes(l: LatentValue, f: (plane: Float32Array, h: number, w: number) => { data: Float32Array; h: number; w: number }): LatentValue {
  const [B, C, h, w] = l.shape;
  let oh = h;
  let ow = w;
  const parts: Float32Array[] = [];
  for (let p = 0; p < B * C; p++) {
    const r = f(l.samples.subarray(p * h * w, (p + 1) * h * w), h, w);
    oh = r.h;
    ow = r.w;
    parts.push(r.data);
  }
  const out = new Float32Array(B * C * oh * ow);
  parts.forEach((d, p) => out.set(d, p * oh * ow));
  return latent(out, [B, C, oh, ow], l);
}

function upscaleLatent(l: LatentValue, width: number, height: number, method: string, crop: string): LatentValue {
  const [B, C, h, w] = l.shape;
  return latent(upscalePlanes(l.samples, B * C, h, w, height, width, method, crop, C), [B, C, height, width], l);
}

export const latentNodes = [
  defineNode({
    name: 'EmptyLatentImage',
    displayName: 'Empty Latent Image',
    description: 'Create a new batch of empty latent images to be denoised via sampling.',
    category: 'latent',
    input: {
      required: {
        width: ['INT', { default: 512, min: 16, max: 16384, step: 8, tooltip: 'The width of the latent images in pixels.' }],
        height: ['INT', { default: 512, min: 16, max: 16384, step: 8, tooltip: 'The height of the latent images in pixels.' }],
        batch_size: ['INT', { default: 1, min: 1, max: 4096, tooltip: 'The number of latent images in the batch.' }],
      },
    },
    output: ['LATENT'],
    outputTooltips: ['The empty latent image batch.'],
    async run(i) {
      const shape: Shape4 = [i.batch_size as number, 4, Math.floor((i.height as number) / 8), Math.floor((i.width as number) / 8)];
      return { outputs: [latent(new Float32Array(shape[0] * shape[1] * shape[2] * shape[3]), shape)] };
    },
  }),
  defineNode({
    name: 'VAEDecode',
    displayName: 'VAE Decode',
    description: 'Decodes latent images back into pixel space images.',
    category: 'latent',
    input: {
      required: {
        samples: ['LATENT', { tooltip: 'The latent to be decoded.' }],
        vae: ['VAE', { tooltip: 'The VAE model used for decoding the latent.' }],
      },
    },
    output: ['IMAGE'],
    outputTooltips: ['The decoded image.'],
    async run(i) {
      return { outputs: [await decode(i.vae as VaeValue, i.samples as LatentValue)] };
    },
  }),
  defineNode({
    name: 'VAEEncode',
    displayName: 'VAE Encode',
    description: '',
    category: 'latent',
    input: { required: { pixels: ['IMAGE'], vae: ['VAE'] } },
    output: ['LATENT'],
    async run(i) {
      return { outputs: [await encode(i.vae as VaeValue, i.pixels as ImageBatch)] };
    },
  }),
  defineNode({
    name: 'VAEDecodeTiled',
    displayName: 'VAE Decode (Tiled)',
    description: '',
    category: '_for_testing',
    input: {
      required: {
        samples: ['LATENT'],
        vae: ['VAE'],
        tile_size: ['INT', { default: 512, min: 64, max: 4096, step: 32 }],
        overlap: ['INT', { default: 64, min: 0, max: 4096, step: 32 }],
        temporal_size: ['INT', { default: 64, min: 8, max: 4096, step: 4, tooltip: 'Only used for video VAEs: Amount of frames to decode at a time.' }],
        temporal_overlap: ['INT', { default: 8, min: 4, max: 4096, step: 4, tooltip: 'Only used for video VAEs: Amount of frames to overlap.' }],
      },
    },
    output: ['IMAGE'],
    async run(i) {
      return { outputs: [await decode(i.vae as VaeValue, i.samples as LatentValue, latentTiles(i))] };
    },
  }),
  defineNode({
    name: 'VAEEncodeTiled',
    displayName: 'VAE Encode (Tiled)',
    description: '',
    category: '_for_testing',
    input: {
      required: {
        pixels: ['IMAGE'],
        vae: ['VAE'],
        tile_size: ['INT', { default: 512, min: 64, max: 4096, step: 64 }],
        overlap: ['INT', { default: 64, min: 0, max: 4096, step: 32 }],
        temporal_size: ['INT', { default: 64, min: 8, max: 4096, step: 4, tooltip: 'Only used for video VAEs: Amount of frames to encode at a time.' }],
        temporal_overlap: ['INT', { default: 8, min: 4, max: 4096, step: 4, tooltip: 'Only used for video VAEs: Amount of frames to overlap.' }],
      },
    },
    output: ['LATENT'],
    async run(i) {
      return { outputs: [await encode(i.vae as VaeValue, i.pixels as ImageBatch, latentTiles(i))] };
    },
  }),
  defineNode({
    name: 'VAEEncodeForInpaint',
    displayName: 'VAE Encode (for Inpainting)',
    description: '',
    category: 'latent/inpaint',
    input: {
      required: {
        pixels: ['IMAGE'],
        vae: ['VAE'],
        mask: ['MASK'],
        grow_mask_by: ['INT', { default: 6, min: 0, max: 64, step: 1 }],
      },
    },
    output: ['LATENT'],
    async run(i) {
      const { img, mask: m, masked } = maskedForInpaint(i.pixels as ImageBatch, i.mask as MaskBatch);
      const grow = i.grow_mask_by as number;
      const { height: H, width: W } = img;
      const mb = m.batch;
      // Grow: a grow×grow box sum over the rounded mask (padding ⌈(grow−1)/2⌉), clamped to 0..1.
      let grown = m.data.map((v) => Math.round(v));
      if (grow > 0) {
        const pad = Math.ceil((grow - 1) / 2);
        const r = grown;
        grown = new Float32Array(r.length);
        for (let b = 0; b < mb; b++) {
          for (let y = 0; y < H; y++) {
            for (let x = 0; x < W; x++) {
              let s = 0;
              for (let ky = 0; ky < grow; ky++) {
                const yy = y + ky - pad;
                if (yy < 0 || yy >= H) continue;
                for (let kx = 0; kx < grow; kx++) {
                  const xx = x + kx - pad;
                  if (xx >= 0 && xx < W) s += r[(b * H + yy) * W + xx];
                }
              }
              grown[(b * H + y) * W + x] = Math.round(Math.min(1, Math.max(0, s)));
            }
          }
        }
      }
      const l = await encode(i.vae as VaeValue, masked);
      return { outputs: [{ ...l, noiseMask: maskBatch(mb, H, W, grown) }] };
    },
  }),
  defineNode({
    name: 'SetLatentNoiseMask',
    displayName: 'Set Latent Noise Mask',
    description: '',
    category: 'latent/inpaint',
    input: { required: { samples: ['LATENT'], mask: ['MASK'] } },
    output: ['LATENT'],
    async run(i) {
      return { outputs: [{ ...(i.samples as LatentValue), noiseMask: i.mask as MaskBatch }] };
    },
  }),
  defineNode({
    name: 'LatentUpscale',
    displayName: 'Upscale Latent',
    description: '',
    category: 'latent',
    input: {
      required: {
        samples: ['LATENT'],
        upscale_method: [LATENT_UPSCALE_METHODS],
        width: ['INT', { default: 512, min: 0, max: 16384, step: 8 }],
        height: ['INT', { default: 512, min: 0, max: 16384, step: 8 }],
        crop: [['disabled', 'center']],
      },
    },
    output: ['LATENT'],
    async run(i) {
      const l = i.samples as LatentValue;
      let width = i.width as number;
      let height = i.height as number;
      if (width === 0 && height === 0) return { outputs: [l] };
      const [, , h, w] = l.shape;
      if (width === 0) {
        height = Math.max(64, height);
        width = Math.max(64, Math.round((w * height) / h));
      } else if (height === 0) {
        width = Math.max(64, width);
        height = Math.max(64, Math.round((h * width) / w));
      }
      return { outputs: [upscaleLatent(l, Math.floor(width / 8), Math.floor(height / 8), String(i.upscale_method), String(i.crop))] };
    },
  }),
  defineNode({
    name: 'LatentUpscaleBy',
    displayName: 'Upscale Latent By',
    description: '',
    category: 'latent',
    input: {
      required: {
        samples: ['LATENT'],
        upscale_method: [LATENT_UPSCALE_METHODS],
        scale_by: ['FLOAT', { default: 1.5, min: 0.01, max: 8.0, step: 0.01 }],
      },
    },
    output: ['LATENT'],
    async run(i) {
      const l = i.samples as LatentValue;
      const s = i.scale_by as number;
      return { outputs: [upscaleLatent(l, Math.round(l.shape[3] * s), Math.round(l.shape[2] * s), String(i.upscale_method), 'disabled')] };
    },
  }),
  defineNode({
    name: 'LatentComposite',
    displayName: 'Latent Composite',
    description: '',
    category: 'latent',
    input: {
      required: {
        samples_to: ['LATENT'],
        samples_from: ['LATENT'],
        x: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
        y: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
        feather: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
      },
    },
    output: ['LATENT'],
    async run(i) {
      const to = i.samples_to as LatentValue;
      const from = i.samples_from as LatentValue;
      const x = Math.floor((i.x as number) / 8);
      const y = Math.floor((i.y as number) / 8);
      const feather = Math.floor((i.feather as number) / 8);
      const [B, C, H, W] = to.shape;
      const [fb, , fh0, fw0] = from.shape;
      const fh = Math.max(0, Math.min(fh0, H - y));
      const fw = Math.max(0, Math.min(fw0, W - x));
      const out = Float32Array.from(to.samples);
      for (let b = 0; b < B; b++) {
        for (let c = 0; c < C; c++) {
          for (let yy = 0; yy < fh; yy++) {
            for (let xx = 0; xx < fw; xx++) {
              let m = 1;
              for (let t = 0; t < feather; t++) {
                const f = (1 / feather) * (t + 1);
                if (y !== 0 && yy === t) m *= f;
                if (y + fh < H && yy === fh - 1 - t) m *= f;
                if (x !== 0 && xx === t) m *= f;
                if (x + fw < W && xx === fw - 1 - t) m *= f;
              }
              const src = from.samples[((Math.min(b, fb - 1) * C + c) * fh0 + yy) * fw0 + xx];
              const k = ((b * C + c) * H + y + yy) * W + x + xx;
              out[k] = feather ? src * m + out[k] * (1 - m) : src;
            }
          }
        }
      }
      return { outputs: [latent(out, to.shape, to)] };
    },
  }),
  defineNode({
    name: 'LatentBlend',
    displayName: 'Latent Blend',
    description: '',
    category: '_for_testing',
    input: {
      required: {
        samples1: ['LATENT'],
        samples2: ['LATENT'],
        blend_factor: ['FLOAT', { default: 0.5, min: 0, max: 1, step: 0.01 }],
      },
    },
    output: ['LATENT'],
    async run(i) {
      const a = i.samples1 as LatentValue;
      let b = i.samples2 as LatentValue;
      const f = i.blend_factor as number;
      if (a.shape.join() !== b.shape.join()) b = upscaleLatent({ ...b, samples: b.samples }, a.shape[3], a.shape[2], 'bicubic', 'center');
      const out = a.samples.map((v, k) => v * f + b.samples[k % b.samples.length] * (1 - f));
      return { outputs: [latent(out, a.shape, a)] };
    },
  }),
  defineNode({
    name: 'LatentFromBatch',
    displayName: 'Latent From Batch',
    description: '',
    category: 'latent/batch',
    input: {
      required: {
        samples: ['LATENT'],
        batch_index: ['INT', { default: 0, min: 0, max: 63 }],
        length: ['INT', { default: 1, min: 1, max: 64 }],
      },
    },
    output: ['LATENT'],
    async run(i) {
      const l = i.samples as LatentValue;
      const [B, C, h, w] = l.shape;
      const start = Math.min(B - 1, i.batch_index as number);
      const n = Math.min(B - start, i.length as number);
      const per = C * h * w;
      const samples = l.samples.slice(start * per, (start + n) * per);
      let noiseMask = l.noiseMask;
      if (noiseMask && noiseMask.batch > 1) {
        const mp = noiseMask.height * noiseMask.width;
        const take = Math.min(noiseMask.batch - start, n);
        noiseMask = take > 0 ? maskBatch(take, noiseMask.height, noiseMask.width, noiseMask.data.slice(start * mp, (start + take) * mp)) : noiseMask;
      }
      const batchIndex = l.batchIndex ? l.batchIndex.slice(start, start + n) : Array.from({ length: n }, (_, k) => start + k);
      return { outputs: [{ samples, shape: [n, C, h, w] as Shape4, noiseMask, batchIndex }] };
    },
  }),
  defineNode({
    name: 'RepeatLatentBatch',
    displayName: 'Repeat Latent Batch',
    description: '',
    category: 'latent/batch',
    input: {
      required: {
        samples: ['LATENT'],
        amount: ['INT', { default: 1, min: 1, max: 64 }],
      },
    },
    output: ['LATENT'],
    async run(i) {
      const l = i.samples as LatentValue;
      const amount = i.amount as number;
      const [B, C, h, w] = l.shape;
      const samples = new Float32Array(l.samples.length * amount);
      for (let k = 0; k < amount; k++) samples.set(l.samples, k * l.samples.length);
      let noiseMask = l.noiseMask;
      if (noiseMask && noiseMask.batch > 1) {
        const d = new Float32Array(noiseMask.data.length * amount);
        for (let k = 0; k < amount; k++) d.set(noiseMask.data, k * noiseMask.data.length);
        noiseMask = maskBatch(noiseMask.batch * amount, noiseMask.height, noiseMask.width, d);
      }
      let batchIndex = l.batchIndex;
      if (batchIndex) {
        const offset = Math.max(...batchIndex) - Math.min(...batchIndex) + 1;
        const base = batchIndex;
        batchIndex = Array.from({ length: base.length * amount }, (_, k) => base[k % base.length] + Math.floor(k / base.length) * offset);
      }
      return { outputs: [{ samples, shape: [B * amount, C, h, w] as Shape4, noiseMask, batchIndex }] };
    },
  }),
  defineNode({
    name: 'LatentRotate',
    displayName: 'Rotate Latent',
    description: '',
    category: 'latent/transform',
    input: { required: { samples: ['LATENT'], rotation: [['none', '90 degrees', '180 degrees', '270 degrees']] } },
    output: ['LATENT'],
    async run(i) {
      const k = ['none', '90 degrees', '180 degrees', '270 degrees'].indexOf(String(i.rotation));
      const l = i.samples as LatentValue;
      if (k <= 0) return { outputs: [l] };
      // torch.rot90(x, k, dims=[3, 2]): clockwise quarter turns.
      return {
        outputs: [mapPlanes(l, (p, h, w) => {
          const oh = k === 2 ? h : w;
          const ow = k === 2 ? w : h;
          const out = new Float32Array(h * w);
          for (let y = 0; y < h; y++) {
            for (let x = 0; x < w; x++) {
              const [ny, nx] = k === 1 ? [x, h - 1 - y] : k === 2 ? [h - 1 - y, w - 1 - x] : [w - 1 - x, y];
              out[ny * ow + nx] = p[y * w + x];
            }
          }
          return { data: out, h: oh, w: ow };
        })],
      };
    },
  }),
  defineNode({
    name: 'LatentFlip',
    displayName: 'Flip Latent',
    description: '',
    category: 'latent/transform',
    input: { required: { samples: ['LATENT'], flip_method: [['x-axis: vertically', 'y-axis: horizontally']] } },
    output: ['LATENT'],
    async run(i) {
      const vertical = String(i.flip_method).startsWith('x');
      return {
        outputs: [mapPlanes(i.samples as LatentValue, (p, h, w) => {
          const out = new Float32Array(h * w);
          for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = vertical ? p[(h - 1 - y) * w + x] : p[y * w + (w - 1 - x)];
          return { data: out, h, w };
        })],
      };
    },
  }),
  defineNode({
    name: 'LatentCrop',
    displayName: 'Crop Latent',
    description: '',
    category: 'latent/transform',
    input: {
      required: {
        samples: ['LATENT'],
        width: ['INT', { default: 512, min: 64, max: 16384, step: 8 }],
        height: ['INT', { default: 512, min: 64, max: 16384, step: 8 }],
        x: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
        y: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
      },
    },
    output: ['LATENT'],
    async run(i) {
      const l = i.samples as LatentValue;
      const [, , h, w] = l.shape;
      const x = Math.min(Math.floor((i.x as number) / 8), w - 8);
      const y = Math.min(Math.floor((i.y as number) / 8), h - 8);
      const toX = Math.min(w, Math.floor((i.width as number) / 8) + x);
      const toY = Math.min(h, Math.floor((i.height as number) / 8) + y);
      return {
        outputs: [mapPlanes(l, (p) => {
          const out = new Float32Array((toY - y) * (toX - x));
          for (let yy = y; yy < toY; yy++) out.set(p.subarray(yy * w + x, yy * w + toX), (yy - y) * (toX - x));
          return { data: out, h: toY - y, w: toX - x };
        })],
      };
    },
  }),
];
