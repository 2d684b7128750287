// IMAGE nodes: saving (output and temp folders, with the graph in PNG chunks), loading from the input
// folder, resizing, model upscaling, outpaint padding and the simple image operations.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { upscaleTensor } from '../../pipelines/upscale.js';
import { Tensor } from '../../tensor/tensor.js';
import type { EngineHost, ImageBatch, NodeContext } from '../types.js';
import type { UpscaleModelValue } from '../values.js';
import { defineNode, imageBatch, maskBatch } from './define.js';
import { IMAGE_UPSCALE_METHODS, upscaleImage } from './resize.js';

async function save(images: ImageBatch, prefix: string, ctx: NodeContext, type: 'output' | 'temp', level: number) {
  const files = await ctx.host.saveImages({
    images, prefix, type, compressLevel: level, pngInfo: { prompt: ctx.prompt, ...(ctx.extraPngInfo ?? {}) },
  });
  return { outputs: [], ui: { images: files } };
}

/** IS_CHANGED of the file readers: the file's hash, so a replaced file re-runs the node. */
async function fileHash(inputs: Record<string, unknown>, host: EngineHost): Promise<string> {
  try {
    return createHash('sha256').update(await readFile(host.resolveFile('input', String(inputs.image)))).digest('hex');
  } catch {
    return 'missing';
  }
}

const imageExists = {
  inputs: ['image'],
  check(inputs: Record<string, unknown>, host: EngineHost): string | undefined {
    try {
      host.resolveFile('input', String(inputs.image));
      return undefined;
    } catch {
      return `Invalid image file: ${String(inputs.image)}`;
    }
  },
};

function randomLetters(n: number): string {
  const letters = 'abcdefghijklmnopqrstupvxyz';
  return Array.from({ length: n }, () => letters[Math.floor(Math.random() * letters.length)]).join('');
}

export const imageNodes = [
  defineNode({
    name: 'SaveImage',
    displayName: 'Save Image',
    description: 'Saves the input images to your ComfyUI output directory.',
    category: 'image',
    input: {
      required: {
        images: ['IMAGE', { tooltip: 'The images to save.' }],
        filename_prefix: ['STRING', { default: 'ComfyUI', tooltip: 'The prefix for the file to save. This may include formatting information such as %date:yyyy-MM-dd% or %Empty Latent Image.width% to include values from nodes.' }],
      },
      hidden: { prompt: 'PROMPT', extra_pnginfo: 'EXTRA_PNGINFO' },
    },
    output: [],
    outputNode: true,
    run: (i, ctx) => save(i.images as ImageBatch, String(i.filename_prefix), ctx, 'output', 4),
  }),
  defineNode({
    name: 'PreviewImage',
    displayName: 'Preview Image',
    description: 'Saves the input images to your ComfyUI output directory.',
    category: 'image',
    input: {
      required: { images: ['IMAGE'] },
      hidden: { prompt: 'PROMPT', extra_pnginfo: 'EXTRA_PNGINFO' },
    },
    output: [],
    outputNode: true,
    run: (i, ctx) => save(i.images as ImageBatch, `ComfyUI_temp_${randomLetters(5)}`, ctx, 'temp', 1),
  }),
  defineNode({
    name: 'LoadImage',
    displayName: 'Load Image',
    description: '',
    category: 'image',
    input: { required: { image: [{ files: 'input' }, { image_upload: true }] } },
    output: ['IMAGE', 'MASK'],
    changed: fileHash,
    validateInputs: imageExists,
    async run(i, ctx) {
      const { image, alpha } = await ctx.host.readImage(String(i.image));
      // MASK = 1 − alpha; without alpha ComfyUI returns a 64×64 zero mask.
      const mask = alpha ? maskBatch(1, image.height, image.width, alpha.map((a) => 1 - a)) : maskBatch(1, 64, 64);
      return { outputs: [image, mask] };
    },
  }),
  defineNode({
    name: 'LoadImageMask',
    displayName: 'Load Image (as Mask)',
    description: '',
    category: 'mask',
    input: {
      required: {
        image: [{ files: 'input' }, { image_upload: true }],
        channel: [['alpha', 'red', 'green', 'blue']],
      },
    },
    output: ['MASK'],
    changed: fileHash,
    validateInputs: imageExists,
    async run(i, ctx) {
      const { image, alpha } = await ctx.host.readImage(String(i.image));
      const channel = String(i.channel);
      const n = image.height * image.width;
      if (channel === 'alpha') {
        return { outputs: [alpha ? maskBatch(1, image.height, image.width, alpha.map((a) => 1 - a)) : maskBatch(1, 64, 64)] };
      }
      const c = ['red', 'green', 'blue'].indexOf(channel);
      const out = new Float32Array(n);
      for (let p = 0; p < n; p++) out[p] = image.data[p * image.channels + c];
      return { outputs: [maskBatch(1, image.height, image.width, out)] };
    },
  }),
  defineNode({
    name: 'ImageScale',
    displayName: 'Upscale Image',
    description: '',
    category: 'image/upscaling',
    input: {
      required: {
        image: ['IMAGE'],
        upscale_method: [IMAGE_UPSCALE_METHODS],
        width: ['INT', { default: 512, min: 0, max: 16384, step: 1 }],
        height: ['INT', { default: 512, min: 0, max: 16384, step: 1 }],
        crop: [['disabled', 'center']],
      },
    },
    output: ['IMAGE'],
    async run(i) {
      const img = i.image as ImageBatch;
      let width = i.width as number;
      let height = i.height as number;
      if (width === 0 && height === 0) return { outputs: [img] };
      if (width === 0) width = Math.max(1, Math.round((img.width * height) / img.height));
      else if (height === 0) height = Math.max(1, Math.round((img.height * width) / img.width));
      return { outputs: [await upscaleImage(img, width, height, String(i.upscale_method), String(i.crop))] };
    },
  }),
  defineNode({
    name: 'ImageScaleBy',
    displayName: 'Upscale Image By',
    description: '',
    category: 'image/upscaling',
    input: {
      required: {
        image: ['IMAGE'],
        upscale_method: [IMAGE_UPSCALE_METHODS],
        scale_by: ['FLOAT', { default: 1.0, min: 0.01, max: 8.0, step: 0.01 }],
      },
    },
    output: ['IMAGE'],
    async run(i) {
      const img = i.image as ImageBatch;
      const s = i.scale_by as number;
      return { outputs: [await upscaleImage(img, Math.round(img.width * s), Math.round(img.height * s), String(i.upscale_method), 'disabled')] };
    },
  }),
  defineNode({
    name: 'ImageScaleToTotalPixels',
    displayName: null,
    description: '',
    category: 'image/upscaling',
    pythonModule: 'comfy_extras.nodes_post_processing',
    input: {
      required: {
        image: ['IMAGE', {}],
        upscale_method: ['COMBO', { multiselect: false, options: IMAGE_UPSCALE_METHODS }],
        megapixels: ['FLOAT', { default: 1.0, min: 0.01, max: 16.0, step: 0.01 }],
      },
    },
    output: ['IMAGE'],
    outputTooltips: [null],
    newApi: true,
    async run(i) {
      const img = i.image as ImageBatch;
      const s = Math.sqrt(((i.megapixels as number) * 1024 * 1024) / (img.width * img.height));
      return { outputs: [await upscaleImage(img, Math.round(img.width * s), Math.round(img.height * s), String(i.upscale_method), 'disabled')] };
    },
  }),
  defineNode({
    name: 'ImageUpscaleWithModel',
    displayName: 'Upscale Image (using Model)',
    description: '',
    category: 'image/upscaling',
    pythonModule: 'comfy_extras.nodes_upscale_model',
    input: { required: { upscale_model: ['UPSCALE_MODEL', {}], image: ['IMAGE', {}] } },
    output: ['IMAGE'],
    outputTooltips: [null],
    newApi: true,
    async run(i, ctx) {
      const model = i.upscale_model as UpscaleModelValue;
      const img = i.image as ImageBatch;
      const { height: H, width: W, channels: C } = img;
      const s = model.scale;
      const out = imageBatch(img.batch, H * s, W * s, 3);
      for (let b = 0; b < img.batch; b++) {
        const x = new Float32Array(3 * H * W);
        for (let p = 0; p < H * W; p++) for (let c = 0; c < 3; c++) x[c * H * W + p] = img.data[(b * H * W + p) * C + c];
        ctx.checkInterrupted();
        const y = (await upscaleTensor(model, Tensor.f32([1, 3, H, W], x), { tile: 512, overlap: 32, onTile: (d, t) => ctx.progress(d, t) })).toFloat32Array();
        const n = H * s * W * s;
        for (let p = 0; p < n; p++) for (let c = 0; c < 3; c++) out.data[(b * n + p) * 3 + c] = Math.min(1, Math.max(0, y[c * n + p]));
      }
      return { outputs: [out] };
    },
  }),
  defineNode({
    name: 'ImagePadForOutpaint',
    displayName: 'Pad Image for Outpainting',
    description: '',
    category: 'image',
    input: {
      required: {
        image: ['IMAGE'],
        left: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
        top: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
        right: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
        bottom: ['INT', { default: 0, min: 0, max: 16384, step: 8 }],
        feathering: ['INT', { default: 40, min: 0, max: 16384, step: 1 }],
      },
    },
    output: ['IMAGE', 'MASK'],
    async run(i) {
      const img = i.image as ImageBatch;
      const [left, top, right, bottom, f] = ['left', 'top', 'right', 'bottom', 'feathering'].map((k) => i[k] as number);
      const { batch: B, height: H, width: W, channels: C } = img;
      const NH = H + top + bottom;
      const NW = W + left + right;
      const out = imageBatch(B, NH, NW, C, new Float32Array(B * NH * NW * C).fill(0.5));
      for (let b = 0; b < B; b++) {
        for (let y = 0; y < H; y++) out.data.set(img.data.subarray(((b * H + y) * W) * C, ((b * H + y + 1) * W) * C), ((b * NH + y + top) * NW + left) * C);
      }
      const mask = maskBatch(1, NH, NW, new Float32Array(NH * NW).fill(1));
      const feather = f > 0 && f * 2 < H && f * 2 < W;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          let v = 0;
          if (feather) {
            const d = Math.min(top ? y : H, bottom ? H - y : H, left ? x : W, right ? W - x : W);
            if (d < f) v = ((f - d) / f) ** 2;
          }
          mask.data[(y + top) * NW + x + left] = v;
        }
      }
      return { outputs: [out, mask] };
    },
  }),
  defineNode({
    name: 'ImageInvert',
    displayName: 'Invert Image',
    description: '',
    category: 'image',
    input: { required: { image: ['IMAGE'] } },
    output: ['IMAGE'],
    async run(i) {
      const img = i.image as ImageBatch;
      return { outputs: [{ ...img, data: img.data.map((v) => 1 - v) }] };
    },
  }),
  defineNode({
    name: 'ImageBatch',
    displayName: 'Batch Images',
    description: '',
    category: 'image',
    input: { required: { image1: ['IMAGE'], image2: ['IMAGE'] } },
    output: ['IMAGE'],
    async run(i) {
      const a = i.image1 as ImageBatch;
      let b = i.image2 as ImageBatch;
      if (a.height !== b.height || a.width !== b.width) b = await upscaleImage(b, a.width, a.height, 'bilinear', 'center');
      if (a.channels !== b.channels) throw new Error(`cannot batch images with ${a.channels} and ${b.channels} channels`);
      const data = new Float32Array(a.data.length + b.data.length);
      data.set(a.data);
      data.set(b.data, a.data.length);
      return { outputs: [imageBatch(a.batch + b.batch, a.height, a.width, a.channels, data)] };
    },
  }),
  defineNode({
    name: 'EmptyImage',
    displayName: 'EmptyImage',
    description: '',
    category: 'image',
    input: {
      required: {
        width: ['INT', { default: 512, min: 1, max: 16384, step: 1 }],
        height: ['INT', { default: 512, min: 1, max: 16384, step: 1 }],
        batch_size: ['INT', { default: 1, min: 1, max: 4096 }],
        color: ['INT', { default: 0, min: 0, max: 16777215, step: 1, display: 'color' }],
      },
    },
    output: ['IMAGE'],
    async run(i) {
      const color = i.color as number;
      const rgb = [(color >> 16) & 0xff, (color >> 8) & 0xff, color & 0xff].map((v) => v / 255);
      const img = imageBatch(i.batch_size as number, i.height as number, i.width as number, 3);
      for (let p = 0; p < img.data.length; p++) img.data[p] = rgb[p % 3];
      return { outputs: [img] };
    },
  }),
  defineNode({
    name: 'ImageCrop',
    displayName: 'Image Crop',
    description: '',
    category: 'image/transform',
    pythonModule: 'comfy_extras.nodes_images',
    input: {
      required: {
        image: ['IMAGE'],
        width: ['INT', { default: 512, min: 1, max: 16384, step: 1 }],
        height: ['INT', { default: 512, min: 1, max: 16384, step: 1 }],
        x: ['INT', { default: 0, min: 0, max: 16384, step: 1 }],
        y: ['INT', { default: 0, min: 0, max: 16384, step: 1 }],
      },
    },
    output: ['IMAGE'],
    async run(i) {
      const img = i.image as ImageBatch;
      const x = Math.min(i.x as number, img.width - 1);
      const y = Math.min(i.y as number, img.height - 1);
      const toX = Math.min(img.width, (i.width as number) + x);
      const toY = Math.min(img.height, (i.height as number) + y);
      const w = toX - x;
      const h = toY - y;
      const C = img.channels;
      const out = imageBatch(img.batch, h, w, C);
      for (let b = 0; b < img.batch; b++) {
        for (let yy = 0; yy < h; yy++) {
          const src = ((b * img.height + y + yy) * img.width + x) * C;
          out.data.set(img.data.subarray(src, src + w * C), ((b * h + yy) * w) * C);
        }
      }
      return { outputs: [out] };
    },
  }),
];
