// KSampler and KSamplerAdvanced over the shared ComfyUI sampling stage, with step progress, latent
// previews and interrupts between steps.
import { comfyKSamplerSigmas, comfySample } from '../../pipelines/comfy-sample.js';
import { latentRgbPreviewer } from '../../pipelines/preview.js';
import type { Progress } from '../../pipelines/sample.js';
import type { NodeContext } from '../types.js';
import type { ConditioningValue, LatentValue, ModelValue } from '../values.js';
import { defineNode, SAMPLER_NAMES, SCHEDULER_NAMES, SEED_MAX } from './define.js';

/** Seeds above 2^53 arrive rounded; torch takes the seed modulo 2^64, so 2^64 itself means 0. */
export const seedOf = (v: unknown): number => {
  const n = v as number;
  return n >= 2 ** 64 ? n - 2 ** 64 : n;
};

/** Step progress, latent previews and interrupt checks for any sampling node. */
export function samplingProgress(ctx: NodeContext): (p: Progress) => Promise<void> {
  const preview = ctx.previews !== 'none' && ctx.preview ? latentRgbPreviewer() : undefined;
  return async (p) => {
    ctx.checkInterrupted();
    ctx.progress(p.step, p.total);
    if (preview && p.denoised && p.shape) {
      const [img] = await preview(p.denoised, p.shape);
      await ctx.preview!(img.rgb, img.width, img.height);
    }
  };
}

interface SampleArgs {
  model: ModelValue; seed: number; steps: number; cfg: number; sampler: string; scheduler: string;
  positive: ConditioningValue; negative: ConditioningValue; latent: LatentValue;
  denoise?: number; disableNoise?: boolean; startStep?: number; lastStep?: number; forceFullDenoise?: boolean;
}

async function ksample(a: SampleArgs, ctx: NodeContext): Promise<LatentValue> {
  const sigmas = comfyKSamplerSigmas(a.sampler, a.scheduler, a.steps, {
    denoise: a.denoise, startStep: a.startStep, lastStep: a.lastStep, forceFullDenoise: a.forceFullDenoise,
  });
  const samples = await comfySample({
    model: a.model.sd, positive: a.positive, negative: a.negative, latent: a.latent, seed: a.seed, cfg: a.cfg,
    sampler: a.sampler, sigmas, disableNoise: a.disableNoise, onProgress: samplingProgress(ctx),
  });
  // The noise mask stays with the latent, as in ComfyUI (a second sampler keeps inpainting).
  return { ...a.latent, samples };
}

export const samplingNodes = [
  defineNode({
    name: 'KSampler',
    displayName: 'KSampler',
    description: 'Uses the provided model, positive and negative conditioning to denoise the latent image.',
    category: 'sampling',
    input: {
      required: {
        model: ['MODEL', { tooltip: 'The model used for denoising the input latent.' }],
        seed: ['INT', { default: 0, min: 0, max: SEED_MAX, control_after_generate: true, tooltip: 'The random seed used for creating the noise.' }],
        steps: ['INT', { default: 20, min: 1, max: 10000, tooltip: 'The number of steps used in the denoising process.' }],
        cfg: ['FLOAT', { default: 8.0, min: 0.0, max: 100.0, step: 0.1, round: 0.01, tooltip: 'The Classifier-Free Guidance scale balances creativity and adherence to the prompt. Higher values result in images more closely matching the prompt however too high values will negatively impact quality.' }],
        sampler_name: [SAMPLER_NAMES, { tooltip: 'The algorithm used when sampling, this can affect the quality, speed, and style of the generated output.' }],
        scheduler: [SCHEDULER_NAMES, { tooltip: 'The scheduler controls how noise is gradually removed to form the image.' }],
        positive: ['CONDITIONING', { tooltip: 'The conditioning describing the attributes you want to include in the image.' }],
        negative: ['CONDITIONING', { tooltip: 'The conditioning describing the attributes you want to exclude from the image.' }],
        latent_image: ['LATENT', { tooltip: 'The latent image to denoise.' }],
        denoise: ['FLOAT', { default: 1.0, min: 0.0, max: 1.0, step: 0.01, tooltip: 'The amount of denoising applied, lower values will maintain the structure of the initial image allowing for image to image sampling.' }],
      },
    },
    output: ['LATENT'],
    outputTooltips: ['The denoised latent.'],
    async run(i, ctx) {
      const latent = await ksample({
        model: i.model as ModelValue, seed: seedOf(i.seed), steps: i.steps as number, cfg: i.cfg as number,
        sampler: String(i.sampler_name), scheduler: String(i.scheduler), positive: i.positive as ConditioningValue,
        negative: i.negative as ConditioningValue, latent: i.latent_image as LatentValue, denoise: i.denoise as number,
      }, ctx);
      return { outputs: [latent] };
    },
  }),
  defineNode({
    name: 'KSamplerAdvanced',
    displayName: 'KSampler (Advanced)',
    description: '',
    category: 'sampling',
    input: {
      required: {
        model: ['MODEL'],
        add_noise: [['enable', 'disable']],
        noise_seed: ['INT', { default: 0, min: 0, max: SEED_MAX, control_after_generate: true }],
        steps: ['INT', { default: 20, min: 1, max: 10000 }],
        cfg: ['FLOAT', { default: 8.0, min: 0.0, max: 100.0, step: 0.1, round: 0.01 }],
        sampler_name: [SAMPLER_NAMES],
        scheduler: [SCHEDULER_NAMES],
        positive: ['CONDITIONING'],
        negative: ['CONDITIONING'],
        latent_image: ['LATENT'],
        start_at_step: ['INT', { default: 0, min: 0, max: 10000 }],
        end_at_step: ['INT', { default: 10000, min: 0, max: 10000 }],
        return_with_leftover_noise: [['disable', 'enable']],
      },
    },
    output: ['LATENT'],
    async run(i, ctx) {
      const latent = await ksample({
        model: i.model as ModelValue, seed: seedOf(i.noise_seed), steps: i.steps as number, cfg: i.cfg as number,
        sampler: String(i.sampler_name), scheduler: String(i.scheduler), positive: i.positive as ConditioningValue,
        negative: i.negative as ConditioningValue, latent: i.latent_image as LatentValue, denoise: 1,
        disableNoise: i.add_noise === 'disable', startStep: i.start_at_step as number, lastStep: i.end_at_step as number,
        forceFullDenoise: i.return_with_leftover_noise !== 'enable',
      }, ctx);
      return { outputs: [latent] };
    },
  }),
];
