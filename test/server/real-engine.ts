// The server on the real workflow engine and the tiny SD1 checkpoint of the reference folder
// (LATENTKIT_REF_DIR, default <checkout>/../shared/ref); suites skip with one line when it is absent.
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkflowEngine } from '../../src/workflow/engine.js';
import { missingRef, REF, refTests } from '../ref.js';
import { startServer, tempRoot, type TestServer } from './helpers.js';

export const TINY_SD1 = join(REF, 'ckpt', 'tiny-sd1-std.safetensors');
/** Why the tiny checkpoint is not usable here, or undefined. */
export const NO_REF = missingRef([TINY_SD1]);
/** node:test's `test` for a suite that needs the tiny checkpoint (skipped as one line without it). */
export const refTest = (suite: string) => refTests(suite, [TINY_SD1]);

export const CKPT_NAME = 'tiny-sd1.safetensors';

/** A server whose models folder holds the tiny checkpoint under CKPT_NAME. */
export async function startRealServer(opts: { previewMethod?: 'none' | 'latent2rgb' | 'taesd' } = {}): Promise<TestServer> {
  const root = await tempRoot();
  await mkdir(join(root, 'models', 'checkpoints'), { recursive: true });
  await symlink(TINY_SD1, join(root, 'models', 'checkpoints', CKPT_NAME));
  return startServer({ root, engine: (host) => new WorkflowEngine({ host, previewMethod: opts.previewMethod ?? 'none' }) });
}

/** ComfyUI's default txt2img graph, small: 64×64, `steps` steps on the tiny checkpoint. */
export function txt2img(seed: number, opts: { steps?: number; prefix?: string; text?: string; size?: number } = {}): Record<string, unknown> {
  const size = opts.size ?? 64;
  return {
    3: { class_type: 'KSampler', inputs: { cfg: 8, denoise: 1, latent_image: ['5', 0], model: ['4', 0], negative: ['7', 0], positive: ['6', 0], sampler_name: 'euler', scheduler: 'normal', seed, steps: opts.steps ?? 2 } },
    4: { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: CKPT_NAME } },
    5: { class_type: 'EmptyLatentImage', inputs: { batch_size: 1, height: size, width: size } },
    6: { class_type: 'CLIPTextEncode', inputs: { clip: ['4', 1], text: opts.text ?? 'a red fox in the snow' } },
    7: { class_type: 'CLIPTextEncode', inputs: { clip: ['4', 1], text: 'blurry' } },
    8: { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    9: { class_type: 'SaveImage', inputs: { filename_prefix: opts.prefix ?? 'ComfyUI', images: ['8', 0] } },
  };
}
