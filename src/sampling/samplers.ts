// The k-diffusion family of samplers (k_diffusion/sampling.py and ComfyUI's copy of it), plus
// A1111's DDIM / PLMS / Restart rewritten in k-diffusion's σ space. Each function mirrors one
// original so it can be read side by side with it; the differences that change numbers are noted.
//
// The SDE samplers (dpmpp_sde, dpmpp_2m_sde, dpmpp_3m_sde and their _gpu twins) draw from a
// torchsde Brownian tree in the originals. Here all noise comes from the caller's NoiseSource: at
// run time that is per-step Gaussian noise from the profile's generator (a Brownian tree is not
// reproduced), in parity tests the reference's recorded noise bank.
import type { Denoiser, NoiseSource, SamplerOptions } from './types.js';
import {
  addNoise, ancestralStep, axpy, churnGamma, evalGuided, lin, needNoise, opt, toArray, toD,
} from './samplers-util.js';

type Opts = SamplerOptions | undefined;

/** Shared body of euler / heun / dpm_2: optional churn, then one model call at σ_hat. */
async function churned(
  model: Denoiser, x: Float64Array, sigmas: number[], i: number, o: Opts, noise: NoiseSource | undefined, name: string,
): Promise<{ x: Float64Array; sigmaHat: number; denoised: Float64Array; d: Float64Array }> {
  const gamma = churnGamma(o, sigmas[i], sigmas.length - 1);
  const sigmaHat = sigmas[i] * (gamma + 1);
  if (gamma > 0) {
    // ComfyUI draws only when γ > 0; upstream's unconditional randn_like only advances torch's RNG.
    const eps = needNoise(noise, name)(sigmas[i], sigmaHat);
    x = axpy(x, opt(o, 'sNoise', 1) * Math.sqrt(sigmaHat ** 2 - sigmas[i] ** 2), eps);
  }
  const denoised = await model(x, sigmaHat);
  return { x, sigmaHat, denoised, d: toD(x, sigmaHat, denoised) };
}

/** Algorithm 2 of Karras et al. (2022), Euler steps. */
export async function sampleEuler(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  for (let i = 0; i < n; i++) {
    const s = await churned(model, x, sigmas, i, o, noise, 'euler');
    o?.callback?.(i, n, s.x, s.denoised);
    x = axpy(s.x, sigmas[i + 1] - s.sigmaHat, s.d);
  }
  return x;
}

export async function sampleEulerAncestral(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const eta = opt(o, 'eta', 1);
  const sNoise = opt(o, 'sNoise', 1);
  for (let i = 0; i < n; i++) {
    const denoised = await model(x, sigmas[i]);
    const { down, up } = ancestralStep(sigmas[i], sigmas[i + 1], eta);
    o?.callback?.(i, n, x, denoised);
    if (down === 0) {
      x = denoised;
    } else {
      x = axpy(x, down - sigmas[i], toD(x, sigmas[i], denoised));
      x = addNoise(x, sNoise * up, noise, 'euler_ancestral', sigmas[i], sigmas[i + 1]);
    }
  }
  return x;
}

/** CFG++ Euler ancestral: step along the uncond prediction, land on the guided one. */
export async function sampleEulerAncestralCfgPp(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const eta = opt(o, 'eta', 1);
  const sNoise = opt(o, 'sNoise', 1);
  for (let i = 0; i < n; i++) {
    const { denoised, uncond } = await evalGuided(model, x, sigmas[i]);
    o?.callback?.(i, n, x, denoised);
    if (sigmas[i + 1] === 0) {
      x = denoised;
      continue;
    }
    const d = toD(x, sigmas[i], uncond);
    const { down, up } = ancestralStep(sigmas[i], sigmas[i + 1], eta);
    x = axpy(denoised, down, d);
    if (eta > 0 && sNoise > 0 && up !== 0) {
      x = axpy(x, sNoise * up, needNoise(noise, 'euler_ancestral_cfg_pp')(sigmas[i], sigmas[i + 1]));
    }
  }
  return x;
}

export async function sampleEulerCfgPp(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions): Promise<Float64Array> {
  return sampleEulerAncestralCfgPp(model, x, sigmas, { ...o, eta: 0, sNoise: 0 });
}

export async function sampleHeun(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  for (let i = 0; i < n; i++) {
    const s = await churned(model, x, sigmas, i, o, noise, 'heun');
    o?.callback?.(i, n, s.x, s.denoised);
    const dt = sigmas[i + 1] - s.sigmaHat;
    if (sigmas[i + 1] === 0) {
      x = axpy(s.x, dt, s.d);
    } else {
      const x2 = axpy(s.x, dt, s.d);
      const d2 = toD(x2, sigmas[i + 1], await model(x2, sigmas[i + 1]));
      x = lin([1, s.x], [dt / 2, s.d], [dt / 2, d2]);
    }
  }
  return x;
}

/** Heun++ (Carzit's sd-webui-samplers-scheduler, as in ComfyUI): a third evaluation one step ahead. */
export async function sampleHeunpp2(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const sEnd = sigmas[n];
  for (let i = 0; i < n; i++) {
    const s = await churned(model, x, sigmas, i, o, noise, 'heunpp2');
    o?.callback?.(i, n, s.x, s.denoised);
    const dt = sigmas[i + 1] - s.sigmaHat;
    if (sigmas[i + 1] === sEnd) {
      x = axpy(s.x, dt, s.d);
    } else if (sigmas[i + 2] === sEnd) {
      const x2 = axpy(s.x, dt, s.d);
      const d2 = toD(x2, sigmas[i + 1], await model(x2, sigmas[i + 1]));
      const w2 = sigmas[i + 1] / (2 * sigmas[0]);
      const w1 = 1 - w2;
      x = lin([1, s.x], [dt * w1, s.d], [dt * w2, d2]);
    } else {
      const x2 = axpy(s.x, dt, s.d);
      const d2 = toD(x2, sigmas[i + 1], await model(x2, sigmas[i + 1]));
      const x3 = axpy(x2, sigmas[i + 2] - sigmas[i + 1], d2);
      const d3 = toD(x3, sigmas[i + 2], await model(x3, sigmas[i + 2]));
      const w = 3 * sigmas[0];
      const w2 = sigmas[i + 1] / w;
      const w3 = sigmas[i + 2] / w;
      const w1 = 1 - w2 - w3;
      x = lin([1, s.x], [dt * w1, s.d], [dt * w2, d2], [dt * w3, d3]);
    }
  }
  return x;
}

/** σ midway between a and b in log space (torch's `a.log().lerp(b.log(), 0.5).exp()`). */
function logMid(a: number, b: number): number {
  const la = Math.log(a);
  return Math.exp(la + 0.5 * (Math.log(b) - la));
}

export async function sampleDpm2(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  for (let i = 0; i < n; i++) {
    const s = await churned(model, x, sigmas, i, o, noise, 'dpm_2');
    o?.callback?.(i, n, s.x, s.denoised);
    if (sigmas[i + 1] === 0) {
      x = axpy(s.x, sigmas[i + 1] - s.sigmaHat, s.d);
    } else {
      const sigmaMid = logMid(s.sigmaHat, sigmas[i + 1]);
      const x2 = axpy(s.x, sigmaMid - s.sigmaHat, s.d);
      const d2 = toD(x2, sigmaMid, await model(x2, sigmaMid));
      x = axpy(s.x, sigmas[i + 1] - s.sigmaHat, d2);
    }
  }
  return x;
}

export async function sampleDpm2Ancestral(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const eta = opt(o, 'eta', 1);
  const sNoise = opt(o, 'sNoise', 1);
  for (let i = 0; i < n; i++) {
    const denoised = await model(x, sigmas[i]);
    const { down, up } = ancestralStep(sigmas[i], sigmas[i + 1], eta);
    o?.callback?.(i, n, x, denoised);
    const d = toD(x, sigmas[i], denoised);
    if (down === 0) {
      x = axpy(x, down - sigmas[i], d);
    } else {
      const sigmaMid = logMid(sigmas[i], down);
      const x2 = axpy(x, sigmaMid - sigmas[i], d);
      const d2 = toD(x2, sigmaMid, await model(x2, sigmaMid));
      x = axpy(x, down - sigmas[i], d2);
      x = addNoise(x, sNoise * up, noise, 'dpm_2_ancestral', sigmas[i], sigmas[i + 1]);
    }
  }
  return x;
}

/**
 * ∫ over [t_i, t_{i+1}] of the Lagrange basis polynomial j on t_i … t_{i−order+1}. The originals use
 * scipy's adaptive quad (epsrel 1e-4); its first Gauss–Kronrod pass is already exact for these
 * degree ≤ 3 polynomials, and so is 5-point Gauss–Legendre here.
 */
function lmsCoeff(order: number, t: number[], i: number, j: number): number {
  const nodes = [0, -0.5384693101056831, 0.5384693101056831, -0.906179845938664, 0.906179845938664];
  const weights = [0.5688888888888889, 0.47862867049936647, 0.47862867049936647, 0.23692688505618908, 0.23692688505618908];
  const a = t[i];
  const b = t[i + 1];
  const half = (b - a) / 2;
  const mid = (a + b) / 2;
  let sum = 0;
  for (let q = 0; q < nodes.length; q++) {
    const tau = mid + half * nodes[q];
    let prod = 1;
    for (let k = 0; k < order; k++) {
      if (k === j) continue;
      prod *= (tau - t[i - k]) / (t[i - j] - t[i - k]);
    }
    sum += weights[q] * prod;
  }
  return sum * half;
}

export async function sampleLms(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const order = opt(o, 'order', 4);
  const updateLast = opt(o, 'lmsUpdateOnLastStep', false);
  const ds: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const denoised = await model(x, sigmas[i]);
    ds.push(toD(x, sigmas[i], denoised));
    if (ds.length > order) ds.shift();
    o?.callback?.(i, n, x, denoised);
    if (sigmas[i + 1] === 0 && !updateLast) {
      x = denoised;
    } else {
      const cur = Math.min(i + 1, order);
      const terms: Array<[number, Float64Array]> = [[1, x]];
      for (let j = 0; j < cur; j++) terms.push([lmsCoeff(cur, sigmas, i, j), ds[ds.length - 1 - j]]);
      x = lin(...terms);
    }
  }
  return x;
}

export async function sampleDpmpp2sAncestral(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const eta = opt(o, 'eta', 1);
  const sNoise = opt(o, 'sNoise', 1);
  for (let i = 0; i < n; i++) {
    const denoised = await model(x, sigmas[i]);
    const { down, up } = ancestralStep(sigmas[i], sigmas[i + 1], eta);
    o?.callback?.(i, n, x, denoised);
    if (down === 0) {
      x = axpy(x, down - sigmas[i], toD(x, sigmas[i], denoised));
    } else {
      const t = -Math.log(sigmas[i]);
      const tNext = -Math.log(down);
      const h = tNext - t;
      const sigmaS = Math.exp(-(t + h / 2));
      const x2 = lin([sigmaS / sigmas[i], x], [-Math.expm1(-h / 2), denoised]);
      const denoised2 = await model(x2, sigmaS);
      x = lin([Math.exp(-tNext) / sigmas[i], x], [-Math.expm1(-h), denoised2]);
    }
    if (sigmas[i + 1] > 0) x = addNoise(x, sNoise * up, noise, 'dpmpp_2s_ancestral', sigmas[i], sigmas[i + 1]);
  }
  return x;
}

/**
 * CFG++ DPM-Solver++(2S) ancestral as ComfyUI a125cd84 has it: the state is shifted by the guidance
 * (denoised − uncond) before each exponential step, which then uses the guided prediction.
 */
export async function sampleDpmpp2sAncestralCfgPp(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const eta = opt(o, 'eta', 1);
  const sNoise = opt(o, 'sNoise', 1);
  for (let i = 0; i < n; i++) {
    const { denoised, uncond } = await evalGuided(model, x, sigmas[i]);
    const { down, up } = ancestralStep(sigmas[i], sigmas[i + 1], eta);
    o?.callback?.(i, n, x, denoised);
    if (down === 0) {
      x = axpy(denoised, down, toD(x, sigmas[i], uncond));
    } else {
      const t = -Math.log(sigmas[i]);
      const tNext = -Math.log(down);
      const h = tNext - t;
      const sigmaS = Math.exp(-(t + h / 2));
      const x2 = lin([sigmaS / sigmas[i], x], [sigmaS / sigmas[i], denoised], [-sigmaS / sigmas[i], uncond], [-Math.expm1(-h / 2), denoised]);
      const second = await evalGuided(model, x2, sigmaS);
      // ComfyUI re-reads its post-CFG capture after the second call, so this shift pairs the
      // first call's guided prediction with the second call's uncond.
      const ratio = Math.exp(-tNext) / sigmas[i];
      x = lin([ratio, x], [ratio, denoised], [-ratio, second.uncond], [-Math.expm1(-h), second.denoised]);
    }
    if (sigmas[i + 1] > 0) x = addNoise(x, sNoise * up, noise, 'dpmpp_2s_ancestral_cfg_pp', sigmas[i], sigmas[i + 1]);
  }
  return x;
}

/** DPM-Solver++ (stochastic), ComfyUI's half-logSNR form (α = 1 for ε/v models). */
export async function sampleDpmppSde(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const eta = opt(o, 'eta', 1);
  const sNoise = opt(o, 'sNoise', 1);
  const r = opt(o, 'r', 0.5);
  const inject = eta > 0 && sNoise > 0;
  const ns = inject ? needNoise(noise, 'dpmpp_sde') : undefined;
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
    const lambdaS1 = lambdaS + r * h;
    const fac = 1 / (2 * r);
    const sigmaS1 = Math.exp(-lambdaS1);

    let st = ancestralStep(Math.exp(-lambdaS), Math.exp(-lambdaS1), eta);
    let hh = -Math.log(st.down) - lambdaS;
    let x2 = lin([Math.exp(-hh), x], [-Math.expm1(-hh), denoised]);
    if (ns) x2 = axpy(x2, sNoise * st.up, ns(sigmas[i], sigmaS1));
    const denoised2 = await model(x2, sigmaS1);

    st = ancestralStep(Math.exp(-lambdaS), Math.exp(-lambdaT), eta);
    hh = -Math.log(st.down) - lambdaS;
    const dd = lin([1 - fac, denoised], [fac, denoised2]);
    x = lin([Math.exp(-hh), x], [-Math.expm1(-hh), dd]);
    if (ns) x = axpy(x, sNoise * st.up, ns(sigmas[i], sigmas[i + 1]));
  }
  return x;
}

export async function sampleDpmpp2m(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  let old: Float64Array | undefined;
  for (let i = 0; i < n; i++) {
    const denoised = await model(x, sigmas[i]);
    o?.callback?.(i, n, x, denoised);
    const t = -Math.log(sigmas[i]);
    const tNext = -Math.log(sigmas[i + 1]);
    const h = tNext - t;
    const ratio = Math.exp(-tNext) / Math.exp(-t);
    if (!old || sigmas[i + 1] === 0) {
      x = lin([ratio, x], [-Math.expm1(-h), denoised]);
    } else {
      const r = (t + Math.log(sigmas[i - 1])) / h;
      const dd = lin([1 + 1 / (2 * r), denoised], [-1 / (2 * r), old]);
      x = lin([ratio, x], [-Math.expm1(-h), dd]);
    }
    old = denoised;
  }
  return x;
}

export async function sampleDpmpp2mCfgPp(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  let oldUncond: Float64Array | undefined;
  for (let i = 0; i < n; i++) {
    const { denoised, uncond } = await evalGuided(model, x, sigmas[i]);
    o?.callback?.(i, n, x, denoised);
    const t = -Math.log(sigmas[i]);
    const h = -Math.log(sigmas[i + 1]) - t;
    const eh = Math.exp(-h);
    if (!oldUncond || sigmas[i + 1] === 0) {
      x = lin([1, denoised], [-eh, uncond], [eh, x]);
    } else {
      const r = (t + Math.log(sigmas[i - 1])) / h;
      const c = -Math.expm1(-h) / (2 * r);
      x = lin([1, denoised], [-eh, uncond], [c, denoised], [-c, oldUncond], [eh, x]);
    }
    oldUncond = uncond;
  }
  return x;
}

/** DPM-Solver++(2M) SDE; `solverType` picks the midpoint (default) or Heun correction. */
export async function sampleDpmpp2mSde(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const eta = opt(o, 'eta', 1);
  const sNoise = opt(o, 'sNoise', 1);
  const solver = opt(o, 'solverType', 'midpoint');
  const ns = eta > 0 && sNoise > 0 ? needNoise(noise, 'dpmpp_2m_sde') : undefined;
  let old: Float64Array | undefined;
  let hLast = 0;
  let h = 0;
  for (let i = 0; i < n; i++) {
    const denoised = await model(x, sigmas[i]);
    o?.callback?.(i, n, x, denoised);
    if (sigmas[i + 1] === 0) {
      x = denoised;
    } else {
      h = Math.log(sigmas[i]) - Math.log(sigmas[i + 1]);
      const hEta = h * (eta + 1);
      const em = -Math.expm1(-hEta);
      x = lin([(sigmas[i + 1] / sigmas[i]) * Math.exp(-h * eta), x], [em, denoised]);
      if (old) {
        const r = hLast / h;
        const c = solver === 'heun' ? (em / -hEta + 1) / r : (0.5 * em) / r;
        x = lin([1, x], [c, denoised], [-c, old]);
      }
      if (ns) x = axpy(x, sigmas[i + 1] * Math.sqrt(-Math.expm1(-2 * h * eta)) * sNoise, ns(sigmas[i], sigmas[i + 1]));
    }
    old = denoised;
    hLast = h;
  }
  return x;
}

export async function sampleDpmpp2mSdeHeun(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  return sampleDpmpp2mSde(model, x, sigmas, { solverType: 'heun', ...o }, noise);
}

export async function sampleDpmpp3mSde(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const eta = opt(o, 'eta', 1);
  const sNoise = opt(o, 'sNoise', 1);
  const ns = eta > 0 && sNoise > 0 ? needNoise(noise, 'dpmpp_3m_sde') : undefined;
  let den1: Float64Array | undefined;
  let den2: Float64Array | undefined;
  let h: number | undefined;
  let h1: number | undefined;
  let h2: number | undefined;
  for (let i = 0; i < n; i++) {
    const denoised = await model(x, sigmas[i]);
    o?.callback?.(i, n, x, denoised);
    if (sigmas[i + 1] === 0) {
      x = denoised;
    } else {
      h = Math.log(sigmas[i]) - Math.log(sigmas[i + 1]);
      const hEta = h * (eta + 1);
      x = lin([(sigmas[i + 1] / sigmas[i]) * Math.exp(-h * eta), x], [-Math.expm1(-hEta), denoised]);
      const phi2 = Math.expm1(-hEta) / hEta + 1;
      if (h2 !== undefined && den1 && den2) {
        const r0 = h1! / h;
        const r1 = h2 / h;
        const d10 = lin([1 / r0, denoised], [-1 / r0, den1]);
        const d11 = lin([1 / r1, den1], [-1 / r1, den2]);
        const d1 = lin([1 + r0 / (r0 + r1), d10], [-r0 / (r0 + r1), d11]);
        const d2 = lin([1 / (r0 + r1), d10], [-1 / (r0 + r1), d11]);
        const phi3 = phi2 / hEta - 0.5;
        x = lin([1, x], [phi2, d1], [-phi3, d2]);
      } else if (h1 !== undefined && den1) {
        const r = h1 / h;
        x = lin([1, x], [phi2 / r, denoised], [-phi2 / r, den1]);
      }
      if (ns) x = axpy(x, sigmas[i + 1] * Math.sqrt(-Math.expm1(-2 * h * eta)) * sNoise, ns(sigmas[i], sigmas[i + 1]));
    }
    den2 = den1;
    den1 = denoised;
    h2 = h1;
    h1 = h;
  }
  return x;
}

/** DDPM ancestral step written on the VP latent x/√(1+σ²), as ComfyUI's `DDPMSampler_step`. */
export async function sampleDdpm(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  for (let i = 0; i < n; i++) {
    const sigma = sigmas[i];
    const sigmaPrev = sigmas[i + 1];
    const denoised = await model(x, sigma);
    o?.callback?.(i, n, x, denoised);
    const eps = toD(x, sigma, denoised);
    const acp = 1 / (sigma * sigma + 1);
    const acpPrev = 1 / (sigmaPrev * sigmaPrev + 1);
    const alpha = acp / acpPrev;
    const c = Math.sqrt(1 / alpha);
    let mu = lin([c / Math.sqrt(1 + sigma ** 2), x], [(-c * (1 - alpha)) / Math.sqrt(1 - acp), eps]);
    if (sigmaPrev > 0) {
      const std = Math.sqrt(((1 - alpha) * (1 - acpPrev)) / (1 - acp));
      mu = axpy(mu, std, needNoise(noise, 'ddpm')(sigma, sigmaPrev));
    }
    x = sigmaPrev !== 0 ? lin([Math.sqrt(1 + sigmaPrev ** 2), mu]) : mu;
  }
  return x;
}

/** Latent Consistency Model sampling: jump to the prediction, re-noise to the next σ. */
export async function sampleLcm(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const sNoise = opt(o, 'sNoise', 1);
  for (let i = 0; i < n; i++) {
    const denoised = await model(x, sigmas[i]);
    o?.callback?.(i, n, x, denoised);
    x = denoised;
    if (sigmas[i + 1] > 0) x = axpy(denoised, sigmas[i + 1] * sNoise, needNoise(noise, 'lcm')(sigmas[i], sigmas[i + 1]));
  }
  return x;
}

/**
 * DDIM (A1111's timestep sampler) on k-diffusion's σ grid. Dividing A1111's update by √ᾱ_prev
 * gives x' = x̂₀ + σ_down·ε̂ + σ_up·z with exactly `get_ancestral_step`'s σ_up (unclamped), so
 * DDIM is Euler ancestral with eta — and, at eta 0, plain Euler (ComfyUI's `ddim` alias).
 */
export async function sampleDdim(model: Denoiser, x: Float64Array, sigmas: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  const eta = opt(o, 'eta', 0);
  if (eta === 0) return sampleEuler(model, x, sigmas, { ...o, sChurn: 0 });
  return sampleEulerAncestral(model, x, sigmas, { ...o, eta }, noise);
}

/**
 * PLMS (A1111's `sd_samplers_timesteps_impl.plms`) on k-diffusion's σ grid. Its update
 * √ᾱ_prev·x̂₀(ε′) + √(1−ᾱ_prev)·ε′ becomes x + (σ_next − σ)·ε′ in σ space, so: a Heun step first
 * ("pseudo improved Euler"), then Adams–Bashforth on ε with fixed coefficients (orders 2–4).
 */
export async function samplePlms(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions): Promise<Float64Array> {
  const sigmas = toArray(sigmasIn);
  const n = sigmas.length - 1;
  const old: Float64Array[] = [];
  for (let i = 0; i < n; i++) {
    const denoised = await model(x, sigmas[i]);
    o?.callback?.(i, n, x, denoised);
    const e = toD(x, sigmas[i], denoised);
    const dt = sigmas[i + 1] - sigmas[i];
    let ePrime: Float64Array;
    if (old.length === 0) {
      // A1111 never evaluates at σ = 0 (its grid ends at t = 1); a step to 0 stays first order.
      if (sigmas[i + 1] === 0) {
        ePrime = e;
      } else {
        const xPrev = axpy(x, dt, e);
        const eNext = toD(xPrev, sigmas[i + 1], await model(xPrev, sigmas[i + 1]));
        ePrime = lin([0.5, e], [0.5, eNext]);
      }
    } else if (old.length === 1) {
      ePrime = lin([1.5, e], [-0.5, old[old.length - 1]]);
    } else if (old.length === 2) {
      ePrime = lin([23 / 12, e], [-16 / 12, old[old.length - 1]], [5 / 12, old[old.length - 2]]);
    } else {
      ePrime = lin([55 / 24, e], [-59 / 24, old[old.length - 1]], [37 / 24, old[old.length - 2]], [-9 / 24, old[old.length - 3]]);
    }
    x = axpy(x, dt, ePrime);
    old.push(e);
    if (old.length >= 4) old.shift();
  }
  return x;
}

/** k-diffusion's `get_sigmas_karras` in float64 (ρ = 7), with the final 0 appended. */
function karras(n: number, sigmaMin: number, sigmaMax: number, rho = 7): number[] {
  const minInv = sigmaMin ** (1 / rho);
  const maxInv = sigmaMax ** (1 / rho);
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    const ramp = n === 1 ? 0 : k / (n - 1);
    out.push((maxInv + ramp * (minInv - maxInv)) ** rho);
  }
  out.push(0);
  return out;
}

function argminAbs(values: number[], target: number): number {
  let best = 0;
  for (let k = 1; k < values.length; k++) if (Math.abs(values[k] - target) < Math.abs(values[best] - target)) best = k;
  return best;
}

/**
 * Restart sampling (Xu et al. 2023) as A1111's `restart_sampler`: Heun steps, with the segment
 * between σ ≈ 0.1 and σ ≈ 2 re-run after jumping back up with fresh noise. With ≥ 20 steps and no
 * explicit list it rebuilds its own Karras grid from the ends of the given one, as A1111 does.
 */
export async function sampleRestart(model: Denoiser, x: Float64Array, sigmasIn: ArrayLike<number>, o?: SamplerOptions, noise?: NoiseSource): Promise<Float64Array> {
  let sigmas = toArray(sigmasIn);
  const sNoise = opt(o, 'sNoise', 1);
  const steps = sigmas.length - 1;
  let list = o?.restartList;
  if (!list) {
    list = {};
    if (steps >= 20) {
      let restartSteps = 9;
      let restartTimes = 1;
      if (steps >= 36) {
        restartSteps = Math.floor(steps / 4);
        restartTimes = 2;
      }
      sigmas = karras(steps - restartSteps * restartTimes, sigmas[sigmas.length - 2], sigmas[0]);
      list = { 0.1: [restartSteps + 1, restartTimes, 2] };
    }
  }
  const byIndex = new Map<number, [number, number, number]>();
  for (const [key, value] of Object.entries(list)) byIndex.set(argminAbs(sigmas, Number(key)), value);

  const stepList: Array<[number, number]> = [];
  for (let i = 0; i < sigmas.length - 1; i++) {
    stepList.push([sigmas[i], sigmas[i + 1]]);
    const entry = byIndex.get(i + 1);
    if (!entry) continue;
    const [restartSteps, restartTimes, restartMax] = entry;
    const minIdx = i + 1;
    const maxIdx = argminAbs(sigmas, restartMax);
    if (maxIdx < minIdx) {
      const sr = karras(restartSteps, sigmas[minIdx], sigmas[maxIdx]).slice(0, -1);
      for (let t = 0; t < restartTimes; t++) for (let k = 0; k + 1 < sr.length; k++) stepList.push([sr[k], sr[k + 1]]);
    }
  }

  let last = stepList.length ? stepList[0][0] : 0;
  for (let s = 0; s < stepList.length; s++) {
    const [oldSigma, newSigma] = stepList[s];
    if (last < oldSigma) x = axpy(x, sNoise * Math.sqrt(oldSigma ** 2 - last ** 2), needNoise(noise, 'restart')(last, oldSigma));
    const denoised = await model(x, oldSigma);
    const d = toD(x, oldSigma, denoised);
    o?.callback?.(s, stepList.length, x, denoised);
    const dt = newSigma - oldSigma;
    if (newSigma === 0) {
      x = axpy(x, dt, d);
    } else {
      const x2 = axpy(x, dt, d);
      const d2 = toD(x2, newSigma, await model(x2, newSigma));
      x = lin([1, x], [dt / 2, d], [dt / 2, d2]);
    }
    last = newSigma;
  }
  return x;
}
