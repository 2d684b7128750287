// Prompt text → text-encoder hidden states. Prompts longer than 75 tokens are split into 75-token
// chunks, each wrapped in BOS/EOS and padded to 77, encoded separately and concatenated along the
// tokens, as A1111 does; the shorter of cond / uncond is padded with empty chunks to match.
import type { StableDiffusionModel } from '../models/sd-model.js';
import type { ClipTokenizer } from '../text/clip-tokenizer.js';
import { Tensor } from '../tensor/tensor.js';

const CHUNK = 75;

export function promptChunks(tokenizer: ClipTokenizer, text: string, padId: number, minChunks = 1): number[][] {
  const ids = tokenizer.encode(text);
  const chunks: number[][] = [];
  for (let i = 0; i < ids.length || chunks.length < minChunks; i += CHUNK) {
    const part = ids.slice(i, i + CHUNK);
    chunks.push([tokenizer.bos, ...part, tokenizer.eos, ...new Array(CHUNK - part.length).fill(padId)]);
  }
  return chunks;
}

/** Hidden states [1, 77·chunks, W] for one prompt. */
export async function encodePrompt(model: StableDiffusionModel, tokenizer: ClipTokenizer, text: string, clipSkip: number, minChunks = 1): Promise<Tensor> {
  const chunks = promptChunks(tokenizer, text, model.padTokenId, minChunks);
  const ids = new Tensor('i64', [chunks.length, 77], BigInt64Array.from(chunks.flat(), (v) => BigInt(v)));
  const hidden = await model.encodeText(ids, clipSkip);
  const w = hidden.shape[2];
  return Tensor.f32([1, chunks.length * 77, w], hidden.toFloat32Array());
}

export function tokenCount(tokenizer: ClipTokenizer, text: string): number {
  return tokenizer.encode(text).length;
}

/** Repeats [1, T, W] to [B, T, W]. */
export function repeatBatch(t: Tensor, batch: number): Tensor {
  const src = t.toFloat32Array();
  const out = new Float32Array(src.length * batch);
  for (let b = 0; b < batch; b++) out.set(src, b * src.length);
  return Tensor.f32([batch, ...t.shape.slice(1)], out);
}

/** Cond and uncond for a batch, with the same number of chunks. */
export async function encodePair(model: StableDiffusionModel, tokenizer: ClipTokenizer, prompt: string, negative: string, clipSkip: number, batch: number): Promise<{ cond: Tensor; uncond: Tensor }> {
  const n = Math.max(1, Math.ceil(tokenCount(tokenizer, prompt) / CHUNK), Math.ceil(tokenCount(tokenizer, negative) / CHUNK));
  const cond = await encodePrompt(model, tokenizer, prompt, clipSkip, n);
  const uncond = await encodePrompt(model, tokenizer, negative, clipSkip, n);
  return { cond: repeatBatch(cond, batch), uncond: repeatBatch(uncond, batch) };
}
