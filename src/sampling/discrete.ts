// The SD discrete (DDPM) noise schedule as the three reference codebases build it. They start from
// the same float64 betas but store the sigma table differently, and the last digits of every
// schedule built on top depend on that: k-diffusion's CompVisDenoiser (A1111) computes σ in
// float32 from the model's float32 `alphas_cumprod` buffer, ComfyUI's ModelSamplingDiscrete computes
// in float64 and casts, and the "f64" flavour is k-diffusion run under float64 default dtype.

const f32 = Math.fround;
const id = (x: number): number => x;

/** Rounding of one arithmetic result to the tensor dtype the original computes in. */
export type Rounding = (x: number) => number;

export type TableFlavor = 'kdiffusion' | 'comfy' | 'kdiffusion-f64';

const bits = new DataView(new ArrayBuffer(8));

/** x = m·2^e exactly (m a BigInt). */
function decompose(x: number): [bigint, number] {
  if (x === 0) return [0n, 0];
  bits.setFloat64(0, x);
  const hi = bits.getUint32(0);
  const lo = bits.getUint32(4);
  const biased = (hi >>> 20) & 0x7ff;
  let m = (BigInt(hi & 0xfffff) << 32n) | BigInt(lo);
  let e = -1074;
  if (biased !== 0) {
    m |= 1n << 52n;
    e = biased - 1075;
  }
  return [hi >>> 31 ? -m : m, e];
}

/**
 * Fused multiply-add a·b + c with one rounding to float64. torch's AVX2 kernels are compiled with
 * FMA contraction, so `start + step·idx` there is fused; exact BigInt arithmetic is slow but only
 * runs while tables are built.
 */
export function fma64(a: number, b: number, c: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b) || !Number.isFinite(c)) return a * b + c;
  const [ma, ea] = decompose(a);
  const [mb, eb] = decompose(b);
  const [mc, ec] = decompose(c);
  const ep = ea + eb;
  const e = Math.min(ep, ec);
  const sum = ((ma * mb) << BigInt(ep - e)) + (mc << BigInt(ec - e));
  // Number(BigInt) rounds to nearest-even; scaling by 2^e afterwards is exact in the normal range.
  const half = Math.trunc(e / 2);
  return Number(sum) * 2 ** half * 2 ** (e - half);
}

/** a·b + c with one rounding to float32 (round-to-odd in float64 keeps the final rounding single). */
export function fma32(a: number, b: number, c: number): number {
  const p = a * b; // exact: 24 + 24 bits
  const s = p + c;
  const bp = s - c;
  const err = (p - bp) + (c - (s - bp));
  if (err === 0 || !Number.isFinite(s)) return f32(s);
  bits.setFloat64(0, s);
  const lo = bits.getUint32(4);
  if ((lo & 1) === 0) {
    // Nudge one ulp towards the lost part so the float64 is odd (sticky) and never a false tie.
    const towardsUp = (err > 0) === (s > 0);
    const v = bits.getBigUint64(0) + (towardsUp ? 1n : -1n);
    bits.setBigUint64(0, v);
    return f32(bits.getFloat64(0));
  }
  return f32(s);
}

/**
 * `torch.linspace` on the CPU (AVX2 build), value for value. torch's kernel writes whole SIMD
 * vectors with `arange(base, step)` (lane i = base + i·step), where the base comes from the front
 * half's formula `start + step·idx` or the back half's `end − step·(steps − idx − 1)` depending
 * only on where the vector starts; leftover elements use the per-element formula. Products are
 * FMA-contracted. Verified bit-exact against the float64 betas of the reference.
 */
export function torchLinspace(start: number, end: number, steps: number, dtype: 'f32' | 'f64'): number[] {
  const r: Rounding = dtype === 'f32' ? f32 : id;
  const fma = dtype === 'f32' ? fma32 : fma64;
  if (steps === 1) return [r(start)];
  const s = r(start);
  const e = r(end);
  const step = r(r(e - s) / (steps - 1));
  const half = Math.floor(steps / 2);
  const scalarAt = (i: number): number => (i < half ? fma(step, i, s) : fma(-step, steps - i - 1, e));
  const width = dtype === 'f32' ? 8 : 4;
  const vecEnd = Math.floor(steps / (2 * width)) * 2 * width;
  const out: number[] = new Array<number>(steps);
  for (let base = 0; base < vecEnd; base += width) {
    const b = scalarAt(base);
    for (let lane = 0; lane < width; lane++) out[base + lane] = fma(lane, step, b);
  }
  for (let i = vecEnd; i < steps; i++) out[i] = scalarAt(i);
  return out;
}

/** SD's "scaled linear" betas: linear in √β from 0.00085 to 0.012 (float64 linspace, squared). */
export function scaledLinearBetas(timesteps = 1000, linearStart = 0.00085, linearEnd = 0.012): Float64Array {
  const roots = torchLinspace(Math.sqrt(linearStart), Math.sqrt(linearEnd), timesteps, 'f64');
  return Float64Array.from(roots, (v) => v * v);
}

/** ∏(1 − β) in float64, accumulated left to right as numpy / torch `cumprod` do. */
export function alphasCumprod(betas: ArrayLike<number>): Float64Array {
  const out = new Float64Array(betas.length);
  let acc = 1;
  for (let i = 0; i < betas.length; i++) {
    acc *= 1 - betas[i];
    out[i] = acc;
  }
  return out;
}

/**
 * The model's σ table, ascending (σ[0] = σ_min): √((1 − ᾱ)/ᾱ). `kdiffusion` rounds ᾱ to float32
 * first and does every step in float32, `comfy` does it in float64 and casts the result,
 * `kdiffusion-f64` stays in float64.
 */
export function sigmaTable(flavor: TableFlavor, acp: ArrayLike<number> = alphasCumprod(scaledLinearBetas())): Float64Array {
  const out = new Float64Array(acp.length);
  for (let i = 0; i < acp.length; i++) {
    if (flavor === 'kdiffusion') {
      const a = f32(acp[i]);
      out[i] = f32(Math.sqrt(f32(f32(1 - a) / a)));
    } else {
      const s = Math.sqrt((1 - acp[i]) / acp[i]);
      out[i] = flavor === 'comfy' ? f32(s) : s;
    }
  }
  return out;
}

/** The discrete schedule a denoiser wrapper holds: the σ table and the σ ⇄ timestep maps. */
export class DiscreteSchedule {
  readonly flavor: TableFlavor;
  /** Ascending σ table, one entry per training timestep. */
  readonly sigmas: Float64Array;
  /** ln σ, rounded as the original stores it (float32 for both float32 flavours). */
  readonly logSigmas: Float64Array;
  /** Rounding of the original's tensor arithmetic for this table. */
  readonly round: Rounding;

  constructor(flavor: TableFlavor, sigmas?: Float64Array) {
    this.flavor = flavor;
    this.sigmas = sigmas ?? sigmaTable(flavor);
    this.round = flavor === 'kdiffusion-f64' ? id : f32;
    // ComfyUI takes the log of the float64 σ before casting; k-diffusion of its float32 σ.
    const raw = flavor === 'comfy' ? sigmaTable('kdiffusion-f64') : this.sigmas;
    this.logSigmas = Float64Array.from(raw, (s) => this.round(Math.log(s)));
  }

  get sigmaMin(): number {
    return this.sigmas[0];
  }

  get sigmaMax(): number {
    return this.sigmas[this.sigmas.length - 1];
  }

  get length(): number {
    return this.sigmas.length;
  }

  /**
   * σ at a (fractional) timestep: exp of the linear interpolation of ln σ between the neighbouring
   * table entries. Both originals cast t to float32 first, even in a float64 run.
   */
  tToSigma(t: number): number {
    const r = this.round;
    const tc = f32(Math.min(Math.max(f32(t), 0), this.sigmas.length - 1));
    const lo = Math.floor(tc);
    const hi = Math.ceil(tc);
    const w = f32(tc - lo);
    const logSigma = r(r(f32(1 - w) * this.logSigmas[lo]) + r(w * this.logSigmas[hi]));
    return r(Math.exp(logSigma));
  }

  /** Nearest table index in ln σ (ComfyUI's `timestep`, k-diffusion's `quantize=True`); ties go low. */
  sigmaToTQuantized(sigma: number): number {
    const ls = this.round(Math.log(sigma));
    let best = 0;
    let bestDist = Infinity;
    for (let i = 0; i < this.logSigmas.length; i++) {
      const d = Math.abs(this.round(ls - this.logSigmas[i]));
      if (d < bestDist) {
        bestDist = d;
        best = i;
      }
    }
    return best;
  }

  /**
   * k-diffusion's fractional `sigma_to_t`: the last table entry at or below ln σ, then linear
   * interpolation in ln σ, clamped to [0, T − 1].
   */
  sigmaToT(sigma: number): number {
    const r = this.round;
    const ls = r(Math.log(sigma));
    const n = this.logSigmas.length;
    let lowIdx = 0;
    for (let i = 0; i < n; i++) if (r(ls - this.logSigmas[i]) >= 0) lowIdx = i;
    lowIdx = Math.min(lowIdx, n - 2);
    const low = this.logSigmas[lowIdx];
    const high = this.logSigmas[lowIdx + 1];
    const w = Math.min(Math.max(r(r(low - ls) / r(low - high)), 0), 1);
    return r(r(r(1 - w) * lowIdx) + r(w * (lowIdx + 1)));
  }

  /** ComfyUI's `percent_to_sigma`: the σ at `(1 − percent)·999`, with its 0 / 1 special cases. */
  percentToSigma(percent: number): number {
    if (percent <= 0) return 999999999.9;
    if (percent >= 1) return 0;
    return this.tToSigma((1 - percent) * 999);
  }
}

const cache = new Map<TableFlavor, DiscreteSchedule>();

/** The shared SD1/SD2 schedule of a flavour (built once: the table never changes). */
export function sdSchedule(flavor: TableFlavor): DiscreteSchedule {
  let s = cache.get(flavor);
  if (!s) {
    s = new DiscreteSchedule(flavor);
    cache.set(flavor, s);
  }
  return s;
}
