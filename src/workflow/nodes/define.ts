// Shared pieces of the node declarations: the identity that types a declaration, ComfyUI's sampler
// and scheduler lists, and the IMAGE / MASK / LATENT conversions nodes need.
import { SAMPLER_NAMES as ALL_SAMPLERS } from '../../sampling/registry.js';
import { COMFY_SCHEDULERS } from '../../sampling/schedules.js';
import { Tensor } from '../../tensor/tensor.js';
import type { ImageBatch, MaskBatch, NodeDef } from '../types.js';

export const defineNode = (def: NodeDef): NodeDef => def;

/** ComfyUI's seed maximum 2^64 − 1, which JavaScript numbers (and JSON.parse) hold as 2^64. */
export const SEED_MAX = 2 ** 64;

/** ComfyUI's KSampler list: every sampler it has, in its order (latentkit's A1111-only ones left out). */
export const SAMPLER_NAMES: readonly string[] = ALL_SAMPLERS.filter((n) => n !== 'restart' && n !== 'plms');

/** ComfyUI's scheduler list, in its order. */
export const SCHEDULER_NAMES: readonly string[] = ['simple', 'sgm_uniform', 'karras', 'exponential', 'ddim_uniform', 'beta', 'normal', 'linear_quadratic', 'kl_optimal']
  .filter((s) => (COMFY_SCHEDULERS as readonly string[]).includes(s));

export function imageBatch(batch: number, height: number, width: number, channels = 3, data?: Float32Array): ImageBatch {
  return { batch, height, width, channels, data: data ?? new Float32Array(batch * height * width * channels) };
}

export function maskBatch(batch: number, height: number, width: number, data?: Float32Array): MaskBatch {
  return { batch, height, width, data: data ?? new Float32Array(batch * height * width) };
}

/** IMAGE [B, H, W, 3] in 0..1 → VAE input [B, 3, H, W] in −1..1. */
export function imageToVaeInput(img: ImageBatch): Tensor {
  const { batch: B, height: H, width: W, channels: C } = img;
  const out = new Float32Array(B * 3 * H * W);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < H * W; i++) {
      for (let c = 0; c < 3; c++) out[(b * 3 + c) * H * W + i] = Math.fround(img.data[(b * H * W + i) * C + c] * 2 - 1);
    }
  }
  return Tensor.f32([B, 3, H, W], out);
}

/** VAE output [B, 3, H, W] → IMAGE [B, H, W, 3], clamped to 0..1 as ComfyUI's VAE.decode does. */
export function vaeOutputToImage(t: Tensor): ImageBatch {
  const [B, C, H, W] = t.shape;
  const src = t.toFloat32Array();
  const out = new Float32Array(B * H * W * 3);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < 3; c++) {
      const base = (b * C + c) * H * W;
      for (let i = 0; i < H * W; i++) out[(b * H * W + i) * 3 + c] = Math.min(Math.max(Math.fround(Math.fround(src[base + i] + 1) / 2), 0), 1);
    }
  }
  return imageBatch(B, H, W, 3, out);
}

/** The first `batch` masks repeated to `batch` (ComfyUI's resize_to_batch_size for masks of batch 1). */
export function maskPlane(mask: MaskBatch, b: number): Float32Array {
  const per = mask.height * mask.width;
  const i = Math.min(b, mask.batch - 1);
  return mask.data.subarray(i * per, (i + 1) * per);
}
