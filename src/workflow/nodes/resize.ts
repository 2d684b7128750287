// ComfyUI's common_upscale for LATENT and IMAGE nodes: optional centre crop to the new aspect ratio,
// then torch-style interpolation (nearest-exact, bilinear, bicubic, area) or Lanczos through sharp.
import sharp from 'sharp';
import { interpolate } from '../../pipelines/masks.js';
import type { ImageBatch } from '../types.js';
import { imageBatch } from './define.js';

export const LATENT_UPSCALE_METHODS = ['nearest-exact', 'bilinear', 'area', 'bicubic', 'bislerp'] as const;
export const IMAGE_UPSCALE_METHODS = ['nearest-exact', 'bilinear', 'area', 'bicubic', 'lanczos'] as const;

/** torch `interpolate(mode="area")` = adaptive average pooling. */
function area(src: ArrayLike<number>, planes: number, h: number, w: number, oh: number, ow: number): Float64Array {
  const out = new Float64Array(planes * oh * ow);
  for (let p = 0; p < planes; p++) {
    for (let y = 0; y < oh; y++) {
      const y0 = Math.floor((y * h) / oh);
      const y1 = Math.ceil(((y + 1) * h) / oh);
      for (let x = 0; x < ow; x++) {
        const x0 = Math.floor((x * w) / ow);
        const x1 = Math.ceil(((x + 1) * w) / ow);
        let s = 0;
        for (let yy = y0; yy < y1; yy++) for (let xx = x0; xx < x1; xx++) s += src[(p * h + yy) * w + xx];
        out[(p * oh + y) * ow + x] = s / ((y1 - y0) * (x1 - x0));
      }
    }
  }
  return out;
}

/**
 * One axis of ComfyUI's bislerp: for each output index the two source indices and the ratio, read off
 * torch's bilinear interpolation of the index ramps (so the edges clamp exactly as there).
 */
function slerpAxis(n: number, m: number): { i1: Int32Array; i2: Int32Array; r: Float32Array } {
  const c1 = interpolate(Float32Array.from({ length: n }, (_, i) => i), 1, 1, n, 1, m, 'bilinear');
  const c2 = interpolate(Float32Array.from({ length: n }, (_, i) => (i === n - 1 ? i : i + 1)), 1, 1, n, 1, m, 'bilinear');
  const i1 = new Int32Array(m);
  const i2 = new Int32Array(m);
  const r = new Float32Array(m);
  for (let o = 0; o < m; o++) {
    const a = Math.fround(c1[o]);
    r[o] = Math.fround(a - Math.floor(a));
    i1[o] = Math.trunc(a);
    i2[o] = Math.trunc(Math.fround(c2[o]));
  }
  return { i1, i2, r };
}

/** Spherical interpolation of two C-vectors (magnitudes interpolated linearly), with ComfyUI's edge cases. */
function slerp(a: Float64Array, b: Float64Array, r: number, out: Float64Array): void {
  const C = a.length;
  let na = 0;
  let nb = 0;
  for (let c = 0; c < C; c++) { na += a[c] * a[c]; nb += b[c] * b[c]; }
  na = Math.sqrt(na);
  nb = Math.sqrt(nb);
  let dot = 0;
  for (let c = 0; c < C; c++) dot += (na ? a[c] / na : 0) * (nb ? b[c] / nb : 0);
  if (dot > 1 - 1e-5) { out.set(a); return; }
  if (dot < 1e-5 - 1) { for (let c = 0; c < C; c++) out[c] = a[c] * (1 - r) + b[c] * r; return; }
  const omega = Math.acos(dot);
  const so = Math.sin(omega);
  const wa = Math.sin((1 - r) * omega) / so;
  const wb = Math.sin(r * omega) / so;
  const norm = na * (1 - r) + nb * r;
  for (let c = 0; c < C; c++) out[c] = (wa * (na ? a[c] / na : 0) + wb * (nb ? b[c] / nb : 0)) * norm;
}

/** ComfyUI's bislerp on latents [B·C planes]: slerp across channels along x, then along y. */
function bislerp(src: Float32Array, planes: number, h: number, w: number, oh: number, ow: number, channels: number): Float32Array {
  const B = planes / channels;
  const C = channels;
  const a = new Float64Array(C);
  const b = new Float64Array(C);
  const o = new Float64Array(C);
  const pass = (data: Float32Array, H: number, W: number, OH: number, OW: number, alongX: boolean): Float32Array => {
    const ax = alongX ? slerpAxis(W, OW) : slerpAxis(H, OH);
    const out = new Float32Array(B * C * OH * OW);
    for (let n = 0; n < B; n++) {
      for (let y = 0; y < OH; y++) {
        for (let x = 0; x < OW; x++) {
          const k = alongX ? x : y;
          for (let c = 0; c < C; c++) {
            const base = (n * C + c) * H * W;
            a[c] = alongX ? data[base + y * W + ax.i1[k]] : data[base + ax.i1[k] * W + x];
            b[c] = alongX ? data[base + y * W + ax.i2[k]] : data[base + ax.i2[k] * W + x];
          }
          slerp(a, b, ax.r[k], o);
          for (let c = 0; c < C; c++) out[((n * C + c) * OH + y) * OW + x] = o[c];
        }
      }
    }
    return out;
  };
  return pass(pass(src, h, w, h, ow, true), h, ow, oh, ow, false);
}

/** The centre crop common_upscale makes before resizing when `crop` is "center". */
export function centreCrop(h: number, w: number, oh: number, ow: number): { x: number; y: number; h: number; w: number } {
  const oldAspect = w / h;
  const newAspect = ow / oh;
  let x = 0;
  let y = 0;
  if (oldAspect > newAspect) x = Math.round((w - w * (newAspect / oldAspect)) / 2);
  else if (oldAspect < newAspect) y = Math.round((h - h * (oldAspect / newAspect)) / 2);
  return { x, y, h: h - 2 * y, w: w - 2 * x };
}

function cropPlanes(src: Float32Array, planes: number, h: number, w: number, c: { x: number; y: number; h: number; w: number }): Float32Array {
  const out = new Float32Array(planes * c.h * c.w);
  for (let p = 0; p < planes; p++) {
    for (let y = 0; y < c.h; y++) out.set(src.subarray((p * h + y + c.y) * w + c.x, (p * h + y + c.y) * w + c.x + c.w), (p * c.h + y) * c.w);
  }
  return out;
}

/** Planes [P, h, w] → [P, oh, ow]; `channels` groups planes into vectors for bislerp. */
export function upscalePlanes(src: Float32Array, planes: number, h: number, w: number, oh: number, ow: number, method: string, crop: string, channels = 1): Float32Array {
  let data = src;
  if (crop === 'center') {
    const c = centreCrop(h, w, oh, ow);
    if (c.x || c.y) {
      data = cropPlanes(src, planes, h, w, c);
      h = c.h;
      w = c.w;
    }
  }
  if (h === oh && w === ow && method !== 'bislerp') return Float32Array.from(data);
  let out: Float64Array;
  if (method === 'area') out = area(data, planes, h, w, oh, ow);
  else if (method === 'bislerp') return bislerp(data, planes, h, w, oh, ow, channels);
  else if (method === 'nearest-exact' || method === 'bilinear' || method === 'bicubic') out = interpolate(data, planes, h, w, oh, ow, method);
  else throw new Error(`upscale method '${method}' is not supported yet for latents (use nearest-exact, bilinear, area or bicubic)`);
  return Float32Array.from(out);
}

/** IMAGE [B, H, W, C] → planar [B·C, H, W]. */
export function toPlanar(img: ImageBatch): Float32Array {
  const { batch: B, height: H, width: W, channels: C } = img;
  const out = new Float32Array(B * C * H * W);
  for (let b = 0; b < B; b++) for (let i = 0; i < H * W; i++) for (let c = 0; c < C; c++) out[((b * C + c) * H * W) + i] = img.data[(b * H * W + i) * C + c];
  return out;
}

export function fromPlanar(planar: Float32Array, B: number, C: number, H: number, W: number): ImageBatch {
  const out = new Float32Array(B * H * W * C);
  for (let b = 0; b < B; b++) for (let i = 0; i < H * W; i++) for (let c = 0; c < C; c++) out[(b * H * W + i) * C + c] = planar[((b * C + c) * H * W) + i];
  return imageBatch(B, H, W, C, out);
}

/** ImageScale's resize: Lanczos as ComfyUI does it (8-bit through PIL, here sharp), the rest on floats. */
export async function upscaleImage(img: ImageBatch, width: number, height: number, method: string, crop: string): Promise<ImageBatch> {
  const { batch: B, height: H, width: W, channels: C } = img;
  if (method !== 'lanczos') return fromPlanar(upscalePlanes(toPlanar(img), B * C, H, W, height, width, method, crop), B, C, height, width);
  let src = img;
  if (crop === 'center') {
    const c = centreCrop(H, W, height, width);
    src = fromPlanar(cropPlanes(toPlanar(img), B * C, H, W, c), B, C, c.h, c.w);
  }
  const out = new Float32Array(B * height * width * C);
  const per = src.height * src.width * C;
  for (let b = 0; b < B; b++) {
    const u8 = Uint8Array.from(src.data.subarray(b * per, (b + 1) * per), (v) => Math.min(255, Math.max(0, Math.round(v * 255))));
    const { data } = await sharp(Buffer.from(u8.buffer), { raw: { width: src.width, height: src.height, channels: C as 3 | 4 } })
      .resize(width, height, { kernel: 'lanczos3', fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
    for (let k = 0; k < data.length; k++) out[b * height * width * C + k] = data[k] / 255;
  }
  return imageBatch(B, height, width, C, out);
}
