// ComfyUI's custom sampling (comfy_extras/nodes_custom_sampler.py): a sampler, a σ list, a noise
// source and a guider chosen by separate nodes, and SamplerCustom(Advanced) putting them together
// through the same sampling stage KSampler uses.
import { comfyBasicSigmas, comfySampleWithDenoised, sdTurboSigmas } from '../../pipelines/comfy-sample.js';
import type { NodeContext } from '../types.js';
import type { ConditioningValue, LatentValue, ModelValue } from '../values.js';
import { defineNode, SAMPLER_NAMES, SCHEDULER_NAMES, SEED_MAX } from './define.js';
import { samplingProgress, seedOf } from './sampling.js';

const MODULE = 'comfy_extras.nodes_custom_sampler';

interface SamplerValue { readonly name: string }
interface NoiseValue { readonly seed?: number }
interface GuiderValue { readonly model: ModelValue; readonly positive: ConditioningValue; readonly negative: ConditioningValue; readonly cfg: number }

async function run(guider: GuiderValue, sampler: SamplerValue, sigmas: number[], latent: LatentValue, noise: NoiseValue, ctx: NodeContext) {
  const r = await comfySampleWithDenoised({
    model: guider.model.sd, positive: guider.positive, negative: guider.negative, latent, seed: noise.seed ?? 0,
    cfg: guider.cfg, sampler: sampler.name, sigmas, disableNoise: noise.seed === undefined, onProgress: samplingProgress(ctx),
  });
  return { outputs: [{ ...latent, samples: r.samples }, { ...latent, samples: r.denoised }] };
}

export const customSamplingNodes = [
  defineNode({
    name: 'KSamplerSelect',
    displayName: 'KSamplerSelect',
    description: '',
    category: 'sampling/custom_sampling/samplers',
    pythonModule: MODULE,
    input: { required: { sampler_name: [SAMPLER_NAMES] } },
    output: ['SAMPLER'],
    run: async (i) => ({ outputs: [{ name: String(i.sampler_name) } satisfies SamplerValue] }),
  }),
  defineNode({
    name: 'SamplerCustom',
    displayName: 'SamplerCustom',
    description: '',
    category: 'sampling/custom_sampling',
    pythonModule: MODULE,
    input: {
      required: {
        model: ['MODEL'],
        add_noise: ['BOOLEAN', { default: true }],
        noise_seed: ['INT', { default: 0, min: 0, max: SEED_MAX, control_after_generate: true }],
        cfg: ['FLOAT', { default: 8.0, min: 0.0, max: 100.0, step: 0.1, round: 0.01 }],
        positive: ['CONDITIONING'],
        negative: ['CONDITIONING'],
        sampler: ['SAMPLER'],
        sigmas: ['SIGMAS'],
        latent_image: ['LATENT'],
      },
    },
    output: ['LATENT', 'LATENT'],
    outputName: ['output', 'denoised_output'],
    async run(i, ctx) {
      const guider: GuiderValue = { model: i.model as ModelValue, positive: i.positive as ConditioningValue, negative: i.negative as ConditioningValue, cfg: i.cfg as number };
      // Without added noise the sampler's own noise still comes from the seed, as in ComfyUI.
      const noise: NoiseValue = i.add_noise ? { seed: seedOf(i.noise_seed) } : {};
      return run(guider, i.sampler as SamplerValue, [...(i.sigmas as number[])], i.latent_image as LatentValue, noise, ctx);
    },
  }),
  defineNode({
    name: 'SamplerCustomAdvanced',
    displayName: 'SamplerCustomAdvanced',
    description: '',
    category: 'sampling/custom_sampling',
    pythonModule: MODULE,
    input: { required: { noise: ['NOISE'], guider: ['GUIDER'], sampler: ['SAMPLER'], sigmas: ['SIGMAS'], latent_image: ['LATENT'] } },
    output: ['LATENT', 'LATENT'],
    outputName: ['output', 'denoised_output'],
    run: (i, ctx) => run(i.guider as GuiderValue, i.sampler as SamplerValue, [...(i.sigmas as number[])], i.latent_image as LatentValue, i.noise as NoiseValue, ctx),
  }),
  defineNode({
    name: 'BasicScheduler',
    displayName: 'BasicScheduler',
    description: '',
    category: 'sampling/custom_sampling/schedulers',
    pythonModule: MODULE,
    input: {
      required: {
        model: ['MODEL'],
        scheduler: [SCHEDULER_NAMES],
        steps: ['INT', { default: 20, min: 1, max: 10000 }],
        denoise: ['FLOAT', { default: 1.0, min: 0.0, max: 1.0, step: 0.01 }],
      },
    },
    output: ['SIGMAS'],
    run: async (i) => ({ outputs: [comfyBasicSigmas(String(i.scheduler), i.steps as number, i.denoise as number)] }),
  }),
  defineNode({
    name: 'BasicGuider',
    displayName: 'BasicGuider',
    description: '',
    category: 'sampling/custom_sampling/guiders',
    pythonModule: MODULE,
    input: { required: { model: ['MODEL'], conditioning: ['CONDITIONING'] } },
    output: ['GUIDER'],
    run: async (i) => ({ outputs: [{ model: i.model as ModelValue, positive: i.conditioning as ConditioningValue, negative: [], cfg: 1 } satisfies GuiderValue] }),
  }),
  defineNode({
    name: 'CFGGuider',
    displayName: 'CFGGuider',
    description: '',
    category: 'sampling/custom_sampling/guiders',
    pythonModule: MODULE,
    input: {
      required: {
        model: ['MODEL'],
        positive: ['CONDITIONING'],
        negative: ['CONDITIONING'],
        cfg: ['FLOAT', { default: 8.0, min: 0.0, max: 100.0, step: 0.1, round: 0.01 }],
      },
    },
    output: ['GUIDER'],
    run: async (i) => ({ outputs: [{ model: i.model as ModelValue, positive: i.positive as ConditioningValue, negative: i.negative as ConditioningValue, cfg: i.cfg as number } satisfies GuiderValue] }),
  }),
  defineNode({
    name: 'RandomNoise',
    displayName: 'RandomNoise',
    description: '',
    category: 'sampling/custom_sampling/noise',
    pythonModule: MODULE,
    input: { required: { noise_seed: ['INT', { default: 0, min: 0, max: SEED_MAX, control_after_generate: true }] } },
    output: ['NOISE'],
    run: async (i) => ({ outputs: [{ seed: seedOf(i.noise_seed) } satisfies NoiseValue] }),
  }),
  defineNode({
    name: 'DisableNoise',
    displayName: 'DisableNoise',
    description: '',
    category: 'sampling/custom_sampling/noise',
    pythonModule: MODULE,
    input: { required: {} },
    output: ['NOISE'],
    run: async () => ({ outputs: [{} satisfies NoiseValue] }),
  }),
  defineNode({
    name: 'SDTurboScheduler',
    displayName: 'SDTurboScheduler',
    description: '',
    category: 'sampling/custom_sampling/schedulers',
    pythonModule: MODULE,
    input: {
      required: {
        model: ['MODEL'],
        steps: ['INT', { default: 1, min: 1, max: 10 }],
        denoise: ['FLOAT', { default: 1.0, min: 0, max: 1.0, step: 0.01 }],
      },
    },
    output: ['SIGMAS'],
    run: async (i) => ({ outputs: [sdTurboSigmas(i.steps as number, i.denoise as number)] }),
  }),
];
