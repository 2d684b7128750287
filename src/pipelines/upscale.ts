// Image upscaling: ESRGAN-family models run tile by tile, and plain resampling (Lanczos, nearest).
// A model whose own factor differs from the requested one is applied as A1111 does: again while the
// image is still smaller than the target (at most three passes), then resized to the exact size.
import { basename, extname } from 'node:path';
import sharp from 'sharp';
import { openStateDict } from '../formats/open.js';
import { GraphBuilder } from '../graph/builder.js';
import { stateDictWeights, type WeightSource } from '../graph/weights.js';
import { buildUpscaler, describeUpscaler, detectUpscaler, sizeMultiple, type UpscalerConfig } from '../models/esrgan.js';
import { createSession, type RuntimeOptions, type Session } from '../runtime/session.js';
import { Tensor } from '../tensor/tensor.js';
import type { StableDiffusionModel } from '../models/sd-model.js';
import { encodePng } from './image-output.js';
import { img2img, type Img2ImgOptions } from './img2img.js';
import { runTiled } from './tiling.js';

/** 8-bit RGB, row-major HWC. */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
}

export const RESAMPLERS = ['lanczos', 'nearest'] as const;
export type Resampler = (typeof RESAMPLERS)[number];

/** An ESRGAN-family model with its ONNX Runtime session. */
export class UpscalerModel {
  private constructor(
    readonly path: string,
    readonly config: UpscalerConfig,
    private readonly session: Session,
    private readonly io: 'f32' | 'f16',
    private readonly closeFile: () => Promise<void>,
  ) {}

  /** Opens a `.pth` / `.safetensors` upscaler (BasicSR `params_ema` / `params` wrappers already unwrapped). */
  static async load(path: string, runtime: RuntimeOptions = {}): Promise<UpscalerModel> {
    const sd = await openStateDict(path);
    try {
      return await UpscalerModel.fromWeights(path, sd.keys(), stateDictWeights(sd), runtime, () => sd.close());
    } catch (err) {
      await sd.close();
      throw err;
    }
  }

  /** From weights already open (tests, merged or converted state dicts). */
  static async fromWeights(path: string, keys: readonly string[], weights: WeightSource, runtime: RuntimeOptions = {}, close: () => Promise<void> = async () => {}): Promise<UpscalerModel> {
    const config = detectUpscaler({ keys: () => [...keys], info: (k) => weights.info(k) }, path);
    const io = (runtime.device ?? 'cpu') === 'cpu' ? 'f32' : 'f16';
    const g = new GraphBuilder({ weights, dtype: io });
    const x = g.input('image', ['B', config.inChannels, 'H', 'W'], io);
    try {
      g.output(buildUpscaler(g, g.scope(), config, x), 'upscaled');
    } catch (err) {
      const msg = (err as Error).message;
      throw new Error(msg.includes(path) ? msg : `${path}: ${msg}`, { cause: err });
    }
    const session = await createSession(g.finish(), weights, runtime);
    return new UpscalerModel(path, config, session, io, close);
  }

  get scale(): number { return this.config.scale; }

  describe(): string { return describeUpscaler(this.config); }

  /**
   * [B, 3, h, w] in [0, 1] → [B, 3, h·s, w·s]. Sizes the network cannot take (odd sizes for the
   * pixel-unshuffle models) are edge-padded and cropped back.
   */
  async run(x: Tensor): Promise<Tensor> {
    const [b, c, h, w] = x.shape;
    const m = sizeMultiple(this.config);
    const ph = Math.ceil(h / m) * m;
    const pw = Math.ceil(w / m) * m;
    const input = ph === h && pw === w ? x : padEdge(x, ph, pw);
    const out = (await this.session.run({ image: input.to(this.io) })).upscaled.to('f32');
    if (ph === h && pw === w) return out;
    const s = this.scale;
    return crop(out, [b, c, h * s, w * s]);
  }

  async close(): Promise<void> {
    await this.session.release();
    await this.closeFile();
  }
}

function padEdge(x: Tensor, ph: number, pw: number): Tensor {
  const [b, c, h, w] = x.shape;
  const src = x.toFloat32Array();
  const out = new Float32Array(b * c * ph * pw);
  for (let p = 0; p < b * c; p++) {
    for (let y = 0; y < ph; y++) {
      const sy = Math.min(y, h - 1);
      for (let q = 0; q < pw; q++) out[(p * ph + y) * pw + q] = src[(p * h + sy) * w + Math.min(q, w - 1)];
    }
  }
  return Tensor.f32([b, c, ph, pw], out);
}

function crop(x: Tensor, shape: readonly number[]): Tensor {
  const [b, c, h, w] = x.shape;
  const [, , oh, ow] = shape;
  const src = x.toFloat32Array();
  const out = new Float32Array(b * c * oh * ow);
  for (let p = 0; p < b * c; p++) {
    for (let y = 0; y < oh; y++) out.set(src.subarray((p * h + y) * w, (p * h + y) * w + ow), (p * oh + y) * ow);
  }
  return Tensor.f32(shape, out);
}

/** HWC 8-bit → [1, 3, H, W] in [0, 1]. */
export function rgbToTensor(img: RgbImage): Tensor {
  const { width: w, height: h, rgb } = img;
  const out = new Float32Array(3 * h * w);
  for (let i = 0; i < h * w; i++) for (let c = 0; c < 3; c++) out[c * h * w + i] = rgb[i * 3 + c] / 255;
  return Tensor.f32([1, 3, h, w], out);
}

/** [1, 3, H, W] in [0, 1] → HWC 8-bit, clamped and rounded as BasicSR's tensor2img. */
export function tensorToRgb(t: Tensor): RgbImage {
  const [, , h, w] = t.shape;
  const src = t.toFloat32Array();
  const rgb = new Uint8Array(h * w * 3);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < h * w; i++) rgb[i * 3 + c] = Math.round(Math.min(Math.max(src[c * h * w + i], 0), 1) * 255);
  }
  return { width: w, height: h, rgb };
}

export async function readRgbImage(path: string): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(path).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    return { width: info.width, height: info.height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' || /missing|no such file/i.test(e.message)) throw new Error(`${path}: no such file`, { cause: err });
    throw new Error(`${path}: not a readable image (${e.message})`, { cause: err });
  }
}

/** Resizes with sharp (libvips): `lanczos` is Lanczos-3 as PIL's LANCZOS that A1111 uses. */
export async function resample(img: RgbImage, width: number, height: number, kernel: Resampler): Promise<RgbImage> {
  if (img.width === width && img.height === height) return img;
  const { data } = await sharp(Buffer.from(img.rgb.buffer, img.rgb.byteOffset, img.rgb.byteLength), { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(width, height, { kernel: kernel === 'lanczos' ? 'lanczos3' : 'nearest', fit: 'fill' })
    .raw().toBuffer({ resolveWithObject: true });
  return { width, height, rgb: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

export interface ModelUpscaleOptions {
  /** Tile edge in input pixels; 0 runs the whole image at once. Default 512. */
  readonly tile?: number;
  /** Overlap between tiles in input pixels. Default 32. */
  readonly overlap?: number;
  readonly onTile?: (done: number, total: number) => void;
}

/** One pass of the model over [1, 3, H, W] in [0, 1], tiled unless the image fits in one tile. */
export async function upscaleTensor(model: UpscalerModel, x: Tensor, opts: ModelUpscaleOptions = {}): Promise<Tensor> {
  const tile = opts.tile ?? 512;
  const overlap = opts.overlap ?? 32;
  const [, , h, w] = x.shape;
  if (tile <= 0 || (h <= tile && w <= tile)) {
    const out = await model.run(x);
    opts.onTile?.(1, 1);
    return out;
  }
  if (overlap < 0 || overlap >= tile) throw new Error(`overlap must be from 0 to below the tile size ${tile}, got ${overlap}`);
  // Pixel-unshuffle models group pixels in m×m blocks from the origin: tiles must keep that grid.
  const m = sizeMultiple(model.config);
  const ph = Math.ceil(h / m) * m;
  const pw = Math.ceil(w / m) * m;
  const input = ph === h && pw === w ? x : padEdge(x, ph, pw);
  const out = await runTiled(input, (t) => model.run(t), { tile, overlap, scale: model.scale, align: m, onTile: opts.onTile });
  return ph === h && pw === w ? out : crop(out, [1, x.shape[1], h * model.scale, w * model.scale]);
}

export interface UpscaleOptions extends ModelUpscaleOptions {
  /** Output size ÷ input size (the result is rounded to whole pixels). */
  readonly scale: number;
  readonly upscaler: Resampler | UpscalerModel;
}

export async function upscaleImage(img: RgbImage, opts: UpscaleOptions): Promise<RgbImage> {
  const { scale, upscaler } = opts;
  if (!Number.isFinite(scale) || scale <= 0 || scale > 16) throw new Error(`scale must be a number above 0 and at most 16, got ${scale}`);
  const width = Math.max(1, Math.round(img.width * scale));
  const height = Math.max(1, Math.round(img.height * scale));
  if (width * height > 2 ** 28) throw new Error(`${width}×${height} is too large (at most 2^28 pixels)`);
  if (typeof upscaler === 'string') {
    if (!RESAMPLERS.includes(upscaler)) throw new Error(`unknown upscaler '${upscaler}' (choose ${RESAMPLERS.join(', ')}, or give a model file)`);
    return resample(img, width, height, upscaler);
  }
  let cur = img;
  for (let pass = 0; pass < 3 && (cur.width < width || cur.height < height); pass++) {
    cur = tensorToRgb(await upscaleTensor(upscaler, rgbToTensor(cur), opts));
    if (upscaler.scale === 1) break;
  }
  return resample(cur, width, height, 'lanczos');
}

// ---- SD upscale ------------------------------------------------------------------------------------

export interface SdUpscaleOptions extends Omit<Img2ImgOptions, 'image' | 'width' | 'height' | 'batchSize' | 'noise'> {
  readonly image: RgbImage;
  /** Upscale factor of the first stage. */
  readonly scale: number;
  readonly upscaler: Resampler | UpscalerModel;
  /** img2img tile edge in output pixels, a multiple of 8 (A1111 uses the img2img size; default 512). */
  readonly tileSize?: number;
  /** Overlap of the img2img tiles in pixels, a multiple of 8 (A1111 default 64). */
  readonly tileOverlap?: number;
  /** Display name of the upscaler for the metadata (default: the resampler or the model file name). */
  readonly upscalerName?: string;
  readonly onTileDone?: (done: number, total: number) => void;
}

export interface SdUpscaleResult extends RgbImage {
  readonly png: Buffer;
  readonly parameters: string;
  readonly tiles: number;
}

/**
 * A1111's "SD upscale" script: upscale, then img2img every tile of a grid with overlap at the same
 * seed, and blend the tiles back (a linear ramp across each overlap, see tiling.ts).
 */
export async function sdUpscale(model: StableDiffusionModel, opts: SdUpscaleOptions): Promise<SdUpscaleResult> {
  const tile = opts.tileSize ?? 512;
  const overlap = opts.tileOverlap ?? 64;
  if (!Number.isInteger(tile) || tile < 64 || tile % 8 !== 0) throw new Error(`SD upscale tile size must be a multiple of 8 of at least 64, got ${tile}`);
  if (!Number.isInteger(overlap) || overlap < 0 || overlap % 8 !== 0 || overlap >= tile) throw new Error(`SD upscale overlap must be a multiple of 8 below the tile size, got ${overlap}`);
  const seed = opts.seed ?? Math.floor(Math.random() * 4294967295);
  const up = await upscaleImage(opts.image, { scale: opts.scale, upscaler: opts.upscaler, onTile: undefined });
  // The grid needs sizes that are multiples of 8: pad by repeating the edge, crop at the end.
  const ph = Math.ceil(up.height / 8) * 8;
  const pw = Math.ceil(up.width / 8) * 8;
  let x = rgbToTensor(up);
  if (ph !== up.height || pw !== up.width) x = padEdge(x, ph, pw);
  let first: { parameters: string } | undefined;
  let tiles = 0;
  const { image: _image, scale: _scale, upscaler: _upscaler, tileSize: _t, tileOverlap: _o, upscalerName: _n, onTileDone, ...img2imgOpts } = opts;
  const blended = await runTiled(x, async (t) => {
    const [, , th, tw] = t.shape;
    const rgb = tensorToRgb(t);
    const r = await img2img(model, { ...img2imgOpts, seed, image: { width: tw, height: th, channels: 3, data: rgb.rgb }, width: tw, height: th, resizeMode: 'just' });
    first ??= r.images[0];
    return rgbToTensor({ width: tw, height: th, rgb: r.images[0].rgb });
  }, { tile, overlap, scale: 1, align: 8, onTile: (d, n) => { tiles = n; onTileDone?.(d, n); } });
  const out = tensorToRgb(ph !== up.height || pw !== up.width ? crop(blended, [1, 3, up.height, up.width]) : blended);
  const name = opts.upscalerName ?? (typeof opts.upscaler === 'string' ? (opts.upscaler === 'lanczos' ? 'Lanczos' : 'Nearest') : basename(opts.upscaler.path, extname(opts.upscaler.path)));
  const parameters = `${first!.parameters}, SD upscale overlap: ${overlap}, SD upscale upscaler: ${name}`;
  return { ...out, tiles, parameters, png: await encodePng(out.rgb, out.width, out.height, parameters) };
}
