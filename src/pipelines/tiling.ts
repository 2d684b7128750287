// Running a size-preserving-up-to-scale network over an image tile by tile, with overlap, and
// blending the tiles back. Shared by model upscalers (scale 2–4), VAE decode (8) and VAE encode (1/8).
//
// Blending: inside an overlap band each tile's weight ramps linearly from 0 to 1, but the ramp starts
// a quarter of the overlap in from the tile's edge. Pixels next to a tile edge — the ones the zero
// padding of the convolutions corrupts — so get no weight at all, and the two ramps of a band sum to
// one. When that quarter covers the network's receptive field, tiled and untiled outputs agree to
// float precision; for networks with larger fields (real ESRGANs, the VAE's group norms) the ramp
// hides the seam.
import { Tensor } from '../tensor/tensor.js';

export interface TileOptions {
  /** Tile edge in input pixels (a tile never exceeds the image). */
  readonly tile: number;
  /** Overlap between neighbouring tiles in input pixels. */
  readonly overlap: number;
  /** Output pixels per input pixel: 4 for a 4× upscaler, 8 for VAE decode, 1/8 for VAE encode. */
  readonly scale: number;
  /** Tile origins and sizes are multiples of this (8 for VAE encode so latents line up). */
  readonly align?: number;
  /** Called after each tile with (done, total). */
  readonly onTile?: (done: number, total: number) => void;
}

/** Tile origins along one axis: evenly spread, every neighbour overlapping by at least `overlap`. */
export function tileStarts(length: number, tile: number, overlap: number, align = 1): number[] {
  if (tile >= length) return [0];
  // The largest grid-aligned step that keeps the overlap; spreading evenly then never exceeds it.
  const step = Math.floor((tile - overlap) / align) * align;
  if (step <= 0) throw new Error(`tile ${tile} must be larger than the overlap ${overlap}${align > 1 ? ` by at least ${align}` : ''}`);
  const count = Math.ceil((length - tile) / step) + 1;
  const starts: number[] = [];
  for (let i = 0; i < count; i++) {
    const s = Math.round(((length - tile) * i) / (count - 1) / align) * align;
    if (starts.length === 0 || s > starts[starts.length - 1]) starts.push(s);
  }
  return starts;
}

/** Per-axis weights of one tile of `size` output pixels; `lo` / `hi` say whether a neighbour lies on that side. */
function ramp(size: number, band: number, lo: boolean, hi: boolean): Float32Array {
  const w = new Float32Array(size).fill(1);
  if (band <= 0) return w;
  const skip = band / 4;
  const width = band - 2 * skip;
  for (let i = 0; i < size; i++) {
    const d = i + 0.5; // distance of the pixel centre from the low edge
    let v = 1;
    if (lo) v = Math.min(v, Math.max(0, (d - skip) / width));
    if (hi) v = Math.min(v, Math.max(0, (size - d - skip) / width));
    w[i] = v;
  }
  return w;
}

/**
 * Applies `fn` to [B, C, th, tw] crops of `input` [B, C, H, W] and blends the [B, C', th·s, tw·s]
 * results into [B, C', H·s, W·s]. Tiles run one after another, so peak memory is one tile's.
 */
export async function runTiled(input: Tensor, fn: (tile: Tensor) => Promise<Tensor>, opts: TileOptions): Promise<Tensor> {
  const [B, C, H, W] = input.shape;
  const { scale } = opts;
  const align = opts.align ?? 1;
  if (H % align !== 0 || W % align !== 0) throw new Error(`tiling needs sizes that are multiples of ${align}, got ${W}×${H}`);
  const tile = Math.floor(opts.tile / align) * align;
  const src = input.toFloat32Array();
  const ys = tileStarts(H, tile, opts.overlap, align);
  const xs = tileStarts(W, tile, opts.overlap, align);
  const outH = Math.round(H * scale);
  const outW = Math.round(W * scale);
  let out: Float32Array | undefined;
  let outC = 0;
  const weight = new Float32Array(outH * outW);
  const band = opts.overlap * scale;
  const total = ys.length * xs.length;
  let done = 0;
  for (const y0 of ys) {
    const th = Math.min(tile, H);
    for (const x0 of xs) {
      const tw = Math.min(tile, W);
      const crop = new Float32Array(B * C * th * tw);
      for (let p = 0; p < B * C; p++) {
        for (let y = 0; y < th; y++) {
          const from = (p * H + y0 + y) * W + x0;
          crop.set(src.subarray(from, from + tw), (p * th + y) * tw);
        }
      }
      const result = await fn(Tensor.f32([B, C, th, tw], crop));
      const [rb, rc, rh, rw] = result.shape;
      const oy = Math.round(y0 * scale);
      const ox = Math.round(x0 * scale);
      if (rb !== B || rh !== Math.round(th * scale) || rw !== Math.round(tw * scale)) {
        throw new Error(`tile ${tw}×${th} came back ${rw}×${rh}, expected ${Math.round(tw * scale)}×${Math.round(th * scale)}`);
      }
      if (!out) {
        outC = rc;
        out = new Float32Array(B * outC * outH * outW);
      }
      const data = result.toFloat32Array();
      const wy = ramp(rh, band, y0 > 0, y0 + th < H);
      const wx = ramp(rw, band, x0 > 0, x0 + tw < W);
      for (let y = 0; y < rh; y++) {
        for (let x = 0; x < rw; x++) {
          const wt = wy[y] * wx[x];
          if (wt === 0) continue;
          const o = (oy + y) * outW + ox + x;
          weight[o] += wt;
          for (let p = 0; p < B * outC; p++) out[p * outH * outW + o] += wt * data[(p * rh + y) * rw + x];
        }
      }
      opts.onTile?.(++done, total);
    }
  }
  const res = out!;
  for (let p = 0; p < B * outC; p++) {
    const base = p * outH * outW;
    for (let i = 0; i < outH * outW; i++) res[base + i] /= weight[i];
  }
  return Tensor.f32([B, outC, outH, outW], res);
}
