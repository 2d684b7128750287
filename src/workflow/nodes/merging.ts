// Model merging in a graph (comfy_extras/nodes_model_merging.py): UNets or text encoders mixed by a
// ratio, as a lazily blended weight source — nothing is written and the sessions are cached by the mix.
import { BlendedWeights } from '../../adapters/blended-weights.js';
import type { ClipValue, ModelValue } from '../values.js';
import { defineNode } from './define.js';

const MODULE = 'comfy_extras.nodes_model_merging';

export const mergingNodes = [
  defineNode({
    name: 'ModelMergeSimple',
    displayName: 'ModelMergeSimple',
    description: '',
    category: 'advanced/model_merging',
    pythonModule: MODULE,
    input: { required: { model1: ['MODEL'], model2: ['MODEL'], ratio: ['FLOAT', { default: 1.0, min: 0.0, max: 1.0, step: 0.01 }] } },
    output: ['MODEL'],
    async run(i) {
      const a = (i.model1 as ModelValue).sd;
      const b = (i.model2 as ModelValue).sd;
      const unet = new BlendedWeights(a.parts.weights.unet, a.parts.prefixes.unet, b.parts.weights.unet, b.parts.prefixes.unet, i.ratio as number);
      return { outputs: [{ sd: a.derive({ weights: { unet } }) } satisfies ModelValue] };
    },
  }),
  defineNode({
    name: 'CLIPMergeSimple',
    displayName: 'CLIPMergeSimple',
    description: '',
    category: 'advanced/model_merging',
    pythonModule: MODULE,
    input: { required: { clip1: ['CLIP'], clip2: ['CLIP'], ratio: ['FLOAT', { default: 1.0, min: 0.0, max: 1.0, step: 0.01 }] } },
    output: ['CLIP'],
    async run(i) {
      const c1 = i.clip1 as ClipValue;
      const a = c1.sd;
      const b = (i.clip2 as ClipValue).sd;
      // ComfyUI leaves position ids and logit scale alone; their values are the same in every CLIP anyway.
      const text = new BlendedWeights(a.parts.weights.text, a.parts.prefixes.text, b.parts.weights.text, b.parts.prefixes.text, i.ratio as number);
      return { outputs: [{ ...c1, sd: a.derive({ weights: { text } }) } satisfies ClipValue] };
    },
  }),
];
