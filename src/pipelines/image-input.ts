// Input images for img2img / inpainting: any format sharp reads → 8-bit RGB, A1111's three resize
// modes (modules/images.py `resize_image`), masks as A1111 reads them (`create_binary_mask`), and the
// [-1, 1] tensor the VAE encoder takes.
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { Tensor } from '../tensor/tensor.js';

/** 8-bit interleaved pixels (HWC). */
export interface RasterImage {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3;
  readonly data: Uint8Array;
}

export type ImageSource = string | Buffer | RasterImage;

/** A1111 resize modes: 0 "Just resize", 1 "Crop and resize", 2 "Resize and fill". */
export type ResizeMode = 'just' | 'crop' | 'fill';
export const RESIZE_MODES: readonly ResizeMode[] = ['just', 'crop', 'fill'];

const RESIZE_MODE_NAMES: Record<ResizeMode, string> = { just: 'Just resize', crop: 'Crop and resize', fill: 'Resize and fill' };
export function resizeModeName(mode: ResizeMode): string {
  return RESIZE_MODE_NAMES[mode];
}

function isRaster(src: ImageSource): src is RasterImage {
  return typeof src === 'object' && !Buffer.isBuffer(src);
}

function describe(src: ImageSource): string {
  return typeof src === 'string' ? src : 'image';
}

async function decode(src: ImageSource): Promise<{ width: number; height: number; channels: number; data: Uint8Array }> {
  if (isRaster(src)) return src;
  let bytes: Buffer;
  try {
    bytes = typeof src === 'string' ? await readFile(src) : src;
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new Error(`${describe(src)}: cannot read image (${reason})`, { cause: err });
  }
  try {
    const { data, info } = await sharp(bytes).raw().toBuffer({ resolveWithObject: true });
    return { width: info.width, height: info.height, channels: info.channels, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    throw new Error(`${describe(src)}: cannot read image (${(err as Error).message.replace(/^Input buffer contains /, '')})`, { cause: err });
  }
}

/**
 * Any image → RGB. Transparency is composited onto white, as A1111's `images.flatten` does with its
 * default `img2img_background_color`.
 */
export async function loadRgb(src: ImageSource): Promise<RasterImage> {
  const img = await decode(src);
  const { width, height, channels, data } = img;
  if (channels === 3) return { width, height, channels: 3, data };
  const out = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    if (channels === 1 || channels === 2) {
      const v = data[i * channels];
      const a = channels === 2 ? data[i * 2 + 1] / 255 : 1;
      out.fill(Math.round(v * a + 255 * (1 - a)), i * 3, i * 3 + 3);
    } else {
      const a = data[i * channels + 3] / 255;
      for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(data[i * channels + c] * a + 255 * (1 - a));
    }
  }
  return { width, height, channels: 3, data: out };
}

/** PIL's RGB → L conversion (ITU-R 601-2 luma in 16-bit fixed point). */
function luma(r: number, g: number, b: number): number {
  return (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
}

/**
 * A mask as A1111 reads one (`create_binary_mask`): white = repaint. An image with a non-opaque alpha
 * channel is taken as an alpha mask (thresholded at 128, as the UI's sketch masks are); anything
 * else is converted to grey levels, which are kept as they are.
 */
export async function loadMask(src: ImageSource): Promise<RasterImage> {
  const img = await decode(src);
  const { width, height, channels, data } = img;
  const n = width * height;
  const out = new Uint8Array(n);
  const hasAlpha = channels === 4 || channels === 2;
  let translucent = false;
  if (hasAlpha) for (let i = 0; i < n && !translucent; i++) translucent = data[i * channels + channels - 1] !== 255;
  for (let i = 0; i < n; i++) {
    const p = i * channels;
    if (translucent) out[i] = data[p + channels - 1] > 128 ? 255 : 0;
    else out[i] = channels >= 3 ? luma(data[p], data[p + 1], data[p + 2]) : data[p];
  }
  return { width, height, channels: 1, data: out };
}

async function lanczos(img: RasterImage, width: number, height: number): Promise<RasterImage> {
  if (img.width === width && img.height === height) return img;
  const buf = await sharp(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength), { raw: { width: img.width, height: img.height, channels: img.channels } })
    .resize(width, height, { fit: 'fill', kernel: 'lanczos3' }).raw().toBuffer();
  return { width, height, channels: img.channels, data: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength) };
}

/** Copies `src` onto a black canvas at (x, y), clipping what falls outside. */
function paste(canvas: RasterImage, src: RasterImage, x: number, y: number): void {
  const c = canvas.channels;
  for (let row = 0; row < src.height; row++) {
    const ty = y + row;
    if (ty < 0 || ty >= canvas.height) continue;
    for (let col = 0; col < src.width; col++) {
      const tx = x + col;
      if (tx < 0 || tx >= canvas.width) continue;
      for (let k = 0; k < c; k++) canvas.data[(ty * canvas.width + tx) * c + k] = src.data[(row * src.width + col) * c + k];
    }
  }
}

/**
 * A1111 `images.resize_image` with its default upscaler (Lanczos; sharp's lanczos3 here, so edges
 * can differ from PIL by a level). "Resize and fill" stretches the outermost row / column of the
 * fitted image over the bars, as A1111's zero-height-box resize does.
 */
export async function resizeImage(img: RasterImage, width: number, height: number, mode: ResizeMode): Promise<RasterImage> {
  if (mode === 'just') return lanczos(img, width, height);
  const ratio = width / height;
  const srcRatio = img.width / img.height;
  const c = img.channels;
  const canvas: RasterImage = { width, height, channels: c, data: new Uint8Array(width * height * c) };
  if (mode === 'crop') {
    const srcW = ratio > srcRatio ? width : Math.floor((img.width * height) / img.height);
    const srcH = ratio <= srcRatio ? height : Math.floor((img.height * width) / img.width);
    paste(canvas, await lanczos(img, srcW, srcH), Math.floor(width / 2) - Math.floor(srcW / 2), Math.floor(height / 2) - Math.floor(srcH / 2));
    return canvas;
  }
  const srcW = ratio < srcRatio ? width : Math.floor((img.width * height) / img.height);
  const srcH = ratio >= srcRatio ? height : Math.floor((img.height * width) / img.width);
  const resized = await lanczos(img, srcW, srcH);
  const ox = Math.floor(width / 2) - Math.floor(srcW / 2);
  const oy = Math.floor(height / 2) - Math.floor(srcH / 2);
  paste(canvas, resized, ox, oy);
  const px = (x: number, y: number) => resized.data.subarray((y * srcW + x) * c, (y * srcW + x) * c + c);
  if (ratio < srcRatio) {
    const fill = Math.floor(height / 2) - Math.floor(srcH / 2);
    for (let y = 0; y < height; y++) {
      const from = y < fill ? 0 : y >= fill + srcH && y < 2 * fill + srcH ? srcH - 1 : -1;
      if (from < 0) continue;
      for (let x = 0; x < width; x++) canvas.data.set(px(Math.min(x, srcW - 1), from), (y * width + x) * c);
    }
  } else if (ratio > srcRatio) {
    const fill = Math.floor(width / 2) - Math.floor(srcW / 2);
    for (let x = 0; x < width; x++) {
      const from = x < fill ? 0 : x >= fill + srcW && x < 2 * fill + srcW ? srcW - 1 : -1;
      if (from < 0) continue;
      for (let y = 0; y < height; y++) canvas.data.set(px(from, Math.min(y, srcH - 1)), (y * width + x) * c);
    }
  }
  return canvas;
}

/** Crops [x1, x2) × [y1, y2). */
export function cropImage(img: RasterImage, x1: number, y1: number, x2: number, y2: number): RasterImage {
  const w = x2 - x1;
  const h = y2 - y1;
  const c = img.channels;
  const data = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++) data.set(img.data.subarray(((y1 + y) * img.width + x1) * c, ((y1 + y) * img.width + x2) * c), y * w * c);
  return { width: w, height: h, channels: c, data };
}

/** RGB8 → [B, 3, H, W] in [-1, 1] (÷255 in float32, then ·2 − 1, as A1111 and ComfyUI do), repeated over the batch. */
export function rgbToTensor(img: RasterImage, batch = 1): Tensor {
  if (img.channels !== 3) throw new Error('expected an RGB image');
  const { width: w, height: h } = img;
  const plane = w * h;
  const out = new Float32Array(batch * 3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = Math.fround(Math.fround(img.data[i * 3 + c] / 255) * 2 - 1);
  }
  for (let b = 1; b < batch; b++) out.copyWithin(b * 3 * plane, 0, 3 * plane);
  return Tensor.f32([batch, 3, h, w], out);
}
