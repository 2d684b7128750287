// Loaders: checkpoints, VAEs, LoRAs, hypernetworks and upscalers from the host's model folders. Loaded
// files stay in the engine's resource cache, so a second prompt with the same checkpoint loads nothing.
import { stat } from 'node:fs/promises';
import { applyExtraNetworks } from '../../adapters/networks.js';
import { loadCheckpoint } from '../../models/checkpoint.js';
import type { StableDiffusionModel } from '../../models/sd-model.js';
import { VaeModel } from '../../models/vae-model.js';
import { UpscalerModel } from '../../pipelines/upscale.js';
import { tokenizerFor } from '../../text/tokenizer-cache.js';
import type { NodeContext } from '../types.js';
import type { ClipValue, ModelValue } from '../values.js';
import { defineNode } from './define.js';

const fileSize = async (path: string) => (await stat(path)).size;

async function checkpoint(ctx: NodeContext, name: string, config?: string): Promise<ModelValue & { clip: ClipValue; vae: StableDiffusionModel }> {
  const path = ctx.host.resolveFile('checkpoints', name);
  const configPath = config ? ctx.host.resolveFile('configs', config) : undefined;
  const sd = await ctx.resources.get(`checkpoint|${path}|${configPath ?? ''}`, await fileSize(path), () => loadCheckpoint(path, { config: configPath }));
  const tokenizer = await tokenizerFor(path);
  // Without CLIPSetLastLayer ComfyUI takes SDXL's encoders at layer −2 (SD1/SD2: the model's own default, −1 here).
  return { sd, vae: sd, clip: { sd, clipSkip: sd.isSdxl ? 2 : 1, tokenizer } };
}

export const loaderNodes = [
  defineNode({
    name: 'CheckpointLoaderSimple',
    displayName: 'Load Checkpoint',
    description: 'Loads a diffusion model checkpoint, diffusion models are used to denoise latents.',
    category: 'loaders',
    input: {
      required: {
        ckpt_name: [{ files: 'checkpoints' }, { tooltip: 'The name of the checkpoint (model) to load.' }],
      },
    },
    output: ['MODEL', 'CLIP', 'VAE'],
    outputTooltips: ['The model used for denoising latents.', 'The CLIP model used for encoding text prompts.', 'The VAE model used for encoding and decoding images to and from latent space.'],
    async run(i, ctx) {
      const c = await checkpoint(ctx, String(i.ckpt_name));
      return { outputs: [{ sd: c.sd }, c.clip, c.vae] };
    },
  }),
  defineNode({
    name: 'CheckpointLoader',
    displayName: 'Load Checkpoint With Config (DEPRECATED)',
    description: '',
    category: 'advanced/loaders',
    input: {
      required: {
        config_name: [{ files: 'configs' }],
        ckpt_name: [{ files: 'checkpoints' }],
      },
    },
    output: ['MODEL', 'CLIP', 'VAE'],
    deprecated: true,
    async run(i, ctx) {
      const c = await checkpoint(ctx, String(i.ckpt_name), String(i.config_name));
      return { outputs: [{ sd: c.sd }, c.clip, c.vae] };
    },
  }),
  defineNode({
    name: 'VAELoader',
    displayName: 'Load VAE',
    description: '',
    category: 'loaders',
    input: {
      required: {
        vae_name: [{ files: 'vae' }],
      },
    },
    output: ['VAE'],
    async run(i, ctx) {
      const path = ctx.host.resolveFile('vae', String(i.vae_name));
      return { outputs: [await ctx.resources.get(`vae|${path}`, await fileSize(path), () => VaeModel.load(path))] };
    },
  }),
  defineNode({
    name: 'LoraLoader',
    displayName: 'Load LoRA',
    description: 'LoRAs are used to modify diffusion and CLIP models, altering the way in which latents are denoised such as applying styles. Multiple LoRA nodes can be linked together.',
    category: 'loaders',
    input: {
      required: {
        model: ['MODEL', { tooltip: 'The diffusion model the LoRA will be applied to.' }],
        clip: ['CLIP', { tooltip: 'The CLIP model the LoRA will be applied to.' }],
        lora_name: [{ files: 'loras' }, { tooltip: 'The name of the LoRA.' }],
        strength_model: ['FLOAT', { default: 1.0, min: -100.0, max: 100.0, step: 0.01, tooltip: 'How strongly to modify the diffusion model. This value can be negative.' }],
        strength_clip: ['FLOAT', { default: 1.0, min: -100.0, max: 100.0, step: 0.01, tooltip: 'How strongly to modify the CLIP model. This value can be negative.' }],
      },
    },
    output: ['MODEL', 'CLIP'],
    outputTooltips: ['The modified diffusion model.', 'The modified CLIP model.'],
    async run(i, ctx) {
      const model = i.model as ModelValue;
      const clip = i.clip as ClipValue;
      const sm = i.strength_model as number;
      const sc = i.strength_clip as number;
      if (sm === 0 && sc === 0) return { outputs: [model, clip] };
      const path = ctx.host.resolveFile('loras', String(i.lora_name));
      // The UNet part goes to MODEL and the text-encoder part to CLIP, each at its own strength.
      const m = sm === 0 ? model : { sd: (await applyExtraNetworks(model.sd, { loras: [{ path, weight: sm, teWeight: 0 }] })).model };
      const c = sc === 0 ? clip : { ...clip, sd: (await applyExtraNetworks(clip.sd, { loras: [{ path, weight: 0, teWeight: sc }] })).model };
      return { outputs: [m, c] };
    },
  }),
  defineNode({
    name: 'LoraLoaderModelOnly',
    displayName: 'LoraLoaderModelOnly',
    description: 'LoRAs are used to modify diffusion and CLIP models, altering the way in which latents are denoised such as applying styles. Multiple LoRA nodes can be linked together.',
    category: 'loaders',
    input: {
      required: {
        model: ['MODEL'],
        lora_name: [{ files: 'loras' }],
        strength_model: ['FLOAT', { default: 1.0, min: -100.0, max: 100.0, step: 0.01 }],
      },
    },
    output: ['MODEL'],
    outputTooltips: ['The modified diffusion model.', 'The modified CLIP model.'],
    async run(i, ctx) {
      const model = i.model as ModelValue;
      const sm = i.strength_model as number;
      if (sm === 0) return { outputs: [model] };
      const path = ctx.host.resolveFile('loras', String(i.lora_name));
      return { outputs: [{ sd: (await applyExtraNetworks(model.sd, { loras: [{ path, weight: sm, teWeight: 0 }] })).model }] };
    },
  }),
  defineNode({
    name: 'HypernetworkLoader',
    displayName: 'HypernetworkLoader',
    description: '',
    category: 'loaders',
    pythonModule: 'comfy_extras.nodes_hypernetwork',
    input: {
      required: {
        model: ['MODEL'],
        hypernetwork_name: [{ files: 'hypernetworks' }],
        strength: ['FLOAT', { default: 1.0, min: -10.0, max: 10.0, step: 0.01 }],
      },
    },
    output: ['MODEL'],
    async run(i, ctx) {
      const model = i.model as ModelValue;
      const path = ctx.host.resolveFile('hypernetworks', String(i.hypernetwork_name));
      return { outputs: [{ sd: (await applyExtraNetworks(model.sd, { hypernetworks: [{ path, strength: i.strength as number }] })).model }] };
    },
  }),
  defineNode({
    name: 'UpscaleModelLoader',
    displayName: 'Load Upscale Model',
    description: '',
    category: 'loaders',
    pythonModule: 'comfy_extras.nodes_upscale_model',
    input: {
      required: {
        model_name: ['COMBO', { multiselect: false, options: { files: 'upscale_models' } }],
      },
    },
    output: ['UPSCALE_MODEL'],
    outputTooltips: [null],
    newApi: true,
    async run(i, ctx) {
      const path = ctx.host.resolveFile('upscale_models', String(i.model_name));
      return { outputs: [await ctx.resources.get(`upscaler|${path}`, await fileSize(path), () => UpscalerModel.load(path))] };
    },
  }),
];
