// UniPC (Zhao et al. 2023), multistep B(h) variants, as ComfyUI's `extra_samplers/uni_pc.py`
// runs it: on the VP latent x/√(1+σ²) with σ itself as the time variable (its `SigmaConvert`
// schedule), data prediction, order min(3, len(σ) − 2), lower orders at both ends, and the step to
// σ = 0 replaced by a step to σ = 0.001 followed by a division by α(0.001).
import type { Denoiser, SamplerOptions } from './types.js';
import { lin, solve, toArray } from './samplers-util.js';

type Round = (v: number) => number;
const exact: Round = (v) => v;

/** The VP schedule of ComfyUI's `SigmaConvert`, each scalar op rounded by `f` (float32 emulation). */
function schedule(f: Round) {
  const logMeanCoeff = (s: number): number => f(0.5 * f(Math.log(f(1 / f(f(s * s) + 1)))));
  const oneMinus = (lmc: number): number => f(1 - f(Math.exp(f(2 * lmc))));
  return {
    alphaOf: (s: number): number => f(Math.exp(logMeanCoeff(s))),
    stdOf: (s: number): number => f(Math.sqrt(oneMinus(logMeanCoeff(s)))),
    lambdaOf: (s: number): number => {
      const lmc = logMeanCoeff(s);
      return f(lmc - f(0.5 * f(Math.log(oneMinus(lmc)))));
    },
  };
}

async function uniPc(model: Denoiser, noise: Float64Array, sigmasIn: ArrayLike<number>, o: SamplerOptions | undefined, variant: 'bh1' | 'bh2'): Promise<Float64Array> {
  // A copy: ComfyUI writes the 0.001 into the caller's σ tensor in place, which callers here never see.
  const ts = toArray(sigmasIn);
  if (ts.length < 2) return noise;
  const f: Round = o?.float32 ? Math.fround : exact;
  if (ts[ts.length - 1] === 0) ts[ts.length - 1] = f(0.001);
  // In float32 the step to σ = 0.001 is visibly different: 1 + σ² rounds to 1 + 9.5e-7, moving λ by 0.02.
  const { alphaOf, stdOf, lambdaOf } = schedule(f);
  const steps = ts.length - 1;
  const order = Math.min(3, ts.length - 2);

  /** x0 prediction on the VP latent (ε model recovered from the σ-space denoiser). */
  const modelFn = async (xv: Float64Array, s: number): Promise<Float64Array> => {
    const scale = Math.sqrt(s * s + 1);
    const input = lin([scale, xv]);
    const d = await model(input, s);
    const a = alphaOf(s);
    const sd = stdOf(s);
    const out = new Float64Array(xv.length);
    for (let k = 0; k < xv.length; k++) out[k] = (xv[k] - (sd * (input[k] - d[k])) / s) / a;
    return out;
  };

  const update = async (
    x: Float64Array, models: Float64Array[], tPrev: number[], t: number, ord: number, useCorrector: boolean,
  ): Promise<{ x: Float64Array; model?: Float64Array }> => {
    const tPrev0 = tPrev[tPrev.length - 1];
    const lambdaPrev0 = lambdaOf(tPrev0);
    const lambdaT = lambdaOf(t);
    const model0 = models[models.length - 1];
    const sigmaPrev0 = stdOf(tPrev0);
    const sigmaT = stdOf(t);
    const alphaT = alphaOf(t);
    const h = f(lambdaT - lambdaPrev0);
    const rks: number[] = [];
    const d1s: Float64Array[] = [];
    for (let i = 1; i < ord; i++) {
      const rk = f(f(lambdaOf(tPrev[tPrev.length - 1 - i]) - lambdaPrev0) / h);
      rks.push(rk);
      d1s.push(lin([1 / rk, models[models.length - 1 - i]], [-1 / rk, model0]));
    }
    rks.push(1);
    const hh = -h;
    const hPhi1 = f(Math.expm1(hh));
    let hPhiK = f(f(hPhi1 / hh) - 1);
    let factorial = 1;
    const bh = variant === 'bh1' ? hh : f(Math.expm1(hh));
    const R: number[][] = [];
    const b: number[] = [];
    for (let i = 1; i <= ord; i++) {
      R.push(rks.map((r) => f(r ** (i - 1))));
      b.push(f(f(hPhiK * factorial) / bh));
      factorial *= i + 1;
      hPhiK = f(f(hPhiK / hh) - f(1 / factorial));
    }
    const ab = f(alphaT * bh);
    const xt_ = lin([f(sigmaT / sigmaPrev0), x], [-f(alphaT * hPhi1), model0]);
    let xt = xt_;
    if (d1s.length > 0) {
      const rhosP = ord === 2 ? [0.5] : solve(R.slice(0, -1).map((row) => row.slice(0, -1)), b.slice(0, -1)).map(f);
      xt = lin([1, xt_], ...d1s.map((d, k): [number, Float64Array] => [-ab * rhosP[k], d]));
    }
    if (!useCorrector) return { x: xt };
    const rhosC = ord === 1 ? [0.5] : solve(R, b).map(f);
    const modelT = await modelFn(xt, t);
    const terms: Array<[number, Float64Array]> = [[1, xt_]];
    d1s.forEach((d, k) => terms.push([-ab * rhosC[k], d]));
    const c = -ab * rhosC[rhosC.length - 1];
    terms.push([c, modelT], [-c, model0]);
    return { x: lin(...terms), model: modelT };
  };

  let x = lin([1 / Math.sqrt(1 + ts[0] ** 2), noise]);
  const models: Float64Array[] = [];
  const tPrev: number[] = [];
  // Reported in σ space at the σ x has reached, like every other sampler's x.
  const report = (i: number, at: number): void => {
    o?.callback?.(i, steps, lin([Math.sqrt(1 + ts[at] ** 2), x]), models[models.length - 1]);
  };
  for (let stepIndex = 0; stepIndex < steps; stepIndex++) {
    if (stepIndex === 0) {
      models.push(await modelFn(x, ts[0]));
      tPrev.push(ts[0]);
    } else if (stepIndex < order) {
      const r = await update(x, models, tPrev, ts[stepIndex], stepIndex, true);
      x = r.x;
      models.push(r.model ?? (await modelFn(x, ts[stepIndex])));
      tPrev.push(ts[stepIndex]);
    } else {
      const last = stepIndex === steps - 1 ? stepIndex + 1 : stepIndex;
      for (let step = stepIndex; step <= last; step++) {
        const stepOrder = Math.min(order, steps + 1 - step);
        const useCorrector = step !== steps;
        const r = await update(x, models, tPrev, ts[step], stepOrder, useCorrector);
        x = r.x;
        for (let k = 0; k < order - 1; k++) {
          tPrev[k] = tPrev[k + 1];
          models[k] = models[k + 1];
        }
        tPrev[tPrev.length - 1] = ts[step];
        if (step < steps) models[models.length - 1] = r.model ?? (await modelFn(x, ts[step]));
      }
    }
    report(stepIndex, stepIndex === steps - 1 && stepIndex >= order ? steps : stepIndex);
  }
  return lin([1 / alphaOf(ts[ts.length - 1]), x]);
}

export async function sampleUniPc(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions): Promise<Float64Array> {
  return uniPc(model, x, sigmas, o, 'bh1');
}

export async function sampleUniPcBh2(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions): Promise<Float64Array> {
  return uniPc(model, x, sigmas, o, 'bh2');
}
