// Small element-wise helpers shared by the sampler files. Kept allocation-light: each returns a
// fresh array so callers can hold on to previous states (multistep history) without copying.
import type { Denoiser, GuidedDenoiser, GuidedPrediction, NoiseSource, SamplerOptions } from './types.js';

/** Σ cᵢ·vᵢ over same-length arrays. */
export function lin(...terms: Array<[number, Float64Array]>): Float64Array {
  const n = terms[0][1].length;
  const out = new Float64Array(n);
  for (const [c, v] of terms) {
    if (c === 0) continue;
    for (let k = 0; k < n; k++) out[k] += c * v[k];
  }
  return out;
}

/** x + c·v */
export function axpy(x: Float64Array, c: number, v: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let k = 0; k < x.length; k++) out[k] = x[k] + c * v[k];
  return out;
}

/** (x − denoised)/σ: the Karras ODE derivative, also the ε prediction. */
export function toD(x: Float64Array, sigma: number, denoised: Float64Array): Float64Array {
  const out = new Float64Array(x.length);
  for (let k = 0; k < x.length; k++) out[k] = (x[k] - denoised[k]) / sigma;
  return out;
}

export function sub(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length);
  for (let k = 0; k < a.length; k++) out[k] = a[k] - b[k];
  return out;
}

/** k-diffusion's `get_ancestral_step`: how far to step down deterministically and how much noise to add. */
export function ancestralStep(sigmaFrom: number, sigmaTo: number, eta = 1): { down: number; up: number } {
  if (!eta) return { down: sigmaTo, up: 0 };
  const up = Math.min(sigmaTo, eta * Math.sqrt((sigmaTo ** 2 * (sigmaFrom ** 2 - sigmaTo ** 2)) / sigmaFrom ** 2));
  return { down: Math.sqrt(sigmaTo ** 2 - up ** 2), up };
}

export function needNoise(noise: NoiseSource | undefined, sampler: string): NoiseSource {
  if (!noise) throw new Error(`sampler ${sampler} injects noise: pass a NoiseSource`);
  return noise;
}

/**
 * x + amp·noise(σ, σ_next). The originals ask their noise sampler even where the amplitude is 0
 * (eta 0, the last interval), which advances a seeded stream; so does this when a source is
 * given. Without one, a zero-amplitude draw is skipped instead of being an error.
 */
export function addNoise(
  x: Float64Array, amp: number, noise: NoiseSource | undefined, sampler: string, sigma: number, sigmaNext: number,
): Float64Array {
  if (!noise && amp === 0) return x;
  return axpy(x, amp, needNoise(noise, sampler)(sigma, sigmaNext));
}

export function isGuided(model: Denoiser): model is GuidedDenoiser {
  return typeof (model as Partial<GuidedDenoiser>).withUncond === 'function';
}

/** CFG++ evaluation: a plain denoiser is read as unguided (uncond = denoised). */
export async function evalGuided(model: Denoiser, x: Float64Array, sigma: number): Promise<GuidedPrediction> {
  if (isGuided(model)) return model.withUncond(x, sigma);
  const denoised = await model(x, sigma);
  return { denoised, uncond: denoised };
}

export function toArray(sigmas: ArrayLike<number>): number[] {
  return Array.from(sigmas, Number);
}

export function opt<K extends keyof SamplerOptions>(
  o: SamplerOptions | undefined, key: K, dflt: NonNullable<SamplerOptions[K]>,
): NonNullable<SamplerOptions[K]> {
  const v = o?.[key];
  return (v === undefined || v === null ? dflt : v) as NonNullable<SamplerOptions[K]>;
}

/** Karras churn: γ for step i of a run with `steps` steps (0 outside [s_tmin, s_tmax] or without churn). */
export function churnGamma(o: SamplerOptions | undefined, sigma: number, steps: number): number {
  const sChurn = opt(o, 'sChurn', 0);
  if (!(sChurn > 0)) return 0;
  const tmin = opt(o, 'sTmin', 0);
  const tmax = opt(o, 'sTmax', Infinity);
  return tmin <= sigma && sigma <= tmax ? Math.min(sChurn / steps, Math.SQRT2 - 1) : 0;
}

/** expm1(h)/h with its limit 1 at h = 0. */
export function phi1(h: number): number {
  return h === 0 ? 1 : Math.expm1(h) / h;
}

/** Solve A·x = b (small dense system, partial pivoting). */
export function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row.slice(0, n), b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    for (let r = c + 1; r < n; r++) {
      const f = m[r][c] / m[c][c];
      for (let k = c; k <= n; k++) m[r][k] -= f * m[c][k];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = m[r][n];
    for (let k = r + 1; k < n; k++) s -= m[r][k] * x[k];
    x[r] = s / m[r][r];
  }
  return x;
}
