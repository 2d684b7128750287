import { writeSafetensors } from '../../src/formats/safetensors.js';
import { loadCheckpoint } from '../../src/models/checkpoint.js';
import { Tensor } from '../../src/tensor/tensor.js';
import type { StableDiffusionModel } from '../../src/models/sd-model.js';
import { ClipTokenizer } from '../../src/text/clip-tokenizer.js';
import { CLIP_DIR, REF } from '../ref.js';

/** The tiny reference checkpoints with the head counts their configs state (weights cannot tell). */
export const TINY_OPTIONS = {
  'tiny-sd1': { unetHeads: 2, textHeads: 2 },
  'tiny-sd2': { unetHeadWidth: 16, textHeads: 2 },
} as const;

export type TinyName = keyof typeof TINY_OPTIONS;

export function loadTiny(name: TinyName): Promise<StableDiffusionModel> {
  return loadCheckpoint(`${REF}/ckpt/${name}.safetensors`, TINY_OPTIONS[name]);
}

let tokenizer: Promise<ClipTokenizer> | undefined;
export function testTokenizer(): Promise<ClipTokenizer> {
  tokenizer ??= ClipTokenizer.load(CLIP_DIR);
  return tokenizer;
}

/** A small kohya LoRA for tiny-sd1: one UNet projection (proj_in of the first attention, [64, 64, 1, 1]). */
export async function writeTinyLora(path: string): Promise<void> {
  const k = 'lora_unet_down_blocks_1_attentions_0_proj_in';
  const rank = 2;
  const down = Tensor.f32([rank, 64, 1, 1], Float32Array.from({ length: rank * 64 }, (_, i) => Math.sin(i) * 0.3));
  const up = Tensor.f32([64, rank, 1, 1], Float32Array.from({ length: 64 * rank }, (_, i) => Math.cos(i) * 0.3));
  await writeSafetensors(path, { [`${k}.lora_down.weight`]: down, [`${k}.lora_up.weight`]: up, [`${k}.alpha`]: Tensor.f32([], [rank]) });
}
