// Sigma schedules: each a pure function returning the descending σ list that samplers walk, ending
// with the 0 that k-diffusion appends. The arithmetic follows the dtype each original computes in
// (float32 tensors by default, with float64 Python scalars cast on use), so the last digits match
// the tool a profile reproduces.
import { DiscreteSchedule, sdSchedule, torchLinspace, type Rounding } from './discrete.js';

const f32 = Math.fround;
const id = (x: number): number => x;

/** Tensor dtype a k-diffusion schedule function runs in (its default dtype). */
export type ScheduleDtype = 'f32' | 'f64';

function rounding(dtype: ScheduleDtype): Rounding {
  return dtype === 'f32' ? f32 : id;
}

function checkSteps(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`steps must be a positive integer, got ${n}`);
}

// ---------------------------------------------------------------- k-diffusion schedule functions

/** Karras et al. (2022): σ evenly spaced in σ^(1/ρ). */
export function karrasSigmas(n: number, sigmaMin: number, sigmaMax: number, rho = 7, dtype: ScheduleDtype = 'f32'): number[] {
  checkSteps(n);
  const r = rounding(dtype);
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  const span = r(minInv - maxInv);
  const ramp = torchLinspace(0, 1, n, dtype);
  return [...ramp.map((t) => r(r(r(maxInv) + r(t * span)) ** rho)), 0];
}

/** σ evenly spaced in log σ. */
export function exponentialSigmas(n: number, sigmaMin: number, sigmaMax: number, dtype: ScheduleDtype = 'f32'): number[] {
  checkSteps(n);
  const r = rounding(dtype);
  return [...torchLinspace(Math.log(sigmaMax), Math.log(sigmaMin), n, dtype).map((v) => r(Math.exp(v))), 0];
}

/** Polynomial in log σ (ρ = 1 is {@link exponentialSigmas} up to rounding). */
export function polyexponentialSigmas(n: number, sigmaMin: number, sigmaMax: number, rho = 1, dtype: ScheduleDtype = 'f32'): number[] {
  checkSteps(n);
  const r = rounding(dtype);
  const logMin = Math.log(sigmaMin);
  const span = r(Math.log(sigmaMax) - logMin);
  const ramp = torchLinspace(1, 0, n, dtype).map((t) => (rho === 1 ? t : rho === 2 ? r(t * t) : r(t ** rho)));
  return [...ramp.map((t) => r(Math.exp(r(r(t * span) + r(logMin))))), 0];
}

/** Continuous VP-SDE schedule (Song et al.); has no σ_min/σ_max parameters. */
export function vpSigmas(n: number, betaD = 19.9, betaMin = 0.1, epsS = 1e-3, dtype: ScheduleDtype = 'f32'): number[] {
  checkSteps(n);
  const r = rounding(dtype);
  const t = torchLinspace(1, epsS, n, dtype);
  return [...t.map((v) => {
    const expo = r(r(r(r(betaD) * r(v * v)) / 2) + r(r(betaMin) * v));
    return r(Math.sqrt(r(r(Math.exp(expo)) - 1)));
  }), 0];
}

/** k-diffusion `DiscreteSchedule.get_sigmas` (A1111's "Uniform"): t = linspace(T−1, 0, n), σ(t). */
export function discreteUniformSigmas(schedule: DiscreteSchedule, n: number): number[] {
  checkSteps(n);
  const dtype: ScheduleDtype = schedule.flavor === 'kdiffusion-f64' ? 'f64' : 'f32';
  const t = torchLinspace(schedule.length - 1, 0, n, dtype);
  return [...t.map((v) => schedule.tToSigma(v)), 0];
}

// ---------------------------------------------------------------- ComfyUI scheduler handlers

/** ComfyUI `normal_scheduler` (and `sgm_uniform` with `sgm`): uniform in (integer-rounded) timesteps. */
export function comfyNormalSigmas(ms: DiscreteSchedule, n: number, sgm = false): number[] {
  checkSteps(n);
  const start = ms.sigmaToTQuantized(ms.sigmaMax);
  const end = ms.sigmaToTQuantized(ms.sigmaMin);
  let appendZero = true;
  let ts: number[];
  if (sgm) {
    ts = torchLinspace(start, end, n + 1, 'f32').slice(0, -1);
  } else {
    let steps = n;
    // Tables that reach σ = 0 (zero-terminal-SNR) end on it instead of appending it.
    if (Math.abs(ms.tToSigma(end)) <= 1e-5) {
      steps += 1;
      appendZero = false;
    }
    ts = torchLinspace(start, end, steps, 'f32');
  }
  const sigmas = ts.map((t) => ms.tToSigma(t));
  return appendZero ? [...sigmas, 0] : sigmas;
}

/** ComfyUI `simple_scheduler`: every (T/n)-th table entry from the top. */
export function simpleSigmas(ms: DiscreteSchedule, n: number): number[] {
  checkSteps(n);
  const T = ms.length;
  const ss = T / n;
  const out: number[] = [];
  for (let x = 0; x < n; x++) out.push(ms.sigmas[T - 1 - Math.trunc(x * ss)]);
  return [...out, 0];
}

/** ComfyUI `ddim_scheduler` (A1111 "DDIM" likewise): entries 1, 1+⌊T/n⌋, … reversed — can exceed n steps. */
export function ddimUniformSigmas(ms: DiscreteSchedule, n: number): number[] {
  checkSteps(n);
  let steps = n;
  let tail = [0];
  if (Math.abs(ms.sigmas[1]) <= 1e-5) {
    steps += 1;
    tail = [];
  }
  const ss = Math.max(Math.floor(ms.length / steps), 1);
  const picked: number[] = [];
  for (let x = 1; x < ms.length; x += ss) picked.push(ms.sigmas[x]);
  return [...picked.reverse(), ...tail];
}

/** ComfyUI `beta_scheduler` (Lee et al. 2024): timesteps at Beta(α, β) quantiles, duplicates dropped. */
export function betaSigmas(ms: DiscreteSchedule, n: number, alpha = 0.6, beta = 0.6): number[] {
  checkSteps(n);
  const total = ms.length - 1;
  const out: number[] = [];
  let last = -1;
  for (let i = 0; i < n; i++) {
    const t = roundHalfEven(betaPpf(1 - i * (1 / n), alpha, beta) * total);
    if (t !== last) out.push(ms.sigmas[t]);
    last = t;
  }
  return [...out, 0];
}

/** ComfyUI `linear_quadratic_schedule` (from Mochi), scaled by σ_max. */
export function linearQuadraticSigmas(ms: DiscreteSchedule, n: number, thresholdNoise = 0.025, linearSteps?: number): number[] {
  checkSteps(n);
  let schedule: number[];
  if (n === 1) {
    schedule = [1, 0];
  } else {
    const lin = linearSteps ?? Math.floor(n / 2);
    const linear = Array.from({ length: lin }, (_, i) => (i * thresholdNoise) / lin);
    const stepDiff = lin - thresholdNoise * n;
    const quadSteps = n - lin;
    const quadCoef = stepDiff / (lin * quadSteps ** 2);
    const linCoef = thresholdNoise / lin - (2 * stepDiff) / quadSteps ** 2;
    const konst = quadCoef * lin ** 2;
    const quad: number[] = [];
    for (let i = lin; i < n; i++) quad.push(quadCoef * i ** 2 + linCoef * i + konst);
    schedule = [...linear, ...quad, 1].map((x) => 1 - x);
  }
  const smax = f32(ms.sigmaMax);
  return schedule.map((x) => f32(f32(x) * smax));
}

/** ComfyUI `kl_optimal_scheduler` (Sabour et al.): uniform in arctan σ. Needs n ≥ 2 (ComfyUI yields NaN at 1). */
export function klOptimalSigmas(n: number, sigmaMin: number, sigmaMax: number): number[] {
  checkSteps(n);
  if (n < 2) throw new Error('kl_optimal needs at least 2 steps (it divides by steps − 1; ComfyUI returns NaN)');
  const aMin = f32(Math.atan(sigmaMin));
  const aMax = f32(Math.atan(sigmaMax));
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const w = f32(i / (n - 1));
    out.push(f32(Math.tan(f32(f32(w * aMin) + f32(f32(1 - w) * aMax)))));
  }
  return [...out, 0];
}

// ---------------------------------------------------------------- Align Your Steps

/** NVIDIA's published 10-step Align Your Steps σ lists, as ComfyUI ships them. */
export const AYS_NOISE_LEVELS = {
  SD1: [14.6146412293, 6.4745760956, 3.8636745985, 2.694615152, 1.8841921177, 1.3943805092, 0.9642583904, 0.6523686016, 0.3977456272, 0.1515232662, 0.0291671582],
  SDXL: [14.6146412293, 6.3184485287, 3.7681790315, 2.1811480769, 1.3405244945, 0.8620721141, 0.5550693289, 0.3798540708, 0.2332364134, 0.1114188177, 0.0291671582],
  SVD: [700.0, 54.5, 15.886, 7.977, 4.248, 1.789, 0.981, 0.403, 0.173, 0.034, 0.002],
} as const;

/** The rounded lists A1111's `get_align_your_steps_sigmas` uses instead. */
export const AYS_A1111_LEVELS = {
  SD1: [14.615, 6.475, 3.861, 2.697, 1.886, 1.396, 0.963, 0.652, 0.399, 0.152, 0.029],
  SDXL: [14.615, 6.315, 3.771, 2.181, 1.342, 0.862, 0.555, 0.38, 0.234, 0.113, 0.029],
} as const;

/** numpy `linspace(0, 1, num)` (endpoint included). */
function npLinspace01(num: number): number[] {
  if (num === 1) return [0];
  const step = 1 / (num - 1);
  const out = Array.from({ length: num }, (_, i) => i * step);
  out[num - 1] = 1;
  return out;
}

/** Resample a descending σ list to `num` points, linearly in log σ over a uniform grid (AYS recipe). */
export function loglinearInterp(sigmas: readonly number[], num: number): number[] {
  const ys = [...sigmas].reverse().map(Math.log);
  const xs = npLinspace01(ys.length);
  const out = npLinspace01(num).map((x) => Math.exp(npInterp(x, xs, ys)));
  return out.reverse();
}

/** numpy `interp` for ascending xs. */
function npInterp(x: number, xs: number[], ys: number[]): number {
  if (x <= xs[0]) return ys[0];
  const last = xs.length - 1;
  if (x >= xs[last]) return ys[last];
  let j = 0;
  while (xs[j + 1] <= x) j++;
  if (xs[j] === x) return ys[j];
  const slope = (ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]);
  return slope * (x - xs[j]) + ys[j];
}

/** ComfyUI `AlignYourStepsScheduler`: the published list, log-linearly resampled to n + 1 points, last set to 0. */
export function alignYourStepsSigmas(n: number, modelType: keyof typeof AYS_NOISE_LEVELS = 'SD1', denoise = 1): number[] {
  checkSteps(n);
  if (denoise <= 0) return [];
  const total = denoise < 1 ? pyRound(n * denoise) : n;
  let sigmas: number[] = [...AYS_NOISE_LEVELS[modelType]];
  if (n + 1 !== sigmas.length) sigmas = loglinearInterp(sigmas, n + 1);
  sigmas = sigmas.slice(-(total + 1));
  sigmas[sigmas.length - 1] = 0;
  return sigmas.map(f32);
}

/**
 * A1111's Align Your Steps: its rounded list, resampled to n points (not n + 1), then 0 appended;
 * with n = 11 the list is used as is.
 */
export function alignYourStepsA1111Sigmas(n: number, sdxl = false): number[] {
  checkSteps(n);
  const base: number[] = [...AYS_A1111_LEVELS[sdxl ? 'SDXL' : 'SD1']];
  const sigmas = n !== base.length ? loglinearInterp(base, n) : base;
  return [...sigmas, 0].map(f32);
}

// ---------------------------------------------------------------- A1111 variants that differ

/** A1111 `sgm_uniform` / `normal`: like ComfyUI's but with k-diffusion's fractional `sigma_to_t`. */
export function a1111NormalSigmas(ms: DiscreteSchedule, n: number, sgm = false): number[] {
  checkSteps(n);
  const start = ms.sigmaToT(ms.sigmaMax);
  const end = ms.sigmaToT(ms.sigmaMin);
  const ts = sgm ? torchLinspace(start, end, n + 1, 'f32').slice(0, -1) : torchLinspace(start, end, n, 'f32');
  return [...ts.map((t) => ms.tToSigma(t)), 0];
}

/** A1111 `kl_optimal`: n + 1 points from σ_max down to σ_min itself — no appended 0. */
export function a1111KlOptimalSigmas(n: number, sigmaMin: number, sigmaMax: number): number[] {
  checkSteps(n);
  const aMin = f32(Math.atan(f32(sigmaMin)));
  const aMax = f32(Math.atan(f32(sigmaMax)));
  const out: number[] = [];
  for (let i = 0; i <= n; i++) {
    const w = f32(i / n);
    out.push(f32(Math.tan(f32(f32(w * aMin) + f32(f32(1 - w) * aMax)))));
  }
  return out;
}

/** A1111 `beta`: σ_min + ppf·(σ_max − σ_min) on an endpoint-inclusive grid (opts alpha = beta = 0.6). */
export function a1111BetaSigmas(n: number, sigmaMin: number, sigmaMax: number, alpha = 0.6, beta = 0.6): number[] {
  checkSteps(n);
  const grid = npLinspace01(n).map((x) => 1 - x);
  return [...grid.map((q) => f32(sigmaMin + betaPpf(q, alpha, beta) * (sigmaMax - sigmaMin))), 0];
}

// ---------------------------------------------------------------- penultimate-sigma rules

/** ComfyUI's KSampler node computes n + 1 sigmas and drops the penultimate for these samplers. */
export const COMFY_DISCARD_PENULTIMATE: ReadonlySet<string> = new Set(['dpm_2', 'dpm_2_ancestral', 'uni_pc', 'uni_pc_bh2']);
/** A1111's `discard_next_to_last_sigma` samplers (DPM2, DPM2 a, DPM++ 3M SDE). */
export const A1111_DISCARD_PENULTIMATE: ReadonlySet<string> = new Set(['dpm_2', 'dpm_2_ancestral', 'dpmpp_3m_sde']);

/** Drops σ[len − 2] (the list must end in its final σ, usually 0). */
export function dropPenultimate(sigmas: readonly number[]): number[] {
  if (sigmas.length < 2) return [...sigmas];
  return [...sigmas.slice(0, -2), sigmas[sigmas.length - 1]];
}

/** Whether a sampler (ComfyUI id) gets n + 1 sigmas minus the penultimate under a profile. */
export function discardsPenultimate(profile: 'a1111' | 'comfy', sampler: string, alwaysDiscard = false): boolean {
  if (profile === 'a1111' && alwaysDiscard) return true;
  return (profile === 'a1111' ? A1111_DISCARD_PENULTIMATE : COMFY_DISCARD_PENULTIMATE).has(sampler);
}

// ---------------------------------------------------------------- dispatch by name

/** ComfyUI's `SCHEDULER_NAMES`, in its order. */
export const COMFY_SCHEDULERS = ['normal', 'karras', 'exponential', 'sgm_uniform', 'simple', 'ddim_uniform', 'beta', 'linear_quadratic', 'kl_optimal'] as const;
/** Every scheduler id this module knows: ComfyUI's plus k-diffusion's and Align Your Steps. */
export const SCHEDULER_IDS = [...COMFY_SCHEDULERS, 'polyexponential', 'vp', 'align_your_steps'] as const;
export type SchedulerId = (typeof SCHEDULER_IDS)[number];

/** ComfyUI `calculate_sigmas(model_sampling, name, n)` over its float32 table (or any table given). */
export function comfySigmas(name: string, n: number, ms: DiscreteSchedule = sdSchedule('comfy')): number[] {
  switch (name) {
    case 'normal': return comfyNormalSigmas(ms, n);
    case 'sgm_uniform': return comfyNormalSigmas(ms, n, true);
    case 'karras': return karrasSigmas(n, ms.sigmaMin, ms.sigmaMax);
    case 'exponential': return exponentialSigmas(n, ms.sigmaMin, ms.sigmaMax);
    case 'simple': return simpleSigmas(ms, n);
    case 'ddim_uniform': return ddimUniformSigmas(ms, n);
    case 'beta': return betaSigmas(ms, n);
    case 'linear_quadratic': return linearQuadraticSigmas(ms, n);
    case 'kl_optimal': return klOptimalSigmas(n, ms.sigmaMin, ms.sigmaMax);
    case 'polyexponential': return polyexponentialSigmas(n, ms.sigmaMin, ms.sigmaMax);
    case 'vp': return vpSigmas(n);
    case 'align_your_steps': return alignYourStepsSigmas(n);
    default: throw unknownScheduler(name);
  }
}

/** A1111 v1.10 `KDiffusionSampler.get_sigmas` schedule functions over k-diffusion's float32 table. */
export function a1111Sigmas(name: string, n: number, ms: DiscreteSchedule = sdSchedule('kdiffusion'), sdxl = false): number[] {
  switch (name) {
    case 'normal': return discreteUniformSigmas(ms, n);
    case 'sgm_uniform': return a1111NormalSigmas(ms, n, true);
    case 'karras': return karrasSigmas(n, ms.sigmaMin, ms.sigmaMax);
    case 'exponential': return exponentialSigmas(n, ms.sigmaMin, ms.sigmaMax);
    case 'polyexponential': return polyexponentialSigmas(n, ms.sigmaMin, ms.sigmaMax);
    case 'simple': return simpleSigmas(ms, n);
    case 'ddim_uniform': return ddimUniformSigmas(ms, n);
    case 'beta': return a1111BetaSigmas(n, ms.sigmaMin, ms.sigmaMax);
    case 'kl_optimal': return a1111KlOptimalSigmas(n, ms.sigmaMin, ms.sigmaMax);
    case 'align_your_steps': return alignYourStepsA1111Sigmas(n, sdxl);
    case 'linear_quadratic': return linearQuadraticSigmas(ms, n);
    case 'vp': return vpSigmas(n);
    default: throw unknownScheduler(name);
  }
}

function unknownScheduler(name: string): Error {
  return new Error(`unknown scheduler "${name}"; known: ${SCHEDULER_IDS.join(', ')}`);
}

/**
 * The σ list a sampler walks under a profile: the scheduler for `steps` steps, computed with one
 * extra step and the penultimate σ dropped where that profile's rule says so.
 */
export function sigmasFor(profile: 'a1111' | 'comfy', sampler: string, scheduler: string, steps: number, opts: { alwaysDiscard?: boolean; sdxl?: boolean } = {}): number[] {
  const discard = discardsPenultimate(profile, sampler, opts.alwaysDiscard);
  const n = discard ? steps + 1 : steps;
  const sigmas = profile === 'a1111' ? a1111Sigmas(scheduler, n, undefined, opts.sdxl) : comfySigmas(scheduler, n);
  return discard ? dropPenultimate(sigmas) : sigmas;
}

// ---------------------------------------------------------------- small numeric helpers

/** Python 3 `round` (half to even), which numpy `rint` shares. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function pyRound(x: number): number {
  return roundHalfEven(x);
}

/** ln Γ by the Lanczos approximation (g = 7, 9 terms), ample for the beta quantiles here. */
function lnGamma(z: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (z < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * z)) - lnGamma(1 - z);
  const x = z - 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** Continued fraction of the regularized incomplete beta (modified Lentz). */
function betaContinuedFraction(x: number, a: number, b: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  d = 1 / (Math.abs(d) < tiny ? tiny : d);
  let h = d;
  for (let m = 1; m <= 500; m++) {
    const m2 = 2 * m;
    for (const num of [(m * (b - m) * x) / ((a + m2 - 1) * (a + m2)), (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1))]) {
      d = 1 + num * d;
      d = 1 / (Math.abs(d) < tiny ? tiny : d);
      c = 1 + num / c;
      if (Math.abs(c) < tiny) c = tiny;
      h *= d * c;
    }
    if (Math.abs(d * c - 1) < 1e-16) break;
  }
  return h;
}

/** Regularized incomplete beta I_x(a, b). */
export function betaCdf(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return (front * betaContinuedFraction(x, a, b)) / a;
  return 1 - (front * betaContinuedFraction(1 - x, b, a)) / b;
}

/** Beta(a, b) quantile by bisection to the last bit (scipy's `beta.ppf` up to its own rounding). */
export function betaPpf(q: number, a: number, b: number): number {
  if (q <= 0) return 0;
  if (q >= 1) return 1;
  if (a === b && q === 0.5) return 0.5;
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    if (mid === lo || mid === hi) break;
    if (betaCdf(mid, a, b) < q) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}
