// SA-Solver (Xue et al. 2023): stochastic Adams predictor-corrector in half-logSNR time, as
// ComfyUI's `sample_sa_solver` / `k_diffusion/sa_solver.py` (data prediction, ε/v models: α = 1).
import type { Denoiser, NoiseSource, SamplerOptions } from './types.js';
import { lin, needNoise, opt, solve, toArray } from './samplers-util.js';

/** ComfyUI `percent_to_sigma(0.2)` / `(0.8)` on the SD scaled-linear table (SD1, SD2, SDXL). */
export const SA_SOLVER_DEFAULT_TAU_INTERVAL: [number, number] = [5.092408180236816, 0.5711888670921326];

function logFactorial(k: number): number {
  let s = 0;
  for (let i = 2; i <= k; i++) s += Math.log(i);
  return s;
}

/**
 * (1+τ²)·∫ₛᵗ e^{(1+τ²)(u−t)} uᵖ du for p < order, by the integration-by-parts recursion of the
 * original (a lower-triangular matrix applied to the boundary terms).
 */
function exponentialCoeffs(s: number, t: number, order: number, tau: number): number[] {
  const tauMul = 1 + tau * tau;
  const h = t - s;
  const boundary: number[] = [];
  for (let p = 0; p < order; p++) boundary.push(t ** p - s ** p * Math.exp(-tauMul * h));
  const out: number[] = [];
  for (let i = 0; i < order; i++) {
    let acc = 0;
    for (let j = 0; j <= i; j++) {
      let logC = logFactorial(i) - logFactorial(j);
      if (tau > 0) logC -= (i - j) * Math.log(tauMul);
      acc += ((i - j) % 2 === 0 ? 1 : -1) * Math.exp(logC) * boundary[j];
    }
    out.push(acc);
  }
  return out;
}

/** b coefficients of eqs. 15/18: integrals of the Lagrange basis on `lambdas`, scaled by α_t. */
function adamsCoeffs(sigmaNext: number, lambdas: number[], lambdaS: number, lambdaT: number, tau: number, simpleOrder2: boolean, corrector: boolean): number[] {
  const alphaT = sigmaNext * Math.exp(lambdaT);
  const n = lambdas.length;
  if (simpleOrder2 && n === 2) {
    const tauMul = 1 + tau * tau;
    const h = lambdaT - lambdaS;
    const full = alphaT * -Math.expm1(-h * tauMul);
    if (corrector) {
      const b1 = alphaT * (0.5 * tauMul * h);
      return [full - b1, b1];
    }
    const b2 = (alphaT * (0.5 * tauMul * h * h)) / (lambdas[n - 2] - lambdaS);
    return [b2, full - b2];
  }
  const e = exponentialCoeffs(lambdaS, lambdaT, n, tau);
  // Vandermonde transpose: row k holds λ_j^k.
  const vt: number[][] = [];
  for (let k = 0; k < n; k++) vt.push(lambdas.map((l) => l ** k));
  return solve(vt, e).map((v) => alphaT * v);
}

function combine(preds: Float64Array[], coeffs: number[]): Float64Array {
  return lin(...preds.map((p, k): [number, Float64Array] => [coeffs[k], p]));
}

async function saSolver(model: Denoiser, x: Float64Array, sigmas: number[], o: SamplerOptions | undefined, noise: NoiseSource | undefined, usePece: boolean): Promise<Float64Array> {
  const n = sigmas.length - 1;
  if (n < 1) return x;
  const sNoise = opt(o, 'sNoise', 1);
  const eta = opt(o, 'eta', 1);
  const predictorOrder = opt(o, 'predictorOrder', 3);
  const correctorOrder = opt(o, 'correctorOrder', 4);
  const simple2 = opt(o, 'simpleOrder2', false);
  const [startSigma, endSigma] = opt(o, 'saTauInterval', SA_SOLVER_DEFAULT_TAU_INTERVAL);
  const tauOf = (s: number): number => (eta <= 0 ? 0 : startSigma >= s && s >= endSigma ? eta : 0);
  const lambdas = sigmas.map((s) => -Math.log(s));
  const maxUsed = Math.max(predictorOrder, correctorOrder);
  const lowerToEnd = sigmas[n] === 0;

  let xPred = x;
  let h = 0;
  let tau = 0;
  let lastNoise: Float64Array | undefined;
  let preds: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    let denoised = await model(xPred, sigmas[i]);
    o?.callback?.(i, n, xPred, denoised);
    preds.push(denoised);
    preds = preds.slice(-maxUsed);

    let pUsed = Math.min(predictorOrder, preds.length);
    let cUsed = i === 0 || (sigmas[i + 1] === 0 && !usePece) ? 0 : Math.min(correctorOrder, preds.length);
    if (lowerToEnd) {
      pUsed = Math.min(pUsed, sigmas.length - 2 - i);
      cUsed = Math.min(cUsed, sigmas.length - 1 - i);
    }

    if (cUsed === 0) {
      x = xPred;
    } else {
      const b = adamsCoeffs(sigmas[i], lambdas.slice(i - cUsed + 1, i + 1), lambdas[i - 1], lambdas[i], tau, simple2, true);
      const corr = combine(preds.slice(-cUsed), b);
      x = lin([(sigmas[i] / sigmas[i - 1]) * Math.exp(-(tau * tau) * h), x], [1, corr]);
      if (tau > 0 && sNoise > 0 && lastNoise) x = lin([1, x], [1, lastNoise]);
      if (usePece) {
        denoised = await model(x, sigmas[i]);
        preds[preds.length - 1] = denoised;
      }
    }

    if (sigmas[i + 1] === 0) {
      xPred = denoised;
    } else {
      tau = tauOf(sigmas[i + 1]);
      const b = adamsCoeffs(sigmas[i + 1], lambdas.slice(i - pUsed + 1, i + 1), lambdas[i], lambdas[i + 1], tau, simple2, false);
      const pred = combine(preds.slice(-pUsed), b);
      h = lambdas[i + 1] - lambdas[i];
      xPred = lin([(sigmas[i + 1] / sigmas[i]) * Math.exp(-(tau * tau) * h), x], [1, pred]);
      if (tau > 0 && sNoise > 0) {
        const amp = sigmas[i + 1] * Math.sqrt(-Math.expm1(-2 * tau * tau * h)) * sNoise;
        lastNoise = lin([amp, needNoise(noise, 'sa_solver')(sigmas[i], sigmas[i + 1])]);
        xPred = lin([1, xPred], [1, lastNoise]);
      }
    }
  }
  return xPred;
}

export async function sampleSaSolver(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  return saSolver(model, x, toArray(sigmas), o, noise, false);
}

/** Predict–evaluate–correct–evaluate: one extra model call per corrected step. */
export async function sampleSaSolverPece(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  return saSolver(model, x, toArray(sigmas), o, noise, true);
}
