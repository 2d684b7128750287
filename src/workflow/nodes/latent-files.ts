// SaveLatent / LoadLatent: latents as ComfyUI shares them — a `.latent` safetensors file with
// `latent_tensor` (VAE space) and the `latent_format_version_0` marker, the graph in its metadata.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { openSafetensors, serializeSafetensors } from '../../formats/safetensors.js';
import { Tensor } from '../../tensor/tensor.js';
import { pythonJson } from '../files.js';
import type { EngineHost } from '../types.js';
import type { LatentValue } from '../values.js';
import { defineNode } from './define.js';

/** Files from before the format marker hold latents still multiplied by the SD1 scale factor. */
const OLD_FORMAT_SCALE = 1 / 0.18215;

export const latentFileNodes = [
  defineNode({
    name: 'SaveLatent',
    displayName: 'SaveLatent',
    description: '',
    category: '_for_testing',
    input: {
      required: { samples: ['LATENT'], filename_prefix: ['STRING', { default: 'latents/ComfyUI' }] },
      hidden: { prompt: 'PROMPT', extra_pnginfo: 'EXTRA_PNGINFO' },
    },
    output: [],
    outputNode: true,
    async run(i, ctx) {
      const l = i.samples as LatentValue;
      const metadata: Record<string, string> = { prompt: pythonJson(ctx.prompt) };
      for (const [k, v] of Object.entries(ctx.extraPngInfo ?? {})) metadata[k] = pythonJson(v);
      const data = serializeSafetensors({ latent_tensor: Tensor.f32(l.shape, l.samples), latent_format_version_0: Tensor.f32([0]) }, metadata);
      const saved = await ctx.host.saveFile({ prefix: String(i.filename_prefix), extension: 'latent', data });
      return { outputs: [], ui: { latents: [saved] } };
    },
  }),
  defineNode({
    name: 'LoadLatent',
    displayName: 'LoadLatent',
    description: '',
    category: '_for_testing',
    input: { required: { latent: [{ files: 'input_latents' }] } },
    output: ['LATENT'],
    async changed(inputs: Record<string, unknown>, host: EngineHost) {
      try {
        return createHash('sha256').update(await readFile(host.resolveFile('input_latents', String(inputs.latent)))).digest('hex');
      } catch {
        return 'missing';
      }
    },
    validateInputs: {
      inputs: ['latent'],
      check(inputs, host) {
        try {
          host.resolveFile('input_latents', String(inputs.latent));
          return undefined;
        } catch {
          return `Invalid latent file: ${String(inputs.latent)}`;
        }
      },
    },
    async run(i, ctx) {
      const path = ctx.host.resolveFile('input_latents', String(i.latent));
      const sd = await openSafetensors(path);
      try {
        if (!sd.info('latent_tensor')) throw new Error(`${path}: no 'latent_tensor' (not a ComfyUI .latent file)`);
        const t = await sd.read('latent_tensor');
        if (t.shape.length !== 4) throw new Error(`${path}: latent_tensor has shape [${t.shape.join(', ')}], expected [B, C, h, w]`);
        const scale = sd.info('latent_format_version_0') ? 1 : OLD_FORMAT_SCALE;
        const samples = Float32Array.from(t.toFloat32Array(), (v) => v * scale);
        return { outputs: [{ samples, shape: t.shape as unknown as LatentValue['shape'] } satisfies LatentValue] };
      } finally {
        await sd.close();
      }
    },
  }),
];
