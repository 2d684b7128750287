// ControlNet nodes (nodes.py): the loaders and the two apply nodes. A loaded ControlNet follows the
// heads of the UNet it ends up controlling, so one file serves every checkpoint it fits.
import { stat } from 'node:fs/promises';
import { loadControlNet } from '../../models/controlnet-model.js';
import type { ControlNet } from '../../models/controlnet-model.js';
import { controlNetApply, controlNetApplyAdvanced } from '../../pipelines/comfy-conditioning.js';
import type { NodeContext } from '../types.js';
import type { ConditioningValue, ImageValue, ModelValue } from '../values.js';
import { defineNode } from './define.js';

async function load(ctx: NodeContext, name: string, base?: ModelValue): Promise<ControlNet> {
  const path = ctx.host.resolveFile('controlnet', name);
  const bytes = (await stat(path)).size;
  if (!base) return ctx.resources.get(`controlnet|${path}`, bytes, () => loadControlNet(path));
  const { weights, prefixes } = base.sd.parts;
  return ctx.resources.get(`controlnet|${path}|${weights.unet.id}`, bytes, () => loadControlNet(path, { base: { weights: weights.unet, prefix: prefixes.unet } }));
}

const STRENGTH = ['FLOAT', { default: 1.0, min: 0.0, max: 10.0, step: 0.01 }] as const;

export const controlNetNodes = [
  defineNode({
    name: 'ControlNetLoader',
    displayName: 'Load ControlNet Model',
    description: '',
    category: 'loaders',
    input: { required: { control_net_name: [{ files: 'controlnet' }] } },
    output: ['CONTROL_NET'],
    async run(i, ctx) {
      return { outputs: [await load(ctx, String(i.control_net_name))] };
    },
  }),
  defineNode({
    name: 'DiffControlNetLoader',
    displayName: 'Load ControlNet Model (diff)',
    description: '',
    category: 'loaders',
    input: { required: { model: ['MODEL'], control_net_name: [{ files: 'controlnet' }] } },
    output: ['CONTROL_NET'],
    async run(i, ctx) {
      return { outputs: [await load(ctx, String(i.control_net_name), i.model as ModelValue)] };
    },
  }),
  defineNode({
    name: 'ControlNetApply',
    displayName: 'Apply ControlNet (OLD)',
    description: '',
    category: 'conditioning/controlnet',
    input: { required: { conditioning: ['CONDITIONING'], control_net: ['CONTROL_NET'], image: ['IMAGE'], strength: [...STRENGTH] } },
    output: ['CONDITIONING'],
    deprecated: true,
    async run(i) {
      return { outputs: [controlNetApply(i.conditioning as ConditioningValue, i.control_net as ControlNet, i.image as ImageValue, i.strength as number)] };
    },
  }),
  defineNode({
    name: 'ControlNetApplyAdvanced',
    displayName: 'Apply ControlNet',
    description: '',
    category: 'conditioning/controlnet',
    input: {
      required: {
        positive: ['CONDITIONING'], negative: ['CONDITIONING'], control_net: ['CONTROL_NET'], image: ['IMAGE'], strength: [...STRENGTH],
        start_percent: ['FLOAT', { default: 0.0, min: 0.0, max: 1.0, step: 0.001 }],
        end_percent: ['FLOAT', { default: 1.0, min: 0.0, max: 1.0, step: 0.001 }],
      },
      // The VAE is for ControlNets that take a latent hint (SD3 / Flux ones); SD1/SD2 ignore it.
      optional: { vae: ['VAE'] },
    },
    output: ['CONDITIONING', 'CONDITIONING'],
    outputName: ['positive', 'negative'],
    async run(i) {
      const [p, n] = controlNetApplyAdvanced(i.positive as ConditioningValue, i.negative as ConditioningValue, i.control_net as ControlNet, i.image as ImageValue,
        i.strength as number, i.start_percent as number, i.end_percent as number);
      return { outputs: [p, n] };
    },
  }),
];
