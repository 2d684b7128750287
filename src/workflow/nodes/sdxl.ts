// comfy_extras/nodes_clip_sdxl.py: the SDXL text encoders with explicit size conditioning. Declared
// as ComfyUI (V3 schema, as of 0.3.6x) prints them in /object_info.
import { comfyConditioning } from '../../pipelines/comfy-conditioning.js';
import { encodeComfySdxl } from '../../pipelines/sdxl-conditioning.js';
import type { ClipValue } from '../values.js';
import { defineNode } from './define.js';

const MAX_RESOLUTION = 16384;
const size = (dflt: number) => ['INT', { default: dflt, min: 0, max: MAX_RESOLUTION }] as const;

function sdxlClip(v: unknown, node: string): ClipValue {
  const clip = v as ClipValue;
  if (!clip.sd.isSdxl) throw new Error(`${node}: needs the CLIP of an SDXL checkpoint (this one is ${clip.sd.family})`);
  return clip;
}

export const sdxlNodes = [
  defineNode({
    name: 'CLIPTextEncodeSDXLRefiner',
    displayName: null,
    description: '',
    category: 'advanced/conditioning',
    pythonModule: 'comfy_extras.nodes_clip_sdxl',
    input: {
      required: {
        ascore: ['FLOAT', { default: 6.0, min: 0.0, max: 1000.0, step: 0.01 }],
        width: size(1024),
        height: size(1024),
        text: ['STRING', { multiline: true, dynamicPrompts: true }],
        clip: ['CLIP', {}],
      },
    },
    output: ['CONDITIONING'],
    outputTooltips: [null],
    newApi: true,
    async run(i) {
      const clip = sdxlClip(i.clip, 'CLIPTextEncodeSDXLRefiner');
      const text = String(i.text);
      const r = await encodeComfySdxl(clip.sd, clip.tokenizer, text, text, { clipSkip: clip.clipSkip });
      const [entry] = comfyConditioning(r.cond, r.pooled);
      return { outputs: [[{ ...entry, aestheticScore: i.ascore as number, width: i.width as number, height: i.height as number }]] };
    },
  }),
  defineNode({
    name: 'CLIPTextEncodeSDXL',
    displayName: null,
    description: '',
    category: 'advanced/conditioning',
    pythonModule: 'comfy_extras.nodes_clip_sdxl',
    input: {
      required: {
        clip: ['CLIP', {}],
        width: size(1024),
        height: size(1024),
        crop_w: size(0),
        crop_h: size(0),
        target_width: size(1024),
        target_height: size(1024),
        text_g: ['STRING', { multiline: true, dynamicPrompts: true }],
        text_l: ['STRING', { multiline: true, dynamicPrompts: true }],
      },
    },
    output: ['CONDITIONING'],
    outputTooltips: [null],
    newApi: true,
    async run(i) {
      const clip = sdxlClip(i.clip, 'CLIPTextEncodeSDXL');
      const r = await encodeComfySdxl(clip.sd, clip.tokenizer, String(i.text_g), String(i.text_l), { clipSkip: clip.clipSkip });
      const [entry] = comfyConditioning(r.cond, r.pooled);
      const n = (k: string) => i[k] as number;
      return {
        outputs: [[{
          ...entry, width: n('width'), height: n('height'), cropW: n('crop_w'), cropH: n('crop_h'), targetWidth: n('target_width'), targetHeight: n('target_height'),
        }]],
      };
    },
  }),
];
