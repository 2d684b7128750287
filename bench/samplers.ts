// Model evaluations per step of every sampler, counted on an analytic denoiser (20 Karras steps).
import { sdSchedule } from '../src/sampling/discrete.js';
import { SAMPLER_NAMES, getSampler } from '../src/sampling/registry.js';
import { karrasSigmas } from '../src/sampling/schedules.js';
import type { GuidedDenoiser } from '../src/sampling/types.js';

export async function benchSamplers(steps = 20): Promise<{ name: string; evalsPerStep: number }[]> {
  const ms = sdSchedule('kdiffusion');
  const sigmas = karrasSigmas(steps, ms.sigmaMin, ms.sigmaMax);
  const n = 64;
  const out: { name: string; evalsPerStep: number }[] = [];
  for (const name of SAMPLER_NAMES) {
    let evals = 0;
    // D(x, σ) of a Gaussian data distribution with variance 0.25: the exact denoiser, so every sampler converges.
    const d = (x: Float64Array, s: number) => Float64Array.from(x, (v) => (0.25 / (0.25 + s * s)) * v);
    const denoise = Object.assign(async (x: Float64Array, s: number) => { evals++; return d(x, s); }, {
      withUncond: async (x: Float64Array, s: number) => { evals++; const r = d(x, s); return { denoised: r, uncond: r }; },
    }) as GuidedDenoiser;
    let k = 0;
    const noise = () => Float64Array.from({ length: n }, () => Math.sin(++k * 12.9898) * 0.5);
    const x = Float64Array.from({ length: n }, (_, i) => Math.cos(i) * sigmas[0]);
    await getSampler(name).fn(denoise, x, sigmas, {}, noise);
    out.push({ name, evalsPerStep: evals / steps });
  }
  return out;
}
