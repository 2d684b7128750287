// Text conditioning: CLIPTextEncode in ComfyUI's prompt syntax (weights, `embedding:name`), the clip
// layer choice, and the conditioning-list operations (combine, areas, masks, timestep ranges).
import { EmbeddingLibrary } from '../../adapters/textual-inversion.js';
import { average, combine, comfyConditioning, concat, setArea, setAreaPercentage, setMask, setTimestepRange, setValues, zeroOut } from '../../pipelines/comfy-conditioning.js';
import { comfyEmbeddingNames, encodeComfyPrompt } from '../../pipelines/conditioning.js';
import { encodeComfySdxl } from '../../pipelines/sdxl-conditioning.js';
import type { ImageBatch, MaskBatch, NodeContext } from '../types.js';
import type { ClipValue, ConditioningValue, LatentValue, VaeValue } from '../values.js';
import { defineNode } from './define.js';
import { encode, maskedForInpaint } from './latent.js';

async function embeddings(clip: ClipValue, ctx: NodeContext, warn: (m: string) => void): Promise<EmbeddingLibrary | undefined> {
  if (clip.embeddings) return clip.embeddings;
  const dirs = ctx.host.folderPaths('embeddings');
  return dirs.length ? EmbeddingLibrary.open(dirs, { width: clip.sd.textWidth, warn }) : undefined;
}

export const clipNodes = [
  defineNode({
    name: 'CLIPTextEncode',
    displayName: 'CLIP Text Encode (Prompt)',
    description: 'Encodes a text prompt using a CLIP model into an embedding that can be used to guide the diffusion model towards generating specific images.',
    category: 'conditioning',
    input: {
      required: {
        text: ['STRING', { multiline: true, dynamicPrompts: true, tooltip: 'The text to be encoded.' }],
        clip: ['CLIP', { tooltip: 'The CLIP model used for encoding the text.' }],
      },
    },
    output: ['CONDITIONING'],
    outputTooltips: ['A conditioning containing the embedded text used to guide the diffusion model.'],
    async run(i, ctx) {
      const clip = i.clip as ClipValue;
      const text = String(i.text);
      if (clip.sd.isSdxl) {
        // SDXLClipModel: both encoders on the same text, pooled output from G.
        const r = await encodeComfySdxl(clip.sd, clip.tokenizer, text, text, { clipSkip: clip.clipSkip });
        return { outputs: [comfyConditioning(r.cond, r.pooled)] };
      }
      const warnings: string[] = [];
      const warn = (m: string) => { warnings.push(m); };
      const names = comfyEmbeddingNames(text);
      const library = names.length ? await embeddings(clip, ctx, warn) : undefined;
      const lookup = library ? await library.comfyPreload(names) : undefined;
      const cond = await encodeComfyPrompt(clip.sd, clip.tokenizer, text, { clipSkip: clip.clipSkip, embeddings: lookup, warn });
      return { outputs: [comfyConditioning(cond)] };
    },
  }),
  defineNode({
    name: 'CLIPSetLastLayer',
    displayName: 'CLIP Set Last Layer',
    description: '',
    category: 'conditioning',
    input: {
      required: {
        clip: ['CLIP'],
        stop_at_clip_layer: ['INT', { default: -1, min: -24, max: -1, step: 1 }],
      },
    },
    output: ['CLIP'],
    async run(i) {
      const clip = i.clip as ClipValue;
      // ComfyUI −1 = last layer = A1111 clip skip 1, −2 = penultimate = clip skip 2.
      return { outputs: [{ ...clip, clipSkip: -(i.stop_at_clip_layer as number) }] };
    },
  }),
];

const C = (v: unknown) => v as ConditioningValue;
const n = (v: unknown) => v as number;

export const conditioningNodes = [
  defineNode({
    name: 'ConditioningCombine',
    displayName: 'Conditioning (Combine)',
    description: '',
    category: 'conditioning',
    input: { required: { conditioning_1: ['CONDITIONING'], conditioning_2: ['CONDITIONING'] } },
    output: ['CONDITIONING'],
    run: async (i) => ({ outputs: [combine(C(i.conditioning_1), C(i.conditioning_2))] }),
  }),
  defineNode({
    name: 'ConditioningSetArea',
    displayName: 'Conditioning (Set Area)',
    description: '',
    category: 'conditioning',
    input: {
      required: {
        conditioning: ['CONDITIONING'],
        width: ['INT', { default: 64, min: 64, max: 16384, step: 8 }],
        height: ['INT', { default: 64, min: 64, max: 16384, step: 8 }],
        x: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
        y: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
        strength: ['FLOAT', { default: 1.0, min: 0.0, max: 10.0, step: 0.01 }],
      },
    },
    output: ['CONDITIONING'],
    run: async (i) => ({ outputs: [setArea(C(i.conditioning), n(i.width), n(i.height), n(i.x), n(i.y), n(i.strength))] }),
  }),
  defineNode({
    name: 'ConditioningSetAreaPercentage',
    displayName: 'Conditioning (Set Area with Percentage)',
    description: '',
    category: 'conditioning',
    input: {
      required: {
        conditioning: ['CONDITIONING'],
        width: ['FLOAT', { default: 1.0, min: 0, max: 1.0, step: 0.01 }],
        height: ['FLOAT', { default: 1.0, min: 0, max: 1.0, step: 0.01 }],
        x: ['FLOAT', { default: 0, min: 0, max: 1.0, step: 0.01 }],
        y: ['FLOAT', { default: 0, min: 0, max: 1.0, step: 0.01 }],
        strength: ['FLOAT', { default: 1.0, min: 0.0, max: 10.0, step: 0.01 }],
      },
    },
    output: ['CONDITIONING'],
    run: async (i) => ({ outputs: [setAreaPercentage(C(i.conditioning), n(i.width), n(i.height), n(i.x), n(i.y), n(i.strength))] }),
  }),
  defineNode({
    name: 'ConditioningSetMask',
    displayName: 'Conditioning (Set Mask)',
    description: '',
    category: 'conditioning',
    input: {
      required: {
        conditioning: ['CONDITIONING'],
        mask: ['MASK'],
        strength: ['FLOAT', { default: 1.0, min: 0.0, max: 10.0, step: 0.01 }],
        set_cond_area: [['default', 'mask bounds']],
      },
    },
    output: ['CONDITIONING'],
    run: async (i) => ({ outputs: [setMask(C(i.conditioning), i.mask as MaskBatch, i.set_cond_area === 'mask bounds' ? 'mask bounds' : 'default', n(i.strength))] }),
  }),
  defineNode({
    name: 'ConditioningSetTimestepRange',
    displayName: 'ConditioningSetTimestepRange',
    description: '',
    category: 'advanced/conditioning',
    input: {
      required: {
        conditioning: ['CONDITIONING'],
        start: ['FLOAT', { default: 0.0, min: 0.0, max: 1.0, step: 0.001 }],
        end: ['FLOAT', { default: 1.0, min: 0.0, max: 1.0, step: 0.001 }],
      },
    },
    output: ['CONDITIONING'],
    run: async (i) => ({ outputs: [setTimestepRange(C(i.conditioning), n(i.start), n(i.end))] }),
  }),
  defineNode({
    name: 'ConditioningConcat',
    displayName: 'Conditioning (Concat)',
    description: '',
    category: 'conditioning',
    input: { required: { conditioning_to: ['CONDITIONING'], conditioning_from: ['CONDITIONING'] } },
    output: ['CONDITIONING'],
    run: async (i) => ({ outputs: [concat(C(i.conditioning_to), C(i.conditioning_from))] }),
  }),
  defineNode({
    name: 'ConditioningAverage',
    displayName: 'ConditioningAverage',
    description: '',
    category: 'conditioning',
    input: {
      required: {
        conditioning_to: ['CONDITIONING'],
        conditioning_from: ['CONDITIONING'],
        conditioning_to_strength: ['FLOAT', { default: 1.0, min: 0.0, max: 1.0, step: 0.01 }],
      },
    },
    output: ['CONDITIONING'],
    run: async (i) => ({ outputs: [average(C(i.conditioning_to), C(i.conditioning_from), n(i.conditioning_to_strength))] }),
  }),
  defineNode({
    name: 'ConditioningZeroOut',
    displayName: 'ConditioningZeroOut',
    description: '',
    category: 'advanced/conditioning',
    input: { required: { conditioning: ['CONDITIONING'] } },
    output: ['CONDITIONING'],
    run: async (i) => ({ outputs: [zeroOut(C(i.conditioning))] }),
  }),
  defineNode({
    name: 'InpaintModelConditioning',
    displayName: 'InpaintModelConditioning',
    description: '',
    category: 'conditioning/inpaint',
    input: {
      required: {
        positive: ['CONDITIONING'],
        negative: ['CONDITIONING'],
        vae: ['VAE'],
        pixels: ['IMAGE'],
        mask: ['MASK'],
        noise_mask: ['BOOLEAN', { default: true, tooltip: 'Add a noise mask to the latent so sampling will only happen within the mask. Might improve results or completely break things depending on the model.' }],
      },
    },
    output: ['CONDITIONING', 'CONDITIONING', 'LATENT'],
    outputName: ['positive', 'negative', 'latent'],
    async run(i) {
      const vae = i.vae as VaeValue;
      const { mask, masked } = maskedForInpaint(i.pixels as ImageBatch, i.mask as MaskBatch);
      const concatLatent = await encode(vae, masked);
      const latent: LatentValue = { ...(await encode(vae, i.pixels as ImageBatch)), ...(i.noise_mask ? { noiseMask: mask } : {}) };
      const values = { concatLatent: { samples: concatLatent.samples, shape: concatLatent.shape }, concatMask: mask };
      return { outputs: [setValues(C(i.positive), values), setValues(C(i.negative), values), latent] };
    },
  }),
];
