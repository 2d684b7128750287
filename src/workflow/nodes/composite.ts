// ImageCompositeMasked and LatentCompositeMasked (comfy_extras/nodes_mask.py `composite`): paste a
// source into a destination at x, y (pixels; ÷8 for latents), through an optional mask resized to the source.
import { interpolate } from '../../pipelines/masks.js';
import type { ImageBatch, MaskBatch } from '../types.js';
import type { LatentValue } from '../values.js';
import { defineNode } from './define.js';
import { fromPlanar, toPlanar } from './resize.js';

interface Planes { data: Float32Array; B: number; C: number; H: number; W: number }

function composite(dst: Planes, src: Planes, x: number, y: number, mask: MaskBatch | undefined, multiplier: number, resize: boolean): Float32Array {
  let s = src;
  if (resize && (src.H !== dst.H || src.W !== dst.W)) {
    s = { ...src, H: dst.H, W: dst.W, data: Float32Array.from(interpolate(src.data, src.B * src.C, src.H, src.W, dst.H, dst.W, 'bilinear')) };
  }
  const left = Math.floor(Math.min(x, dst.W * multiplier) / multiplier);
  const top = Math.floor(Math.min(y, dst.H * multiplier) / multiplier);
  let m: Float32Array | undefined;
  if (mask) m = Float32Array.from(interpolate(mask.data, mask.batch, mask.height, mask.width, s.H, s.W, 'bilinear'));
  const out = Float32Array.from(dst.data);
  const vh = Math.min(s.H, dst.H - top);
  const vw = Math.min(s.W, dst.W - left);
  for (let b = 0; b < dst.B; b++) {
    const sb = b % s.B;
    const mb = mask ? Math.min(b, mask.batch - 1) : 0;
    for (let c = 0; c < dst.C; c++) {
      for (let yy = 0; yy < vh; yy++) {
        for (let xx = 0; xx < vw; xx++) {
          const mv = m ? m[(mb * s.H + yy) * s.W + xx] : 1;
          const k = ((b * dst.C + c) * dst.H + top + yy) * dst.W + left + xx;
          out[k] = mv * s.data[((sb * s.C + c) * s.H + yy) * s.W + xx] + (1 - mv) * out[k];
        }
      }
    }
  }
  return out;
}

export const compositeNodes = [
  defineNode({
    name: 'LatentCompositeMasked',
    displayName: 'LatentCompositeMasked',
    description: '',
    category: 'latent',
    pythonModule: 'comfy_extras.nodes_mask',
    input: {
      required: {
        destination: ['LATENT'],
        source: ['LATENT'],
        x: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
        y: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
        resize_source: ['BOOLEAN', { default: false }],
      },
      optional: { mask: ['MASK'] },
    },
    output: ['LATENT'],
    async run(i) {
      const d = i.destination as LatentValue;
      const s = i.source as LatentValue;
      const P = (l: LatentValue): Planes => ({ data: l.samples, B: l.shape[0], C: l.shape[1], H: l.shape[2], W: l.shape[3] });
      const samples = composite(P(d), P(s), i.x as number, i.y as number, i.mask as MaskBatch | undefined, 8, i.resize_source as boolean);
      return { outputs: [{ ...d, samples }] };
    },
  }),
  defineNode({
    name: 'ImageCompositeMasked',
    displayName: 'ImageCompositeMasked',
    description: '',
    category: 'image',
    pythonModule: 'comfy_extras.nodes_mask',
    input: {
      required: {
        destination: ['IMAGE'],
        source: ['IMAGE'],
        x: ['INT', { default: 0, min: 0, max: 16384, step: 1 }],
        y: ['INT', { default: 0, min: 0, max: 16384, step: 1 }],
        resize_source: ['BOOLEAN', { default: false }],
      },
      optional: { mask: ['MASK'] },
    },
    output: ['IMAGE'],
    async run(i) {
      const d = i.destination as ImageBatch;
      const s = i.source as ImageBatch;
      const P = (img: ImageBatch): Planes => ({ data: toPlanar(img), B: img.batch, C: img.channels, H: img.height, W: img.width });
      const C = Math.min(d.channels, s.channels);
      if (d.channels !== s.channels) throw new Error(`cannot composite a ${s.channels}-channel image onto a ${C}-channel one`);
      const out = composite(P(d), P(s), i.x as number, i.y as number, i.mask as MaskBatch | undefined, 1, i.resize_source as boolean);
      return { outputs: [fromPlanar(out, d.batch, d.channels, d.height, d.width)] };
    },
  }),
];
