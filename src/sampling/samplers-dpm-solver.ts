// DPM-Solver (Lu et al. 2022) as k-diffusion's `DPMSolver`: fixed-step "fast" and adaptive
// variants, in t = −log σ with the ε prediction. Both stop at σ_min (the last non-zero σ), not 0.
import type { Denoiser, NoiseSource, SamplerOptions } from './types.js';
import { addNoise, ancestralStep, lin, opt, toArray } from './samplers-util.js';

const sigmaOf = (t: number): number => Math.exp(-t);
const tOf = (sigma: number): number => -Math.log(sigma);

type EpsCache = Map<string, Float64Array>;

class DpmSolver {
  constructor(private readonly model: Denoiser) {}

  async eps(cache: EpsCache, key: string, x: Float64Array, t: number): Promise<Float64Array> {
    const hit = cache.get(key);
    if (hit) return hit;
    const sigma = sigmaOf(t);
    const d = await this.model(x, sigma);
    const e = new Float64Array(x.length);
    for (let k = 0; k < x.length; k++) e[k] = (x[k] - d[k]) / sigma;
    cache.set(key, e);
    return e;
  }

  async step1(x: Float64Array, t: number, tNext: number, cache: EpsCache): Promise<Float64Array> {
    const h = tNext - t;
    const eps = await this.eps(cache, 'eps', x, t);
    return lin([1, x], [-sigmaOf(tNext) * Math.expm1(h), eps]);
  }

  async step2(x: Float64Array, t: number, tNext: number, cache: EpsCache, r1 = 1 / 2): Promise<Float64Array> {
    const h = tNext - t;
    const eps = await this.eps(cache, 'eps', x, t);
    const s1 = t + r1 * h;
    const u1 = lin([1, x], [-sigmaOf(s1) * Math.expm1(r1 * h), eps]);
    const epsR1 = await this.eps(cache, 'eps_r1', u1, s1);
    const a = sigmaOf(tNext) * Math.expm1(h);
    const b = (sigmaOf(tNext) / (2 * r1)) * Math.expm1(h);
    return lin([1, x], [-a + b, eps], [-b, epsR1]);
  }

  async step3(x: Float64Array, t: number, tNext: number, cache: EpsCache, r1 = 1 / 3, r2 = 2 / 3): Promise<Float64Array> {
    const h = tNext - t;
    const eps = await this.eps(cache, 'eps', x, t);
    const s1 = t + r1 * h;
    const s2 = t + r2 * h;
    const u1 = lin([1, x], [-sigmaOf(s1) * Math.expm1(r1 * h), eps]);
    const epsR1 = await this.eps(cache, 'eps_r1', u1, s1);
    const c2 = sigmaOf(s2) * (r2 / r1) * (Math.expm1(r2 * h) / (r2 * h) - 1);
    const u2 = lin([1, x], [-sigmaOf(s2) * Math.expm1(r2 * h) + c2, eps], [-c2, epsR1]);
    const epsR2 = await this.eps(cache, 'eps_r2', u2, s2);
    const a = sigmaOf(tNext) * Math.expm1(h);
    const c3 = (sigmaOf(tNext) / r2) * (Math.expm1(h) / h - 1);
    return lin([1, x], [-a + c3, eps], [-c3, epsR2]);
  }
}

/** torch.linspace's two-sided evaluation (keeps both ends exact). */
function linspace(a: number, b: number, n: number): number[] {
  const step = (b - a) / (n - 1);
  const out: number[] = [];
  for (let k = 0; k < n; k++) out.push(k < n / 2 ? a + step * k : b - step * (n - 1 - k));
  return out;
}

/** ComfyUI's wrapper: σ_max = σ₀, σ_min = the last non-zero σ, n = number of intervals. */
function range(sigmas: number[]): { sigmaMin: number; sigmaMax: number } {
  const last = sigmas[sigmas.length - 1];
  return { sigmaMin: last > 0 ? last : sigmas[sigmas.length - 2], sigmaMax: sigmas[0] };
}

/** DPM-Solver-Fast: ⌊n/3⌋+1 intervals uniform in t, third order except the tail; n model calls. */
export async function sampleDpmFast(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const nfe = sigmas.length - 1;
  if (nfe < 1) return x;
  const { sigmaMin, sigmaMax } = range(sigmas);
  if (!(sigmaMin > 0 && sigmaMax > 0)) throw new Error('dpm_fast: sigma_min and sigma_max must not be 0');
  const eta = opt(o, 'eta', 0);
  const sNoise = opt(o, 'sNoise', 1);
  const tStart = tOf(sigmaMax);
  const tEnd = tOf(sigmaMin);
  const solver = new DpmSolver(model);
  const m = Math.floor(nfe / 3) + 1;
  const ts = linspace(tStart, tEnd, m + 1);
  const orders = nfe % 3 === 0 ? [...Array<number>(m - 2).fill(3), 2, 1] : [...Array<number>(m - 1).fill(3), nfe % 3];
  for (let i = 0; i < orders.length; i++) {
    const cache: EpsCache = new Map();
    const t = ts[i];
    const tNext = ts[i + 1];
    let tNext_ = tNext;
    let su = 0;
    if (eta) {
      const st = ancestralStep(sigmaOf(t), sigmaOf(tNext), eta);
      tNext_ = Math.min(tEnd, tOf(st.down));
      su = Math.sqrt(sigmaOf(tNext) ** 2 - sigmaOf(tNext_) ** 2);
    }
    const eps = await solver.eps(cache, 'eps', x, t);
    o?.callback?.(i, orders.length, x, lin([1, x], [-sigmaOf(t), eps]));
    if (orders[i] === 1) x = await solver.step1(x, t, tNext_, cache);
    else if (orders[i] === 2) x = await solver.step2(x, t, tNext_, cache);
    else x = await solver.step3(x, t, tNext_, cache);
    x = addNoise(x, su * sNoise, noise, 'dpm_fast', sigmaOf(t), sigmaOf(tNext));
  }
  return x;
}

/** k-diffusion's PID step-size controller (integral-only by default). */
class PidController {
  private readonly b1: number;
  private readonly b2: number;
  private readonly b3: number;
  private errs: number[] = [];
  constructor(public h: number, p: number, i: number, d: number, order: number, private readonly acceptSafety: number, private readonly eps = 1e-8) {
    this.b1 = (p + i + d) / order;
    this.b2 = -(p + 2 * d) / order;
    this.b3 = d / order;
  }

  propose(error: number): boolean {
    const inv = 1 / (error + this.eps);
    if (this.errs.length === 0) this.errs = [inv, inv, inv];
    this.errs[0] = inv;
    let factor = this.errs[0] ** this.b1 * this.errs[1] ** this.b2 * this.errs[2] ** this.b3;
    factor = 1 + Math.atan(factor - 1);
    const accept = factor >= this.acceptSafety;
    if (accept) {
      this.errs[2] = this.errs[1];
      this.errs[1] = this.errs[0];
    }
    this.h *= factor;
    return accept;
  }
}

/**
 * DPM-Solver-12/23 with adaptive step size. The number of model calls is not known in advance, so
 * the progress callback reports total = 0; it fires after every attempt, rejected ones included.
 */
export async function sampleDpmAdaptive(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  if (sigmas.length <= 1) return x;
  const { sigmaMin, sigmaMax } = range(sigmas);
  if (!(sigmaMin > 0 && sigmaMax > 0)) throw new Error('dpm_adaptive: sigma_min and sigma_max must not be 0');
  const order = opt(o, 'adaptiveOrder', 3);
  const rtol = opt(o, 'rtol', 0.05);
  const atol = opt(o, 'atol', 0.0078);
  const eta = opt(o, 'eta', 0);
  const sNoise = opt(o, 'sNoise', 1);
  const tStart = tOf(sigmaMax);
  const tEnd = tOf(sigmaMin);
  const forward = tEnd > tStart;
  if (!forward && eta) throw new Error('dpm_adaptive: eta must be 0 for reverse sampling');
  const hInit = Math.abs(opt(o, 'hInit', 0.05)) * (forward ? 1 : -1);
  const pid = new PidController(hInit, opt(o, 'pcoeff', 0), opt(o, 'icoeff', 1), opt(o, 'dcoeff', 0), eta ? 1.5 : order, opt(o, 'acceptSafety', 0.81));
  const solver = new DpmSolver(model);
  let s = tStart;
  let xPrev = x;
  let attempt = 0;
  while (forward ? s < tEnd - 1e-5 : s > tEnd + 1e-5) {
    const cache: EpsCache = new Map();
    const t = forward ? Math.min(tEnd, s + pid.h) : Math.max(tEnd, s + pid.h);
    let t_ = t;
    let su = 0;
    if (eta) {
      const st = ancestralStep(sigmaOf(s), sigmaOf(t), eta);
      t_ = Math.min(tEnd, tOf(st.down));
      su = Math.sqrt(sigmaOf(t) ** 2 - sigmaOf(t_) ** 2);
    }
    const eps = await solver.eps(cache, 'eps', x, s);
    const denoised = lin([1, x], [-sigmaOf(s), eps]);
    let low: Float64Array;
    let high: Float64Array;
    if (order === 2) {
      low = await solver.step1(x, s, t_, cache);
      high = await solver.step2(x, s, t_, cache);
    } else {
      low = await solver.step2(x, s, t_, cache, 1 / 3);
      high = await solver.step3(x, s, t_, cache);
    }
    let sq = 0;
    for (let k = 0; k < x.length; k++) {
      const delta = Math.max(atol, rtol * Math.max(Math.abs(low[k]), Math.abs(xPrev[k])));
      const e = (low[k] - high[k]) / delta;
      sq += e * e;
    }
    const error = Math.sqrt(sq) / Math.sqrt(x.length);
    if (pid.propose(error)) {
      xPrev = low;
      x = addNoise(high, su * sNoise, noise, 'dpm_adaptive', sigmaOf(s), sigmaOf(t));
      s = t;
    }
    o?.callback?.(attempt++, 0, x, denoised);
  }
  return x;
}
