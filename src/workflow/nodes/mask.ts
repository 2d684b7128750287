// MASK nodes (comfy_extras/nodes_mask.py): conversions between masks and images, solid masks,
// inversion, growing / shrinking, feathering and thresholds.
import type { ImageBatch, MaskBatch } from '../types.js';
import { defineNode, imageBatch, maskBatch } from './define.js';

const M = (v: unknown) => v as MaskBatch;

/** One grey-dilation (grow) or erosion (shrink) step with a 3×3 cross or box; edges repeat (scipy 'reflect'). */
function morph(m: MaskBatch, grow: boolean, box: boolean): MaskBatch {
  const { batch: B, height: H, width: W } = m;
  const out = new Float32Array(m.data.length);
  for (let b = 0; b < B; b++) {
    const o = b * H * W;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        let v = m.data[o + y * W + x];
        for (let dy = -1; dy <= 1; dy++) {
          for (let dx = -1; dx <= 1; dx++) {
            if (!box && dy !== 0 && dx !== 0) continue;
            const yy = Math.min(H - 1, Math.max(0, y + dy));
            const xx = Math.min(W - 1, Math.max(0, x + dx));
            const s = m.data[o + yy * W + xx];
            v = grow ? Math.max(v, s) : Math.min(v, s);
          }
        }
        out[o + y * W + x] = v;
      }
    }
  }
  return { ...m, data: out };
}

export const maskNodes = [
  defineNode({
    name: 'ImageToMask',
    displayName: 'Convert Image to Mask',
    description: '',
    category: 'mask',
    pythonModule: 'comfy_extras.nodes_mask',
    input: { required: { image: ['IMAGE'], channel: [['red', 'green', 'blue', 'alpha']] } },
    output: ['MASK'],
    async run(i) {
      const img = i.image as ImageBatch;
      const c = ['red', 'green', 'blue', 'alpha'].indexOf(String(i.channel));
      if (c >= img.channels) throw new Error(`the image has no ${String(i.channel)} channel`);
      const n = img.batch * img.height * img.width;
      const out = new Float32Array(n);
      for (let p = 0; p < n; p++) out[p] = img.data[p * img.channels + c];
      return { outputs: [maskBatch(img.batch, img.height, img.width, out)] };
    },
  }),
  defineNode({
    name: 'MaskToImage',
    displayName: 'Convert Mask to Image',
    description: '',
    category: 'mask',
    pythonModule: 'comfy_extras.nodes_mask',
    input: { required: { mask: ['MASK'] } },
    output: ['IMAGE'],
    async run(i) {
      const m = M(i.mask);
      const img = imageBatch(m.batch, m.height, m.width, 3);
      for (let p = 0; p < m.data.length; p++) img.data.fill(m.data[p], p * 3, p * 3 + 3);
      return { outputs: [img] };
    },
  }),
  defineNode({
    name: 'SolidMask',
    displayName: 'SolidMask',
    description: '',
    category: 'mask',
    pythonModule: 'comfy_extras.nodes_mask',
    input: {
      required: {
        value: ['FLOAT', { default: 1.0, min: 0.0, max: 1.0, step: 0.01 }],
        width: ['INT', { default: 512, min: 1, max: 16384, step: 1 }],
        height: ['INT', { default: 512, min: 1, max: 16384, step: 1 }],
      },
    },
    output: ['MASK'],
    async run(i) {
      const h = i.height as number;
      const w = i.width as number;
      return { outputs: [maskBatch(1, h, w, new Float32Array(h * w).fill(i.value as number))] };
    },
  }),
  defineNode({
    name: 'InvertMask',
    displayName: 'InvertMask',
    description: '',
    category: 'mask',
    pythonModule: 'comfy_extras.nodes_mask',
    input: { required: { mask: ['MASK'] } },
    output: ['MASK'],
    run: async (i) => ({ outputs: [{ ...M(i.mask), data: M(i.mask).data.map((v) => 1 - v) }] }),
  }),
  defineNode({
    name: 'GrowMask',
    displayName: 'GrowMask',
    description: '',
    category: 'mask',
    pythonModule: 'comfy_extras.nodes_mask',
    input: {
      required: {
        mask: ['MASK'],
        expand: ['INT', { default: 0, min: -16384, max: 16384, step: 1 }],
        tapered_corners: ['BOOLEAN', { default: true }],
      },
    },
    output: ['MASK'],
    async run(i) {
      let m = M(i.mask);
      const expand = i.expand as number;
      for (let k = 0; k < Math.abs(expand); k++) m = morph(m, expand > 0, !(i.tapered_corners as boolean));
      return { outputs: [m] };
    },
  }),
  defineNode({
    name: 'FeatherMask',
    displayName: 'FeatherMask',
    description: '',
    category: 'mask',
    pythonModule: 'comfy_extras.nodes_mask',
    input: {
      required: {
        mask: ['MASK'],
        left: ['INT', { default: 0, min: 0, max: 16384, step: 1 }],
        top: ['INT', { default: 0, min: 0, max: 16384, step: 1 }],
        right: ['INT', { default: 0, min: 0, max: 16384, step: 1 }],
        bottom: ['INT', { default: 0, min: 0, max: 16384, step: 1 }],
      },
    },
    output: ['MASK'],
    async run(i) {
      const m = M(i.mask);
      const { batch: B, height: H, width: W } = m;
      const out = Float32Array.from(m.data);
      const left = Math.min(i.left as number, W);
      const right = Math.min(i.right as number, W);
      const top = Math.min(i.top as number, H);
      const bottom = Math.min(i.bottom as number, H);
      // As ComfyUI indexes: column −x, so the first right/bottom step lands on column/row 0.
      const col = (c: number, f: number) => { for (let b = 0; b < B; b++) for (let y = 0; y < H; y++) out[(b * H + y) * W + c] *= f; };
      const row = (r: number, f: number) => { for (let b = 0; b < B; b++) for (let x = 0; x < W; x++) out[(b * H + r) * W + x] *= f; };
      for (let x = 0; x < left; x++) col(x, (x + 1) / left);
      for (let x = 0; x < right; x++) col((W - x) % W, (x + 1) / right);
      for (let y = 0; y < top; y++) row(y, (y + 1) / top);
      for (let y = 0; y < bottom; y++) row((H - y) % H, (y + 1) / bottom);
      return { outputs: [{ ...m, data: out }] };
    },
  }),
  defineNode({
    name: 'ThresholdMask',
    displayName: 'ThresholdMask',
    description: '',
    category: 'mask',
    pythonModule: 'comfy_extras.nodes_mask',
    input: { required: { mask: ['MASK'], value: ['FLOAT', { default: 0.5, min: 0.0, max: 1.0, step: 0.01 }] } },
    output: ['MASK'],
    run: async (i) => ({ outputs: [{ ...M(i.mask), data: M(i.mask).data.map((v) => (v > (i.value as number) ? 1 : 0)) }] }),
  }),
];
