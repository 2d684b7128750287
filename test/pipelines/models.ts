import { fileURLToPath } from 'node:url';
import { loadCheckpoint } from '../../src/models/checkpoint.js';
import type { StableDiffusionModel } from '../../src/models/sd-model.js';
import { ClipTokenizer } from '../../src/text/clip-tokenizer.js';
import { REF } from '../ref.js';

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
  tokenizer ??= ClipTokenizer.load(fileURLToPath(new URL('../../../shared/clip/', import.meta.url)));
  return tokenizer;
}
