// A1111's "NV" random source (modules/rng_philox.py), which reproduces `torch.randn` on a CUDA
// generator without a GPU: Philox4x32-10 keyed by the 64-bit seed, one counter per element, and
// A1111's single-output Box–Muller. A1111's default "GPU" source on a CUDA machine gives the same
// numbers (its own claim), so the `a1111` profile uses this for both `gpu` and `nv`.
import { numelOf, TorchCpuGenerator, type TorchCpuKernel } from './rng-torch-cpu.js';

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two uint32s (exact: the 16-bit pieces stay below 2^53). */
function mulhi(a: number, b: number): number {
  const aLo = a & 0xffff;
  const aHi = a >>> 16;
  const bLo = b & 0xffff;
  const bHi = b >>> 16;
  const lo = aLo * bLo;
  const mid1 = aHi * bLo;
  const mid2 = aLo * bHi;
  const carry = ((lo >>> 16) + (mid1 & 0xffff) + (mid2 & 0xffff)) >>> 16;
  return (aHi * bHi + (mid1 >>> 16) + (mid2 >>> 16) + carry) >>> 0;
}

/** Philox4x32 with `rounds` rounds (10 as CUDA's curand and A1111 use). Returns four uint32 words. */
export function philox4x32(counter: readonly number[], key: readonly number[], rounds = 10): [number, number, number, number] {
  let [c0, c1, c2, c3] = counter.map((v) => v >>> 0);
  let k0 = key[0] >>> 0;
  let k1 = key[1] >>> 0;
  for (let r = 0; r < rounds; r++) {
    if (r > 0) {
      k0 = (k0 + W0) >>> 0;
      k1 = (k1 + W1) >>> 0;
    }
    const hi0 = mulhi(c0, M0);
    const lo0 = Math.imul(c0, M0) >>> 0;
    const hi2 = mulhi(c2, M1);
    const lo2 = Math.imul(c2, M1) >>> 0;
    c0 = (hi2 ^ c1 ^ k0) >>> 0;
    c1 = lo2;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  return [c0, c1, c2, c3];
}

// A1111 keeps these as float32 constants but numpy promotes uint32 × float32 to float64, so the
// rest of the transform runs in float64.
const K = Math.fround(2.3283064e-10);
const K2 = Math.fround(2.3283064e-10 * 6.2831855);

/** A1111's `box_muller(x, y)`: the sine half only, rounded to float32. */
export function boxMuller(x: number, y: number): number {
  const u = x * K + K / 2;
  const v = y * K2 + K2 / 2;
  return Math.fround(Math.sqrt(-2 * Math.log(u)) * Math.sin(v));
}

/** A seed as an unsigned 64-bit integer (negative seeds wrap, as numpy's uint64 fill does). */
export function seedToUint64(seed: number | bigint): bigint {
  if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
    throw new Error(`seed ${seed} is not an integer within ±2^53; pass a bigint for larger seeds`);
  }
  return BigInt.asUintN(64, BigInt(seed));
}

/** `rng_philox.Generator`: each `randn` call uses the next counter offset, whatever its size. */
export class PhiloxGenerator {
  readonly seed: bigint;
  /** Number of `randn` calls made so far (the counter's first word). */
  offset = 0;
  private readonly key: [number, number];

  constructor(seed: number | bigint) {
    this.seed = seedToUint64(seed);
    this.key = [Number(this.seed & 0xffffffffn), Number(this.seed >> 32n)];
  }

  randn(shape: number | readonly number[]): Float32Array {
    const n = numelOf(shape);
    if (n > 2 ** 32) throw new Error('Philox randn supports at most 2^32 values per call');
    const out = new Float32Array(n);
    const counter = [this.offset >>> 0, 0, 0, 0];
    for (let i = 0; i < n; i++) {
      counter[2] = i;
      const o = philox4x32(counter, this.key);
      out[i] = boxMuller(o[0], o[1]);
    }
    this.offset += 1;
    return out;
  }
}

// ---------------------------------------------------------------- A1111 per-image noise

/** A1111's `randn_source`: "GPU" (on CUDA ≙ NV, see above), "NV", or torch's CPU generator. */
export type A1111RandnSource = 'gpu' | 'nv' | 'cpu';

interface NoiseGenerator {
  randn(shape: readonly number[]): Float32Array;
}

function createGenerator(source: A1111RandnSource, seed: number | bigint, kernel: TorchCpuKernel): NoiseGenerator {
  return source === 'cpu' ? new TorchCpuGenerator(seed, kernel) : new PhiloxGenerator(seed);
}

/**
 * A1111's `slerp(val, low, high)` over [C, H, W] noise: norms and dot products run over H, i.e.
 * independently for every (c, w) column. When the columns are nearly parallel on average it falls
 * back to `low·val + high·(1 − val)` — weights swapped relative to the slerp, as in A1111.
 */
export function slerp(val: number, low: Float32Array, high: Float32Array, shape: readonly [number, number, number]): Float32Array {
  const [C, H, W] = shape;
  const col = (c: number, w: number, h: number): number => (c * H + h) * W + w;
  const dots = new Float64Array(C * W);
  const lowNorm = new Float64Array(C * W);
  const highNorm = new Float64Array(C * W);
  for (let c = 0; c < C; c++) {
    for (let w = 0; w < W; w++) {
      let ll = 0;
      let hh = 0;
      for (let h = 0; h < H; h++) {
        ll += low[col(c, w, h)] ** 2;
        hh += high[col(c, w, h)] ** 2;
      }
      lowNorm[c * W + w] = Math.sqrt(ll);
      highNorm[c * W + w] = Math.sqrt(hh);
      let dot = 0;
      for (let h = 0; h < H; h++) dot += (low[col(c, w, h)] / lowNorm[c * W + w]) * (high[col(c, w, h)] / highNorm[c * W + w]);
      dots[c * W + w] = dot;
    }
  }
  const out = new Float32Array(low.length);
  const meanDot = dots.reduce((a, b) => a + b, 0) / dots.length;
  if (meanDot > 0.9995) {
    const a = Math.fround(val);
    const b = Math.fround(1 - val);
    for (let i = 0; i < out.length; i++) out[i] = Math.fround(Math.fround(low[i] * a) + Math.fround(high[i] * b));
    return out;
  }
  for (let c = 0; c < C; c++) {
    for (let w = 0; w < W; w++) {
      const omega = Math.acos(dots[c * W + w]);
      const so = Math.sin(omega);
      const kLow = Math.sin((1 - val) * omega) / so;
      const kHigh = Math.sin(val * omega) / so;
      for (let h = 0; h < H; h++) out[col(c, w, h)] = kLow * low[col(c, w, h)] + kHigh * high[col(c, w, h)];
    }
  }
  return out;
}

export interface ImageRngOptions {
  /** One seed per image (A1111 passes seed + i). */
  seeds: ReadonlyArray<number | bigint>;
  /** Variation seeds; images beyond the list use subseed 0, as A1111 does. */
  subseeds?: ReadonlyArray<number | bigint>;
  /** Variation strength: 0 = the seed's noise, 1 = the variation seed's. */
  subseedStrength?: number;
  /** "Resize seed from height/width" in pixels (0 = off). */
  seedResizeFromH?: number;
  seedResizeFromW?: number;
  /** Eta noise seed delta (ENSD): sampler noise comes from generators reseeded with seed + ENSD. */
  etaNoiseSeedDelta?: number;
  source?: A1111RandnSource;
  /** torch CPU kernel flavour for `source: 'cpu'`. */
  cpuKernel?: TorchCpuKernel;
}

/**
 * A1111's `ImageRNG`: the initial noise (`first()`: per-image seeds, variation-seed slerp, seed
 * resize) and then, per `next()`, the next draw of each image's own generator — the ancestral /
 * per-step noise k-diffusion asks for. Arrays are [B, C, H, W] float32, flattened.
 */
export class ImageRNG {
  readonly shape: readonly [number, number, number];
  private readonly opts: ImageRngOptions;
  private readonly source: A1111RandnSource;
  private readonly kernel: TorchCpuKernel;
  private generators: NoiseGenerator[];
  private isFirst = true;

  constructor(shape: readonly [number, number, number], opts: ImageRngOptions) {
    if (opts.seeds.length === 0) throw new Error('ImageRNG needs at least one seed');
    this.shape = shape;
    this.opts = opts;
    this.source = opts.source ?? 'nv';
    this.kernel = opts.cpuKernel ?? 'avx2';
    this.generators = opts.seeds.map((s) => createGenerator(this.source, s, this.kernel));
  }

  private fresh(seed: number | bigint): NoiseGenerator {
    return createGenerator(this.source, seed, this.kernel);
  }

  first(): Float32Array {
    const { seeds, subseeds, subseedStrength = 0, seedResizeFromH = 0, seedResizeFromW = 0 } = this.opts;
    const [C, H, W] = this.shape;
    const resized = seedResizeFromH > 0 && seedResizeFromW > 0;
    const noiseShape: [number, number, number] = resized
      ? [C, Math.floor(seedResizeFromH / 8), Math.floor(seedResizeFromW / 8)]
      : [C, H, W];
    const same = noiseShape[1] === H && noiseShape[2] === W;
    const per = C * H * W;
    const out = new Float32Array(per * seeds.length);
    seeds.forEach((seed, i) => {
      let subnoise: Float32Array | null = null;
      if (subseeds && subseedStrength !== 0) {
        subnoise = this.fresh(i >= subseeds.length ? 0 : subseeds[i]).randn(noiseShape);
      }
      let noise = same ? this.generators[i].randn(this.shape) : this.fresh(seed).randn(noiseShape);
      if (subnoise) noise = slerp(subseedStrength, noise, subnoise, noiseShape);
      if (!same) noise = pasteCentred(this.generators[i].randn(this.shape), this.shape, noise, noiseShape);
      out.set(noise, i * per);
    });
    const ensd = this.opts.etaNoiseSeedDelta ?? 0;
    if (ensd) this.generators = seeds.map((s) => this.fresh(BigInt(s) + BigInt(ensd)));
    return out;
  }

  next(): Float32Array {
    if (this.isFirst) {
      this.isFirst = false;
      return this.first();
    }
    const per = this.shape[0] * this.shape[1] * this.shape[2];
    const out = new Float32Array(per * this.generators.length);
    this.generators.forEach((g, i) => out.set(g.randn(this.shape), i * per));
    return out;
  }
}

/** Pastes `src` centred into `dst` (both [C, H, W]), cropping whichever side is larger. */
function pasteCentred(dst: Float32Array, dstShape: readonly number[], src: Float32Array, srcShape: readonly number[]): Float32Array {
  const [C, H, W] = dstShape;
  const [, sh, sw] = srcShape;
  const dx = Math.floor((W - sw) / 2);
  const dy = Math.floor((H - sh) / 2);
  const w = dx >= 0 ? sw : sw + 2 * dx;
  const h = dy >= 0 ? sh : sh + 2 * dy;
  const tx = Math.max(dx, 0);
  const ty = Math.max(dy, 0);
  const sx = Math.max(-dx, 0);
  const sy = Math.max(-dy, 0);
  for (let c = 0; c < C; c++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) dst[(c * H + ty + y) * W + tx + x] = src[(c * sh + sy + y) * sw + sx + x];
    }
  }
  return dst;
}
