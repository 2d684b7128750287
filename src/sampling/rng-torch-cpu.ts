// `torch.randn` on a CPU generator (ComfyUI's noise, A1111's "CPU" source), reproduced number for
// number: MT19937 keyed by the low 32 bits of the seed, and torch's two normal kernels — a scalar
// Box–Muller in float64 with a cached second value for tensors under 16 elements, and a blockwise
// transform of pre-drawn float uniforms for 16 or more. On x86 torch runs the blockwise transform
// with AVX2 and avx_mathfun's polynomial log/sin/cos (FMA-contracted by the compiler); other CPUs
// use the portable kernel with the C library's logf/sinf/cosf. Both are offered.
import { fma32 } from './discrete.js';

const f32 = Math.fround;

/** Element count of a shape (a bare number is a 1-D length). */
export function numelOf(shape: number | readonly number[]): number {
  const dims = typeof shape === 'number' ? [shape] : shape;
  let n = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape [${dims.join(', ')}]`);
    n *= d;
  }
  return n;
}

/** Which float32 blockwise kernel to imitate: torch's AVX2 one (x86 default) or the portable one. */
export type TorchCpuKernel = 'avx2' | 'default';

/** torch's default CPU seed (`default_rng_seed_val`). */
export const TORCH_DEFAULT_SEED = 67280421310721n;

/** A seed as torch's `manual_seed` takes it: any int64 or uint64 (negative seeds wrap). */
function checkTorchSeed(seed: number | bigint): bigint {
  if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
    throw new Error(`seed ${seed} is not an integer within ±2^53; pass a bigint for larger seeds`);
  }
  const s = BigInt(seed);
  if (s >= 2n ** 64n || s < -(2n ** 63n)) throw new Error(`seed ${s} does not fit in 64 bits (torch: "Overflow when unpacking long")`);
  return BigInt.asUintN(64, s);
}

/** The 32-bit Mersenne Twister (MT19937), as torch's `mt19937` engine. */
class Mt19937 {
  private readonly mt = new Uint32Array(624);
  private index = 624;

  constructor(seed: number) {
    this.mt[0] = seed >>> 0;
    for (let i = 1; i < 624; i++) {
      const prev = this.mt[i - 1] ^ (this.mt[i - 1] >>> 30);
      this.mt[i] = (Math.imul(1812433253, prev) + i) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.mt;
    for (let i = 0; i < 624; i++) {
      const y = (mt[i] & 0x80000000) | (mt[(i + 1) % 624] & 0x7fffffff);
      mt[i] = mt[(i + 397) % 624] ^ (y >>> 1) ^ (y & 1 ? 0x9908b0df : 0);
    }
    this.index = 0;
  }

  next(): number {
    if (this.index >= 624) this.twist();
    let y = this.mt[this.index++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }
}

export interface RandnOptions {
  dtype?: 'f32' | 'f64';
  kernel?: TorchCpuKernel;
}

/** A `torch.Generator('cpu')`: state (and the cached Box–Muller value) carry over between calls. */
export class TorchCpuGenerator {
  private engine!: Mt19937;
  private cachedNormal: number | null = null;
  private seedValue = 0n;
  /** Kernel used when a call does not name one. */
  kernel: TorchCpuKernel;

  constructor(seed: number | bigint = TORCH_DEFAULT_SEED, kernel: TorchCpuKernel = 'avx2') {
    this.kernel = kernel;
    this.manualSeed(seed);
  }

  /** `manual_seed`: MT19937 from the low 32 bits, cached normal cleared. */
  manualSeed(seed: number | bigint): this {
    this.seedValue = checkTorchSeed(seed);
    this.engine = new Mt19937(Number(this.seedValue & 0xffffffffn));
    this.cachedNormal = null;
    return this;
  }

  /** The seed as torch reports it (`initial_seed`, uint64). */
  get seed(): bigint {
    return this.seedValue;
  }

  /** Next raw uint32. */
  random(): number {
    return this.engine.next();
  }

  /** torch's double uniform in [0, 1): the low 53 bits of two draws (first draw high). */
  uniformDouble(): number {
    const hi = this.engine.next() & 0x1fffff;
    const lo = this.engine.next();
    return (hi * 2 ** 32 + lo) * 2 ** -53;
  }

  /** torch's float uniform in [0, 1): the low 24 bits of one draw. */
  uniformFloat(): number {
    return (this.engine.next() & 0xffffff) * 2 ** -24;
  }

  /** `at::normal_distribution<double>`: Box–Muller returning cos, caching sin for the next call. */
  normalDouble(): number {
    if (this.cachedNormal !== null) {
      const v = this.cachedNormal;
      this.cachedNormal = null;
      return v;
    }
    const u1 = this.uniformDouble();
    const u2 = this.uniformDouble();
    const r = Math.sqrt(-2 * Math.log(1 - u2));
    const theta = 2 * Math.PI * u1;
    this.cachedNormal = r * Math.sin(theta);
    return r * Math.cos(theta);
  }

  /** `torch.randn(shape, generator=self)` on the CPU, contiguous. */
  randn(shape: number | readonly number[], options: RandnOptions & { dtype: 'f64' }): Float64Array;
  randn(shape: number | readonly number[], options?: RandnOptions): Float32Array;
  randn(shape: number | readonly number[], options: RandnOptions = {}): Float32Array | Float64Array {
    const n = numelOf(shape);
    const dtype = options.dtype ?? 'f32';
    if (n < 16) {
      const out = dtype === 'f32' ? new Float32Array(n) : new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = this.normalDouble();
      return out;
    }
    return dtype === 'f64' ? this.fillDouble(n) : this.fillFloat(n, options.kernel ?? this.kernel);
  }

  private fillFloat(n: number, kernel: TorchCpuKernel): Float32Array {
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) d[i] = this.uniformFloat();
    const block = kernel === 'avx2' ? normalBlockAvx2 : normalBlockFloat;
    for (let i = 0; i + 16 <= n; i += 16) block(d, i);
    if (n % 16 !== 0) {
      // torch redraws and re-transforms the last 16 elements rather than handle a partial block.
      for (let i = n - 16; i < n; i++) d[i] = this.uniformFloat();
      block(d, n - 16);
    }
    return d;
  }

  private fillDouble(n: number): Float64Array {
    const d = new Float64Array(n);
    for (let i = 0; i < n; i++) d[i] = this.uniformDouble();
    for (let i = 0; i + 16 <= n; i += 16) normalBlockDouble(d, i);
    if (n % 16 !== 0) {
      for (let i = n - 16; i < n; i++) d[i] = this.uniformDouble();
      normalBlockDouble(d, n - 16);
    }
    return d;
  }
}

/** Convenience: `torch.manual_seed(seed); torch.randn(shape)`. */
export function torchRandn(seed: number | bigint, shape: number | readonly number[], options: RandnOptions = {}): Float32Array {
  return new TorchCpuGenerator(seed, options.kernel).randn(shape, { ...options, dtype: 'f32' });
}

// ---------------------------------------------------------------- blockwise Box–Muller kernels

const TWO_PI_F32 = f32(2 * Math.PI);

/** Portable `normal_fill_16<double>`. */
function normalBlockDouble(d: Float64Array, at: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = 1 - d[at + j];
    const u2 = d[at + j + 8];
    const radius = Math.sqrt(-2 * Math.log(u1));
    const theta = 2 * Math.PI * u2;
    d[at + j] = radius * Math.cos(theta);
    d[at + j + 8] = radius * Math.sin(theta);
  }
}

/**
 * Portable `normal_fill_16<float>`: θ is formed in double then stored as float; log/cos/sin are
 * float32 library calls, emulated as the rounded double result (glibc's may differ by an ulp).
 */
function normalBlockFloat(d: Float32Array, at: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f32(1 - d[at + j]);
    const u2 = d[at + j + 8];
    const radius = f32(Math.sqrt(f32(-2 * f32(Math.log(u1)))));
    const theta = f32(2 * Math.PI * u2);
    d[at + j] = f32(radius * f32(Math.cos(theta)));
    d[at + j + 8] = f32(radius * f32(Math.sin(theta)));
  }
}

/** `normal_fill_16_AVX2`, one lane at a time: every SIMD op reproduced in float32. */
function normalBlockAvx2(d: Float32Array, at: number): void {
  for (let j = 0; j < 8; j++) {
    const u1 = f32(1 - d[at + j]);
    const u2 = d[at + j + 8];
    const radius = f32(Math.sqrt(f32(-2 * logAvx(u1))));
    const theta = f32(TWO_PI_F32 * u2);
    const [s, c] = sincosAvx(theta);
    d[at + j] = f32(radius * c);
    d[at + j + 8] = f32(radius * s);
  }
}

// avx_mathfun (cephes-derived) constants, as float32.
const LOG_P = [7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1, 1.4249322787e-1,
  -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1].map(f32);
const LOG_Q1 = f32(-2.12194440e-4);
const LOG_Q2 = f32(0.693359375);
const SQRTHF = f32(0.7071067811865476);
const FOPI = f32(1.27323954473516);
const DP1 = f32(-0.78515625);
const DP2 = f32(-2.4187564849853515625e-4);
const DP3 = f32(-3.774894977445941e-8);
const SIN_P = [-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1].map(f32);
const COS_P = [2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2].map(f32);

const scratch = new DataView(new ArrayBuffer(4));

/**
 * `log256_ps` for one positive float32 lane (inputs here are in (0, 1]). Where the compiler fused a
 * multiply into the following add (Horner steps, the e·q1 correction), fma32 rounds once.
 */
function logAvx(x: number): number {
  scratch.setFloat32(0, Math.max(x, 1.1754943508222875e-38));
  const raw = scratch.getUint32(0);
  let e = f32(((raw >>> 23) - 0x7f) + 1);
  scratch.setUint32(0, (raw & ~0x7f800000) | 0x3f000000);
  let m = scratch.getFloat32(0);
  if (m < SQRTHF) {
    e = f32(e - 1);
    m = f32(f32(m - 1) + m);
  } else {
    m = f32(m - 1);
  }
  const z = f32(m * m);
  let y = LOG_P[0];
  for (let i = 1; i < LOG_P.length; i++) y = fma32(y, m, LOG_P[i]);
  y = f32(y * m);
  y = fma32(y, z, f32(e * LOG_Q1));
  y = f32(y - f32(z * 0.5));
  return fma32(e, LOG_Q2, f32(m + y));
}

/** `sincos256_ps` for one non-negative float32 lane: [sin, cos]. */
function sincosAvx(x: number): [number, number] {
  let j = Math.trunc(f32(x * FOPI));
  j = (j + 1) & ~1;
  const y = j;
  const sinSwap = (j & 4) !== 0;
  const cosSwap = ((j - 2) & 4) === 0;
  const usePolySin = (j & 2) === 0;
  let r = fma32(y, DP1, x);
  r = fma32(y, DP2, r);
  r = fma32(y, DP3, r);
  const z = f32(r * r);

  let c = fma32(COS_P[0], z, COS_P[1]);
  c = fma32(c, z, COS_P[2]);
  c = f32(c * z);
  c = fma32(c, z, -f32(z * 0.5));
  c = f32(c + 1);

  let s = fma32(SIN_P[0], z, SIN_P[1]);
  s = fma32(s, z, SIN_P[2]);
  s = f32(s * z);
  s = fma32(s, r, r);

  const sinVal = usePolySin ? s : c;
  const cosVal = usePolySin ? c : s;
  return [sinSwap ? -sinVal : sinVal, cosSwap ? -cosVal : cosVal];
}

/**
 * ComfyUI `prepare_noise(latent, seed, noise_inds)`: a freshly seeded generator and ONE draw for
 * the whole [B, C, H, W] batch, so image b ≥ 1 has no single-image equivalent. With `noiseInds`,
 * one [1, C, H, W] draw per index 0…max, keeping the requested ones in the requested order.
 */
export function comfyPrepareNoise(
  shape: readonly number[],
  seed: number | bigint,
  noiseInds?: readonly number[],
  kernel: TorchCpuKernel = 'avx2',
): Float32Array {
  const gen = new TorchCpuGenerator(seed, kernel);
  if (!noiseInds) return gen.randn(shape);
  const per = numelOf(shape.slice(1));
  const wanted = new Set(noiseInds);
  const drawn = new Map<number, Float32Array>();
  for (let i = 0; i <= Math.max(...noiseInds); i++) {
    const noise = gen.randn([1, ...shape.slice(1)]);
    if (wanted.has(i)) drawn.set(i, noise);
  }
  const out = new Float32Array(per * noiseInds.length);
  noiseInds.forEach((ind, k) => out.set(drawn.get(ind)!, k * per));
  return out;
}
