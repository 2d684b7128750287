// Image post-processing (comfy_extras/nodes_post_processing.py): blend modes, Gaussian blur and
// unsharp-style sharpening with ComfyUI's kernels and reflect padding.
import type { ImageBatch } from '../types.js';
import { defineNode } from './define.js';
import { upscaleImage } from './resize.js';

const MODULE = 'comfy_extras.nodes_post_processing';
const I = (v: unknown) => v as ImageBatch;

/** ComfyUI's gaussian_kernel: a (2r+1)² grid on [−1, 1]², exp(−d²/2σ²), normalised. */
function gaussianKernel(size: number, sigma: number): Float64Array {
  const k = new Float64Array(size * size);
  const at = (i: number) => (size === 1 ? -1 : -1 + (2 * i) / (size - 1));
  let sum = 0;
  for (let i = 0; i < size; i++) {
    for (let j = 0; j < size; j++) {
      const d2 = at(i) ** 2 + at(j) ** 2;
      k[i * size + j] = Math.exp(-d2 / (2 * sigma * sigma));
      sum += k[i * size + j];
    }
  }
  return k.map((v) => v / sum);
}

/** torch 'reflect' padding index (the edge is not repeated). */
const reflect = (i: number, n: number) => {
  if (n === 1) return 0;
  let j = i;
  while (j < 0 || j >= n) j = j < 0 ? -j : 2 * (n - 1) - j;
  return j;
};

function convolve(img: ImageBatch, kernel: Float64Array, r: number): ImageBatch {
  const { batch: B, height: H, width: W, channels: C } = img;
  const size = 2 * r + 1;
  const out = new Float32Array(img.data.length);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        for (let c = 0; c < C; c++) {
          let s = 0;
          for (let dy = -r; dy <= r; dy++) {
            const yy = reflect(y + dy, H);
            for (let dx = -r; dx <= r; dx++) s += kernel[(dy + r) * size + dx + r] * img.data[((b * H + yy) * W + reflect(x + dx, W)) * C + c];
          }
          out[((b * H + y) * W + x) * C + c] = s;
        }
      }
    }
  }
  return { ...img, data: out };
}

const g = (x: number) => (x <= 0.25 ? ((16 * x - 12) * x + 4) * x : Math.sqrt(x));

const BLEND: Record<string, (a: number, b: number) => number> = {
  normal: (_a, b) => b,
  multiply: (a, b) => a * b,
  screen: (a, b) => 1 - (1 - a) * (1 - b),
  overlay: (a, b) => (a <= 0.5 ? 2 * a * b : 1 - 2 * (1 - a) * (1 - b)),
  soft_light: (a, b) => (b <= 0.5 ? a - (1 - 2 * b) * a * (1 - a) : a + (2 * b - 1) * (g(a) - a)),
  difference: (a, b) => a - b,
};

export const postprocessNodes = [
  defineNode({
    name: 'ImageBlend',
    displayName: null,
    description: '',
    category: 'image/postprocessing',
    pythonModule: MODULE,
    input: {
      required: {
        image1: ['IMAGE', {}],
        image2: ['IMAGE', {}],
        blend_factor: ['FLOAT', { default: 0.5, min: 0.0, max: 1.0, step: 0.01 }],
        blend_mode: ['COMBO', { multiselect: false, options: Object.keys(BLEND) }],
      },
    },
    output: ['IMAGE'],
    outputTooltips: [null],
    newApi: true,
    async run(i) {
      const a = I(i.image1);
      let b = I(i.image2);
      if (a.height !== b.height || a.width !== b.width) b = await upscaleImage(b, a.width, a.height, 'bicubic', 'center');
      const mode = BLEND[String(i.blend_mode)];
      if (!mode) throw new Error(`unknown blend mode '${String(i.blend_mode)}' (choose ${Object.keys(BLEND).join(', ')})`);
      const f = i.blend_factor as number;
      const data = a.data.map((v, k) => Math.min(1, Math.max(0, v * (1 - f) + mode(v, b.data[k % b.data.length]) * f)));
      return { outputs: [{ ...a, data }] };
    },
  }),
  defineNode({
    name: 'ImageSharpen',
    displayName: null,
    description: '',
    category: 'image/postprocessing',
    pythonModule: MODULE,
    input: {
      required: {
        image: ['IMAGE', {}],
        sharpen_radius: ['INT', { default: 1, min: 1, max: 31, step: 1 }],
        sigma: ['FLOAT', { default: 1.0, min: 0.1, max: 10.0, step: 0.01 }],
        alpha: ['FLOAT', { default: 1.0, min: 0.0, max: 5.0, step: 0.01 }],
      },
    },
    output: ['IMAGE'],
    outputTooltips: [null],
    newApi: true,
    async run(i) {
      const r = i.sharpen_radius as number;
      const size = 2 * r + 1;
      const k = gaussianKernel(size, i.sigma as number).map((v) => v * -((i.alpha as number) * 10));
      const sum = k.reduce((s, v) => s + v, 0);
      k[r * size + r] = k[r * size + r] - sum + 1;
      const out = convolve(I(i.image), k, r);
      return { outputs: [{ ...out, data: out.data.map((v) => Math.min(1, Math.max(0, v))) }] };
    },
  }),
  defineNode({
    name: 'ImageBlur',
    displayName: null,
    description: '',
    category: 'image/postprocessing',
    pythonModule: MODULE,
    input: {
      required: {
        image: ['IMAGE', {}],
        blur_radius: ['INT', { default: 1, min: 1, max: 31, step: 1 }],
        sigma: ['FLOAT', { default: 1.0, min: 0.1, max: 10.0, step: 0.1 }],
      },
    },
    output: ['IMAGE'],
    outputTooltips: [null],
    newApi: true,
    async run(i) {
      const r = i.blur_radius as number;
      return { outputs: [convolve(I(i.image), gaussianKernel(2 * r + 1, i.sigma as number), r)] };
    },
  }),
];
