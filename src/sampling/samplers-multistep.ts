// ComfyUI's newer samplers: iPNDM / iPNDM-v / DEIS (zju-pi diff-sampler), RES multistep,
// gradient estimation, ER-SDE and SEEDS. Written for ε/v models, where ComfyUI's α_t = σ·e^λ
// is 1 and the half-logSNR λ is −log σ.
import type { Denoiser, NoiseSource, SamplerOptions } from './types.js';
import {
  addNoise, ancestralStep, axpy, evalGuided, lin, needNoise, opt, phi1, sub, toArray, toD,
} from './samplers-util.js';

/** Keeps the last `size` derivatives, oldest first (the originals' `buffer_model`). */
function pushHistory(buf: Float64Array[], d: Float64Array, size: number): void {
  buf.push(d);
  while (buf.length > size) buf.shift();
}

async function ipndmBody(
  model: Denoiser, x: Float64Array, sigmas: number[], o: SamplerOptions | undefined, variable: boolean,
): Promise<Float64Array> {
  const n = sigmas.length - 1;
  const maxOrder = opt(o, 'order', 4);
  const buf: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const tCur = sigmas[i];
    const tNext = sigmas[i + 1];
    const denoised = await model(x, tCur);
    o?.callback?.(i, n, x, denoised);
    const d = toD(x, tCur, denoised);
    const order = Math.min(maxOrder, i + 1);
    const dt = tNext - tCur;
    const b1 = buf[buf.length - 1];
    const b2 = buf[buf.length - 2];
    const b3 = buf[buf.length - 3];
    let xNext: Float64Array;
    if (tNext === 0) {
      xNext = denoised;
    } else if (order === 1) {
      xNext = axpy(x, dt, d);
    } else if (!variable) {
      if (order === 2) xNext = lin([1, x], [dt * 1.5, d], [-dt * 0.5, b1]);
      else if (order === 3) xNext = lin([1, x], [(dt * 23) / 12, d], [(-dt * 16) / 12, b1], [(dt * 5) / 12, b2]);
      else xNext = lin([1, x], [(dt * 55) / 24, d], [(-dt * 59) / 24, b1], [(dt * 37) / 24, b2], [(-dt * 9) / 24, b3]);
    } else {
      // Variable-step Adams–Bashforth coefficients of iPNDM-v, term for term as in the original.
      const hn = dt;
      const hn1 = tCur - sigmas[i - 1];
      if (order === 2) {
        const c1 = (2 + hn / hn1) / 2;
        const c2 = -(hn / hn1) / 2;
        xNext = lin([1, x], [dt * c1, d], [dt * c2, b1]);
      } else {
        const hn2 = sigmas[i - 1] - sigmas[i - 2];
        const temp1 = (1 - (hn / (3 * (hn + hn1))) * ((hn * (hn + hn1)) / (hn1 * (hn1 + hn2)))) / 2;
        if (order === 3) {
          const c1 = (2 + hn / hn1) / 2 + temp1;
          const c2 = -(hn / hn1) / 2 - (1 + hn1 / hn2) * temp1;
          const c3 = (temp1 * hn1) / hn2;
          xNext = lin([1, x], [dt * c1, d], [dt * c2, b1], [dt * c3, b2]);
        } else {
          const hn3 = sigmas[i - 2] - sigmas[i - 3];
          const temp2 = ((1 - hn / (3 * (hn + hn1))) / 2 + ((1 - hn / (2 * (hn + hn1))) * hn) / (6 * (hn + hn1 + hn2)))
            * ((hn * (hn + hn1) * (hn + hn1 + hn2)) / (hn1 * (hn1 + hn2) * (hn1 + hn2 + hn3)));
          const q = (hn1 * (hn1 + hn2)) / (hn2 * (hn2 + hn3));
          const c1 = (2 + hn / hn1) / 2 + temp1 + temp2;
          const c2 = -(hn / hn1) / 2 - (1 + hn1 / hn2) * temp1 - (1 + hn1 / hn2 + q) * temp2;
          const c3 = (temp1 * hn1) / hn2 + (hn1 / hn2 + q * (1 + hn2 / hn3)) * temp2;
          const c4 = ((-temp2 * q) * hn1) / hn2;
          xNext = lin([1, x], [dt * c1, d], [dt * c2, b1], [dt * c3, b2], [dt * c4, b3]);
        }
      }
    }
    pushHistory(buf, d, maxOrder - 1);
    x = xNext;
  }
  return x;
}

/** Improved PNDM: fixed Adams–Bashforth coefficients on d = ε, warm-started at lower orders. */
export async function sampleIpndm(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions): Promise<Float64Array> {
  return ipndmBody(model, x, toArray(sigmas), o, false);
}

/** iPNDM with variable-step coefficients (uneven σ grids). */
export async function sampleIpndmV(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions): Promise<Float64Array> {
  return ipndmBody(model, x, toArray(sigmas), o, true);
}

/**
 * DEIS "tab" coefficients for the step i → i+1 (diff-sampler's `get_deis_coeff_list`): σ is mapped
 * to VP time with the EDM constants it hard-codes (σ 0.002…80, ε_s 1e-3), and each Lagrange basis
 * polynomial is integrated against the exponential-integrator weight by the same N-point sum.
 */
export function deisCoefficients(sigmas: ArrayLike<number>, i: number, order: number, n = 10000): number[] {
  const epsS = 1e-3;
  const betaD = (2 * (Math.log(0.002 ** 2 + 1) / epsS - Math.log(80 ** 2 + 1))) / (epsS - 1);
  const beta0 = Math.log(80 ** 2 + 1) - 0.5 * betaD;
  const beta1 = betaD + beta0;
  const tOf = (s: number): number => (Math.sqrt(beta0 ** 2 + 2 * betaD * Math.log(s * s + 1)) - beta0) / betaD;
  const tCur = tOf(sigmas[i]);
  const tNext = tOf(sigmas[i + 1]);
  const prev: number[] = [];
  for (let k = 0; k < order; k++) prev.push(tOf(sigmas[i - k]));
  const dtau = (tNext - tCur) / n;
  const step = (tNext - tCur) / (n - 1);
  const coeff = new Array<number>(order).fill(0);
  for (let q = 0; q < n; q++) {
    const tau = q < n / 2 ? tCur + step * q : tNext - step * (n - 1 - q);
    const alpha = Math.exp(-0.5 * tau * tau * (beta1 - beta0) - tau * beta0);
    const dLogAlpha = -(tau * (beta1 - beta0) + beta0);
    const integrand = (-0.5 * dLogAlpha) / Math.sqrt(alpha * (1 - alpha));
    for (let j = 0; j < order; j++) {
      let poly = 1;
      for (let k = 0; k < order; k++) if (k !== j) poly *= (tau - prev[k]) / (prev[j] - prev[k]);
      coeff[j] += integrand * poly;
    }
  }
  return coeff.map((c) => c * dtau);
}

export async function sampleDeis(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const maxOrder = opt(o, 'order', 3);
  const buf: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const tCur = sigmas[i];
    const tNext = sigmas[i + 1];
    const denoised = await model(x, tCur);
    o?.callback?.(i, n, x, denoised);
    const d = toD(x, tCur, denoised);
    let order = Math.min(maxOrder, i + 1);
    if (tNext <= 0) order = 1;
    let xNext: Float64Array;
    if (order === 1) {
      xNext = axpy(x, tNext - tCur, d);
    } else {
      const c = deisCoefficients(sigmas, i, order);
      const terms: Array<[number, Float64Array]> = [[1, x], [c[0], d]];
      for (let k = 1; k < order; k++) terms.push([c[k], buf[buf.length - k]]);
      xNext = lin(...terms);
    }
    pushHistory(buf, d, maxOrder - 1);
    x = xNext;
  }
  return x;
}

/** RES second-order multistep (arXiv 2308.02157), optionally ancestral and/or CFG++. */
async function resMultistep(
  model: Denoiser, x: Float64Array, sigmas: number[], o: SamplerOptions | undefined, noise: NoiseSource | undefined,
  eta: number, cfgPp: boolean,
): Promise<Float64Array> {
  const n = sigmas.length - 1;
  const sNoise = opt(o, 'sNoise', 1);
  let oldDenoised: Float64Array | undefined;
  let oldSigmaDown = 0;
  for (let i = 0; i < n; i++) {
    const { denoised, uncond } = cfgPp ? await evalGuided(model, x, sigmas[i]) : { denoised: await model(x, sigmas[i]), uncond: undefined };
    const { down, up } = ancestralStep(sigmas[i], sigmas[i + 1], eta);
    o?.callback?.(i, n, x, denoised);
    if (down === 0 || !oldDenoised) {
      if (uncond) x = axpy(denoised, down, toD(x, sigmas[i], uncond));
      else x = axpy(x, down - sigmas[i], toD(x, sigmas[i], denoised));
    } else {
      const t = -Math.log(sigmas[i]);
      const tOld = -Math.log(oldSigmaDown);
      const tNext = -Math.log(down);
      const tPrev = -Math.log(sigmas[i - 1]);
      const h = tNext - t;
      const c2 = (tPrev - tOld) / h;
      const p1 = phi1(-h);
      const p2 = (p1 - 1) / -h;
      const b1 = Number.isNaN(p1 - p2 / c2) ? 0 : p1 - p2 / c2;
      const b2 = Number.isNaN(p2 / c2) ? 0 : p2 / c2;
      if (uncond) x = lin([1, x], [1, denoised], [-1, uncond]);
      x = lin([Math.exp(-h), x], [h * b1, uncond ?? denoised], [h * b2, oldDenoised]);
    }
    if (sigmas[i + 1] > 0) x = addNoise(x, sNoise * up, noise, 'res_multistep', sigmas[i], sigmas[i + 1]);
    oldDenoised = uncond ?? denoised;
    oldSigmaDown = down;
  }
  return x;
}

export async function sampleResMultistep(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  return resMultistep(model, x, toArray(sigmas), o, noise, 0, false);
}
export async function sampleResMultistepCfgPp(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  return resMultistep(model, x, toArray(sigmas), o, noise, 0, true);
}
export async function sampleResMultistepAncestral(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  return resMultistep(model, x, toArray(sigmas), o, noise, opt(o, 'eta', 1), false);
}
export async function sampleResMultistepAncestralCfgPp(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  return resMultistep(model, x, toArray(sigmas), o, noise, opt(o, 'eta', 1), true);
}

/** Gradient-estimation sampler (Permenter & Yuan): Euler plus γ−1 times the change in d. */
async function gradientEstimation(model: Denoiser, x: Float64Array, sigmas: number[], o: SamplerOptions | undefined, cfgPp: boolean): Promise<Float64Array> {
  const n = sigmas.length - 1;
  const gamma = opt(o, 'geGamma', 2);
  let oldD: Float64Array | undefined;
  for (let i = 0; i < n; i++) {
    const { denoised, uncond } = cfgPp ? await evalGuided(model, x, sigmas[i]) : { denoised: await model(x, sigmas[i]), uncond: undefined };
    const d = toD(x, sigmas[i], uncond ?? denoised);
    o?.callback?.(i, n, x, denoised);
    const dt = sigmas[i + 1] - sigmas[i];
    if (sigmas[i + 1] === 0) {
      x = denoised;
    } else {
      x = cfgPp ? axpy(denoised, sigmas[i + 1], d) : axpy(x, dt, d);
      if (i >= 1 && oldD) x = axpy(x, (gamma - 1) * dt, sub(d, oldD));
    }
    oldD = d;
  }
  return x;
}

export async function sampleGradientEstimation(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions): Promise<Float64Array> {
  return gradientEstimation(model, x, toArray(sigmas), o, false);
}
export async function sampleGradientEstimationCfgPp(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions): Promise<Float64Array> {
  return gradientEstimation(model, x, toArray(sigmas), o, true);
}

/** ER-SDE-Solver-3 (VP, data prediction) with ComfyUI's default noise scaler x·(e^{x^0.3} + 10). */
export async function sampleErSde(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const sNoise = opt(o, 'sNoise', 1);
  const maxStage = opt(o, 'maxStage', 3);
  const scaler = (v: number): number => v * (Math.exp(v ** 0.3) + 10);
  const points = 200;
  // For ε/v models the ER-SDE "λ" (σ_t/α_t) is σ itself.
  const lam = sigmas;
  let oldDenoised: Float64Array | undefined;
  let oldDenoisedD: Float64Array | undefined;
  for (let i = 0; i < n; i++) {
    const denoised = await model(x, sigmas[i]);
    o?.callback?.(i, n, x, denoised);
    const stage = Math.min(maxStage, i + 1);
    if (sigmas[i + 1] === 0) {
      x = denoised;
    } else {
      const ls = lam[i];
      const lt = lam[i + 1];
      const r = scaler(lt) / scaler(ls);
      x = lin([r, x], [1 - r, denoised]);
      if (stage >= 2 && oldDenoised) {
        const dt = lt - ls;
        const stepSize = -dt / points;
        let s = 0;
        let su = 0;
        for (let k = 0; k < points; k++) {
          const pos = lt + k * stepSize;
          const scaled = scaler(pos);
          s += 1 / scaled;
          su += (pos - ls) / scaled;
        }
        s *= stepSize;
        su *= stepSize;
        const denoisedD = lin([1 / (ls - lam[i - 1]), denoised], [-1 / (ls - lam[i - 1]), oldDenoised]);
        x = axpy(x, dt + s * scaler(lt), denoisedD);
        if (stage >= 3 && oldDenoisedD) {
          const w = (ls - lam[i - 2]) / 2;
          const denoisedU = lin([1 / w, denoisedD], [-1 / w, oldDenoisedD]);
          x = axpy(x, (dt * dt) / 2 + su * scaler(lt), denoisedU);
        }
        oldDenoisedD = denoisedD;
      }
      if (sNoise > 0) {
        const amp = Math.sqrt(lt * lt - ls * ls * r * r);
        x = axpy(x, sNoise * (Number.isNaN(amp) ? 0 : amp), needNoise(noise, 'er_sde')(sigmas[i], sigmas[i + 1]));
      }
    }
    oldDenoised = denoised;
  }
  return x;
}

/** SEEDS-2 (Gonzalez et al. 2023), φ₁ variant: one intermediate point at λ_s + r·h. */
export async function sampleSeeds2(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const eta = opt(o, 'eta', 1);
  const sNoise = opt(o, 'sNoise', 1);
  const r = opt(o, 'r', 0.5);
  const ns = eta > 0 && sNoise > 0 ? needNoise(noise, 'seeds_2') : undefined;
  const fac = 1 / (2 * r);
  for (let i = 0; i < n; i++) {
    const denoised = await model(x, sigmas[i]);
    o?.callback?.(i, n, x, denoised);
    if (sigmas[i + 1] === 0) {
      x = denoised;
      continue;
    }
    const lambdaS = -Math.log(sigmas[i]);
    const lambdaT = -Math.log(sigmas[i + 1]);
    const h = lambdaT - lambdaS;
    const hEta = h * (eta + 1);
    const sigmaS1 = Math.exp(-(lambdaS + r * (lambdaT - lambdaS)));
    let x2 = lin([(sigmaS1 / sigmas[i]) * Math.exp(-r * h * eta), x], [-Math.expm1(-r * hEta), denoised]);
    let sde: Float64Array | undefined;
    if (ns) {
      sde = lin([Math.sqrt(-Math.expm1(-2 * r * h * eta)), ns(sigmas[i], sigmaS1)]);
      x2 = axpy(x2, sigmaS1 * sNoise, sde);
    }
    const denoised2 = await model(x2, sigmaS1);
    const dd = lin([1 - fac, denoised], [fac, denoised2]);
    x = lin([(sigmas[i + 1] / sigmas[i]) * Math.exp(-h * eta), x], [-Math.expm1(-hEta), dd]);
    if (ns && sde) {
      const seg = (r - 1) * h * eta;
      sde = lin([Math.exp(seg), sde], [Math.sqrt(-Math.expm1(2 * seg)), ns(sigmaS1, sigmas[i + 1])]);
      x = axpy(x, sigmas[i + 1] * sNoise, sde);
    }
  }
  return x;
}

/** SEEDS-3: intermediate points at r₁ and r₂ of the λ step, the noise correlated across stages. */
export async function sampleSeeds3(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const eta = opt(o, 'eta', 1);
  const sNoise = opt(o, 'sNoise', 1);
  const r1 = opt(o, 'r1', 1 / 3);
  const r2 = opt(o, 'r2', 2 / 3);
  const ns = eta > 0 && sNoise > 0 ? needNoise(noise, 'seeds_3') : undefined;
  const hPhi2 = (v: number): number => (Math.expm1(v) - v) / v;
  for (let i = 0; i < n; i++) {
    const denoised = await model(x, sigmas[i]);
    o?.callback?.(i, n, x, denoised);
    if (sigmas[i + 1] === 0) {
      x = denoised;
      continue;
    }
    const lambdaS = -Math.log(sigmas[i]);
    const lambdaT = -Math.log(sigmas[i + 1]);
    const h = lambdaT - lambdaS;
    const hEta = h * (eta + 1);
    const sigmaS1 = Math.exp(-(lambdaS + r1 * (lambdaT - lambdaS)));
    const sigmaS2 = Math.exp(-(lambdaS + r2 * (lambdaT - lambdaS)));

    let x2 = lin([(sigmaS1 / sigmas[i]) * Math.exp(-r1 * h * eta), x], [-Math.expm1(-r1 * hEta), denoised]);
    let sde: Float64Array | undefined;
    if (ns) {
      sde = lin([Math.sqrt(-Math.expm1(-2 * r1 * h * eta)), ns(sigmas[i], sigmaS1)]);
      x2 = axpy(x2, sigmaS1 * sNoise, sde);
    }
    const denoised2 = await model(x2, sigmaS1);

    const a32 = (r2 / r1) * hPhi2(-r2 * hEta);
    const a31 = Math.expm1(-r2 * hEta) - a32;
    let x3 = lin([(sigmaS2 / sigmas[i]) * Math.exp(-r2 * h * eta), x], [-a31, denoised], [-a32, denoised2]);
    if (ns && sde) {
      const seg = (r1 - r2) * h * eta;
      sde = lin([Math.exp(seg), sde], [Math.sqrt(-Math.expm1(2 * seg)), ns(sigmaS1, sigmaS2)]);
      x3 = axpy(x3, sigmaS2 * sNoise, sde);
    }
    const denoised3 = await model(x3, sigmaS2);

    const b3 = hPhi2(-hEta) / r2;
    const b1 = Math.expm1(-hEta) - b3;
    x = lin([(sigmas[i + 1] / sigmas[i]) * Math.exp(-h * eta), x], [-b1, denoised], [-b3, denoised3]);
    if (ns && sde) {
      const seg = (r2 - 1) * h * eta;
      sde = lin([Math.exp(seg), sde], [Math.sqrt(-Math.expm1(2 * seg)), ns(sigmaS2, sigmas[i + 1])]);
      x = axpy(x, sigmas[i + 1] * sNoise, sde);
    }
  }
  return x;
}
