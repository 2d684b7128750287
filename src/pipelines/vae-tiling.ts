// VAE decode and encode tile by tile, so a large image needs one tile's activations at a time (the
// decoder's mid-block attention alone is (h·w)² floats: 1 GiB for a 1024² image, 16 GiB at 2048²).
//
// Like ComfyUI's decode_tiled / encode_tiled and A1111's Tiled VAE without its group-norm estimate:
// every tile normalises over itself, so tiles differ from the whole-image pass by the difference in
// group-norm statistics; the overlap ramp (tiling.ts) hides the seams.
import type { StableDiffusionModel } from '../models/sd-model.js';
import { Tensor } from '../tensor/tensor.js';
import { runTiled } from './tiling.js';

export interface VaeTilingOptions {
  /** Tile edge in latent pixels (×8 for image pixels). Default 64 (512-pixel image tiles). */
  readonly tile?: number;
  /** Overlap in latent pixels. Default 16 for decode, 8 for encode. */
  readonly overlap?: number;
  readonly onTile?: (done: number, total: number) => void;
}

/**
 * `'auto'` (the default where an option takes it) tiles only when the latent exceeds
 * {@link AUTO_TILE_LATENT_AREA}; `true` always tiles with the defaults; `false` never.
 */
export type VaeTiling = boolean | 'auto' | VaeTilingOptions;

/** Latent area above which 'auto' tiles: 128×128, i.e. images larger than 1024×1024. */
export const AUTO_TILE_LATENT_AREA = 128 * 128;

/** The options to tile with for a latent of h×w, or undefined to run whole. */
export function resolveVaeTiling(tiling: VaeTiling | undefined, h: number, w: number): VaeTilingOptions | undefined {
  const t = tiling ?? 'auto';
  if (t === false) return undefined;
  if (t === 'auto') return h * w > AUTO_TILE_LATENT_AREA ? {} : undefined;
  return t === true ? {} : t;
}

const SCALE = 8;

type Decoder = Pick<StableDiffusionModel, 'decode'>;
type Encoder = Pick<StableDiffusionModel, 'encode'>;

function check(tile: number, overlap: number): void {
  if (!Number.isInteger(tile) || tile < 8) throw new Error(`VAE tile must be an integer of at least 8 latent pixels, got ${tile}`);
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= tile) throw new Error(`VAE tile overlap must be an integer from 0 to below the tile (${tile}), got ${overlap}`);
}

/** decode(z) tile by tile: z [B, 4, h, w] already divided by the scale factor → [B, 3, 8h, 8w]. */
export async function decodeTiled(model: Decoder, z: Tensor, opts: VaeTilingOptions = {}): Promise<Tensor> {
  const tile = opts.tile ?? 64;
  const overlap = opts.overlap ?? 16;
  check(tile, overlap);
  return runTiled(z.to('f32'), (t) => model.decode(t), { tile, overlap, scale: SCALE, onTile: opts.onTile });
}

/** encode(image) tile by tile: image [B, 3, H, W] in [-1, 1], H and W multiples of 8 → posterior mean and log-variance. */
export async function encodeTiled(model: Encoder, image: Tensor, opts: VaeTilingOptions = {}): Promise<{ mean: Tensor; logvar: Tensor }> {
  const tile = opts.tile ?? 64;
  const overlap = opts.overlap ?? 8;
  check(tile, overlap);
  const [, , H, W] = image.shape;
  if (H % SCALE !== 0 || W % SCALE !== 0) throw new Error(`VAE encode needs sizes that are multiples of 8, got ${W}×${H}`);
  let c = 0;
  // Mean and log-variance travel as one 2C-channel tensor so both are blended with the same weights.
  const both = await runTiled(image.to('f32'), async (t) => {
    const { mean, logvar } = await model.encode(t);
    c = mean.shape[1];
    return concatChannels(mean, logvar);
  }, { tile: tile * SCALE, overlap: overlap * SCALE, scale: 1 / SCALE, align: SCALE, onTile: opts.onTile });
  return splitChannels(both, c);
}

/** Whole or tiled decode, as `tiling` says. */
export async function decodeMaybeTiled(model: Decoder, z: Tensor, tiling?: VaeTiling): Promise<Tensor> {
  const opts = resolveVaeTiling(tiling, z.shape[2], z.shape[3]);
  return opts ? decodeTiled(model, z, opts) : model.decode(z);
}

/** Whole or tiled encode, as `tiling` says. */
export async function encodeMaybeTiled(model: Encoder, image: Tensor, tiling?: VaeTiling): Promise<{ mean: Tensor; logvar: Tensor }> {
  const opts = resolveVaeTiling(tiling, image.shape[2] / SCALE, image.shape[3] / SCALE);
  return opts ? encodeTiled(model, image, opts) : model.encode(image);
}

function concatChannels(a: Tensor, b: Tensor): Tensor {
  const [n, ca, h, w] = a.shape;
  const cb = b.shape[1];
  const x = a.toFloat32Array();
  const y = b.toFloat32Array();
  const out = new Float32Array(n * (ca + cb) * h * w);
  for (let i = 0; i < n; i++) {
    out.set(x.subarray(i * ca * h * w, (i + 1) * ca * h * w), i * (ca + cb) * h * w);
    out.set(y.subarray(i * cb * h * w, (i + 1) * cb * h * w), (i * (ca + cb) + ca) * h * w);
  }
  return Tensor.f32([n, ca + cb, h, w], out);
}

function splitChannels(t: Tensor, c: number): { mean: Tensor; logvar: Tensor } {
  const [n, c2, h, w] = t.shape;
  const d = t.toFloat32Array();
  const mean = new Float32Array(n * c * h * w);
  const logvar = new Float32Array(n * (c2 - c) * h * w);
  for (let i = 0; i < n; i++) {
    mean.set(d.subarray(i * c2 * h * w, (i * c2 + c) * h * w), i * c * h * w);
    logvar.set(d.subarray((i * c2 + c) * h * w, (i + 1) * c2 * h * w), i * (c2 - c) * h * w);
  }
  return { mean: Tensor.f32([n, c, h, w], mean), logvar: Tensor.f32([n, c2 - c, h, w], logvar) };
}
