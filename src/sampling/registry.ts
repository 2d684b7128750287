// Sampler names (ComfyUI's identifiers, plus A1111's `restart` and `plms`) → implementation and
// the properties callers need: model evaluations per step (for `npm run bench` and progress),
// whether the run needs a noise source, and which sigma-list conventions apply.
import type { Sampler } from './types.js';
import {
  sampleDdim, sampleDdpm, sampleDpm2, sampleDpm2Ancestral, sampleDpmpp2m, sampleDpmpp2mCfgPp, sampleDpmpp2mSde,
  sampleDpmpp2mSdeHeun, sampleDpmpp2sAncestral, sampleDpmpp2sAncestralCfgPp, sampleDpmpp3mSde, sampleDpmppSde,
  sampleEuler, sampleEulerAncestral, sampleEulerAncestralCfgPp, sampleEulerCfgPp, sampleHeun, sampleHeunpp2,
  sampleLcm, sampleLms, samplePlms, sampleRestart,
} from './samplers.js';
import { sampleDpmAdaptive, sampleDpmFast } from './samplers-dpm-solver.js';
import {
  sampleDeis, sampleErSde, sampleGradientEstimation, sampleGradientEstimationCfgPp, sampleIpndm, sampleIpndmV,
  sampleResMultistep, sampleResMultistepAncestral, sampleResMultistepAncestralCfgPp, sampleResMultistepCfgPp,
  sampleSeeds2, sampleSeeds3,
} from './samplers-multistep.js';
import { sampleSaSolver, sampleSaSolverPece } from './samplers-sa-solver.js';
import { sampleUniPc, sampleUniPcBh2 } from './samplers-unipc.js';

export interface SamplerInfo {
  name: string;
  fn: Sampler;
  /**
   * Model evaluations per step in the steady state (the first or last step may use fewer, e.g.
   * Heun's Euler step to σ = 0); `null` where the count is not fixed (dpm_adaptive).
   */
  evalsPerStep: number | null;
  /** Injects fresh noise every step (Euler a style, σ_up from eta). */
  ancestral: boolean;
  /** An SDE solver; the originals draw its noise from a Brownian tree (here: the NoiseSource). */
  sde: boolean;
  /** Needs a NoiseSource at the default options. */
  stochastic: boolean;
  /** CFG++: wants a GuidedDenoiser (uncond evaluated even at cfg 1). */
  needsUncond: boolean;
  /** ComfyUI's KSampler node computes steps+1 sigmas and drops the penultimate one. */
  comfyDiscardPenultimate: boolean;
  /** A1111 "Automatic" scheduler drops the penultimate sigma for the matching A1111 sampler. */
  a1111DiscardPenultimate: boolean;
  /** Where the implementation comes from. */
  origin: 'k-diffusion' | 'comfy' | 'a1111';
}

type Flags = Partial<Omit<SamplerInfo, 'name' | 'fn' | 'evalsPerStep' | 'origin'>>;

function entry(name: string, fn: Sampler, evalsPerStep: number | null, origin: SamplerInfo['origin'], flags: Flags = {}): SamplerInfo {
  const ancestral = flags.ancestral ?? false;
  const sde = flags.sde ?? false;
  return {
    name, fn, evalsPerStep, origin, ancestral, sde,
    stochastic: flags.stochastic ?? (ancestral || sde),
    needsUncond: flags.needsUncond ?? name.endsWith('_cfg_pp'),
    comfyDiscardPenultimate: flags.comfyDiscardPenultimate ?? false,
    a1111DiscardPenultimate: flags.a1111DiscardPenultimate ?? false,
  };
}

const A = { ancestral: true };
const S = { sde: true };

const ENTRIES: SamplerInfo[] = [
  entry('euler', sampleEuler, 1, 'k-diffusion'),
  entry('euler_cfg_pp', sampleEulerCfgPp, 1, 'comfy'),
  entry('euler_ancestral', sampleEulerAncestral, 1, 'k-diffusion', A),
  entry('euler_ancestral_cfg_pp', sampleEulerAncestralCfgPp, 1, 'comfy', A),
  entry('heun', sampleHeun, 2, 'k-diffusion'),
  entry('heunpp2', sampleHeunpp2, 3, 'comfy'),
  entry('dpm_2', sampleDpm2, 2, 'k-diffusion', { comfyDiscardPenultimate: true, a1111DiscardPenultimate: true }),
  entry('dpm_2_ancestral', sampleDpm2Ancestral, 2, 'k-diffusion', { ...A, comfyDiscardPenultimate: true, a1111DiscardPenultimate: true }),
  entry('lms', sampleLms, 1, 'k-diffusion'),
  entry('dpm_fast', sampleDpmFast, 1, 'k-diffusion'),
  entry('dpm_adaptive', sampleDpmAdaptive, null, 'k-diffusion'),
  entry('dpmpp_2s_ancestral', sampleDpmpp2sAncestral, 2, 'k-diffusion', A),
  entry('dpmpp_2s_ancestral_cfg_pp', sampleDpmpp2sAncestralCfgPp, 2, 'comfy', A),
  entry('dpmpp_sde', sampleDpmppSde, 2, 'k-diffusion', S),
  entry('dpmpp_sde_gpu', sampleDpmppSde, 2, 'comfy', S),
  entry('dpmpp_2m', sampleDpmpp2m, 1, 'k-diffusion'),
  entry('dpmpp_2m_cfg_pp', sampleDpmpp2mCfgPp, 1, 'comfy'),
  entry('dpmpp_2m_sde', sampleDpmpp2mSde, 1, 'k-diffusion', S),
  entry('dpmpp_2m_sde_gpu', sampleDpmpp2mSde, 1, 'comfy', S),
  entry('dpmpp_2m_sde_heun', sampleDpmpp2mSdeHeun, 1, 'k-diffusion', S),
  entry('dpmpp_2m_sde_heun_gpu', sampleDpmpp2mSdeHeun, 1, 'comfy', S),
  entry('dpmpp_3m_sde', sampleDpmpp3mSde, 1, 'k-diffusion', { ...S, a1111DiscardPenultimate: true }),
  entry('dpmpp_3m_sde_gpu', sampleDpmpp3mSde, 1, 'comfy', { ...S, a1111DiscardPenultimate: true }),
  entry('ddpm', sampleDdpm, 1, 'comfy', A),
  entry('lcm', sampleLcm, 1, 'comfy', A),
  entry('ipndm', sampleIpndm, 1, 'comfy'),
  entry('ipndm_v', sampleIpndmV, 1, 'comfy'),
  entry('deis', sampleDeis, 1, 'comfy'),
  // res_multistep runs at eta 0; ComfyUI still asks its noise sampler each step and scales by 0.
  entry('res_multistep', sampleResMultistep, 1, 'comfy'),
  entry('res_multistep_cfg_pp', sampleResMultistepCfgPp, 1, 'comfy'),
  entry('res_multistep_ancestral', sampleResMultistepAncestral, 1, 'comfy', A),
  entry('res_multistep_ancestral_cfg_pp', sampleResMultistepAncestralCfgPp, 1, 'comfy', A),
  entry('gradient_estimation', sampleGradientEstimation, 1, 'comfy'),
  entry('gradient_estimation_cfg_pp', sampleGradientEstimationCfgPp, 1, 'comfy'),
  entry('er_sde', sampleErSde, 1, 'comfy', S),
  entry('seeds_2', sampleSeeds2, 2, 'comfy', S),
  entry('seeds_3', sampleSeeds3, 3, 'comfy', S),
  entry('sa_solver', sampleSaSolver, 1, 'comfy', S),
  entry('sa_solver_pece', sampleSaSolverPece, 2, 'comfy', S),
  // ComfyUI's ddim is its euler sampler; with eta > 0 this is A1111's stochastic DDIM.
  entry('ddim', sampleDdim, 1, 'a1111'),
  entry('uni_pc', sampleUniPc, 1, 'comfy', { comfyDiscardPenultimate: true }),
  entry('uni_pc_bh2', sampleUniPcBh2, 1, 'comfy', { comfyDiscardPenultimate: true }),
  entry('restart', sampleRestart, 2, 'a1111', { stochastic: true }),
  entry('plms', samplePlms, 1, 'a1111'),
];

export const SAMPLERS: ReadonlyMap<string, SamplerInfo> = new Map(ENTRIES.map((e) => [e.name, e]));

/** ComfyUI's `SAMPLER_NAMES` order, then A1111's extras. */
export const SAMPLER_NAMES: readonly string[] = ENTRIES.map((e) => e.name);

export function getSampler(name: string): SamplerInfo {
  const info = SAMPLERS.get(name) ?? SAMPLERS.get(name.toLowerCase());
  if (!info) throw new Error(`unknown sampler "${name}" (known: ${SAMPLER_NAMES.join(', ')})`);
  return info;
}

/** The KSampler-node σ rule: compute n+1 sigmas, drop the penultimate (input includes the final 0). */
export function discardPenultimate(sigmas: ArrayLike<number>): number[] {
  const s = Array.from(sigmas, Number);
  if (s.length < 3) return s;
  return [...s.slice(0, -2), s[s.length - 1]];
}
