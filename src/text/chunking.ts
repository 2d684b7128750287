// Weighted prompt segments → 77-token text-encoder windows, the way each tool fills them.
//
// A1111 (`tokenize_line`, modules/sd_hijack_clip.py): 75 tokens per chunk, BREAK closes a chunk,
// a full chunk gives the words after its last comma (within `comma_padding_backtrack` tokens) to
// the next chunk, textual-inversion vectors never straddle two chunks.
// ComfyUI (`SDTokenizer.tokenize_with_weights`, comfy/sd1_clip.py): each weighted segment and
// each `embedding:` word is one group; a group that does not fit moves whole to the next chunk
// unless it has ≥ 8 tokens, in which case it is cut exactly at the chunk end.
import type { ClipTokenizer } from './clip-tokenizer.js';
import { parseAttention, type AttentionSegment } from './prompt-a1111.js';
import { parseComfyWeights } from './prompt-comfy.js';
import { RE_WS } from './py.js';

/** Token vectors that stand in for a word (textual inversion). */
export interface EmbeddingVectors {
  readonly name: string;
  /** count × width values, row-major. */
  readonly vectors: Float32Array;
  readonly count: number;
  readonly width: number;
}

export const CHUNK_TOKENS = 75;
const COMMA = ',</w>';

export interface ChunkFix {
  /** Position of the first vector inside the chunk, counting from the token after BOS. */
  readonly offset: number;
  readonly embedding: EmbeddingVectors;
}

export interface PromptChunk {
  /** 77 ids: BOS, 75 tokens (EOS-padded), EOS. Embedding positions hold 0, as in A1111. */
  readonly tokens: number[];
  readonly multipliers: number[];
  readonly fixes: ChunkFix[];
}

/** Finds an embedding whose name's tokens start at `pos` (A1111 `find_embedding_at_position`). */
export interface EmbeddingMatcher {
  find(tokens: readonly number[], pos: number): { embedding: EmbeddingVectors; length: number } | undefined;
}

export interface A1111ChunkOptions {
  /** `comma_padding_backtrack`: 20 by default, 0 turns it off. */
  readonly commaBacktrack?: number;
  /** false = A1111's emphasis "None": brackets are literal text and BREAK is a word. */
  readonly parseEmphasis?: boolean;
  readonly embeddings?: EmbeddingMatcher;
}

export interface A1111Chunks {
  readonly chunks: PromptChunk[];
  /** A1111's token counter (the "42/75" number): 75 per closed chunk plus the last chunk's length. */
  readonly tokenCount: number;
}

/** `tokenize_line`: the chunks A1111 encodes for one prompt text (after schedules and AND are resolved). */
export function chunkA1111(tokenizer: ClipTokenizer, line: string, opts: A1111ChunkOptions = {}): A1111Chunks {
  const backtrack = opts.commaBacktrack ?? 20;
  const parsed: AttentionSegment[] = opts.parseEmphasis === false ? [[line, 1.0]] : parseAttention(line);
  const comma = tokenizer.tokenId(COMMA);
  const chunks: PromptChunk[] = [];
  let tokens: number[] = [];
  let mults: number[] = [];
  let fixes: ChunkFix[] = [];
  let tokenCount = 0;
  let lastComma = -1;

  const nextChunk = (isLast = false) => {
    tokenCount += isLast ? tokens.length : CHUNK_TOKENS;
    const pad = CHUNK_TOKENS - tokens.length;
    for (let i = 0; i < pad; i++) {
      tokens.push(tokenizer.eos);
      mults.push(1.0);
    }
    chunks.push({ tokens: [tokenizer.bos, ...tokens, tokenizer.eos], multipliers: [1.0, ...mults, 1.0], fixes });
    tokens = [];
    mults = [];
    fixes = [];
    lastComma = -1;
  };

  for (const [text, weight] of parsed) {
    if (text === 'BREAK' && weight === -1) {
      nextChunk();
      continue;
    }
    const ids = tokenizer.encode(text);
    let pos = 0;
    while (pos < ids.length) {
      const token = ids[pos];
      if (token === comma) {
        lastComma = tokens.length;
      } else if (backtrack !== 0 && tokens.length === CHUNK_TOKENS && lastComma !== -1 && tokens.length - lastComma <= backtrack) {
        const at = lastComma + 1;
        const relocTokens = tokens.slice(at);
        const relocMults = mults.slice(at);
        tokens = tokens.slice(0, at);
        mults = mults.slice(0, at);
        // A1111 leaves the fixes of moved embedding tokens with the closed chunk (their vectors land in its
        // padding, the moved placeholders stay token 0); reproduced as is, since it decides the image.
        nextChunk();
        tokens = relocTokens;
        mults = relocMults;
      }
      if (tokens.length === CHUNK_TOKENS) nextChunk();

      const hit = opts.embeddings?.find(ids, pos);
      if (!hit) {
        tokens.push(token);
        mults.push(weight);
        pos++;
        continue;
      }
      const n = hit.embedding.count;
      if (tokens.length + n > CHUNK_TOKENS) nextChunk();
      fixes.push({ offset: tokens.length, embedding: hit.embedding });
      for (let i = 0; i < n; i++) {
        tokens.push(0);
        mults.push(weight);
      }
      pos += hit.length;
    }
  }
  if (tokens.length || chunks.length === 0) nextChunk(true);
  return { chunks, tokenCount };
}

// ------------------------------------------------------------------------------ ComfyUI

/** One position of a ComfyUI token window: a token id or one row of an embedding. */
export type ComfyToken = number | { readonly embedding: EmbeddingVectors; readonly row: number };
export type ComfyTokenEntry = [token: ComfyToken, weight: number, wordId: number];

export interface ComfyChunkOptions {
  /** Token after EOS: SD1 (clip_l) pads with EOS, SD2 (clip_h) and SDXL clip_g with 0. */
  readonly padId?: number;
  /** Looks up `embedding:name`; ComfyUI only reads `embedding:` words when it has embedding folders. */
  readonly embeddings?: (name: string) => EmbeddingVectors | undefined;
  readonly warn?: (message: string) => void;
}

const MAX_LENGTH = 77;
const MAX_WORD_LENGTH = 8;
const IDENT = 'embedding:';
const SPLIT_EMBEDDING = new RegExp(`(?<=[${RE_WS}])${IDENT}`, 'u');
const PY_SPLIT = new RegExp(`[${RE_WS}]+`, 'u');

function tryEmbedding(name: string, lookup: (name: string) => EmbeddingVectors | undefined) {
  const words = name.split(PY_SPLIT).filter((w) => w !== '');
  let embeddingName = words[0] ?? '';
  let leftover = words.slice(1).join(' ');
  const bracket = embeddingName.search(/[<[]/);
  if (bracket >= 0) {
    leftover = embeddingName.slice(bracket) + (leftover ? ` ${leftover}` : '');
    embeddingName = embeddingName.slice(0, bracket);
  }
  let embed = embeddingName ? lookup(embeddingName) : undefined;
  if (!embed) {
    const stripped = embeddingName.replace(/^,+|,+$/g, '');
    if (stripped.length < embeddingName.length) {
      embed = stripped ? lookup(stripped) : undefined;
      return { embed, name: embeddingName, leftover: `${embeddingName.slice(stripped.length)} ${leftover}` };
    }
  }
  return { embed, name: embeddingName, leftover };
}

/** `tokenize_with_weights(prompt, return_word_ids=True)` for an SD1/SD2 CLIP tokenizer. */
export function chunkComfy(tokenizer: ClipTokenizer, prompt: string, opts: ComfyChunkOptions = {}): ComfyTokenEntry[][] {
  const pad = opts.padId ?? tokenizer.eos;
  const groups: [ComfyToken, number][][] = [];
  for (const [segment, weight] of parseComfyWeights(prompt)) {
    const parts = segment.split(SPLIT_EMBEDDING);
    const words = [parts[0], ...parts.slice(1).map((p) => IDENT + p)].filter((w) => w !== '');
    for (let word of words) {
      if (word.startsWith(IDENT) && opts.embeddings) {
        const { embed, name, leftover } = tryEmbedding(word.slice(IDENT.length).replace(/^\n+|\n+$/g, ''), opts.embeddings);
        if (!embed) opts.warn?.(`embedding:${name} does not exist, ignoring`);
        else groups.push(Array.from({ length: embed.count }, (_, row) => [{ embedding: embed, row }, weight]));
        if (leftover === '') continue;
        word = leftover;
      }
      groups.push(tokenizer.encode(word).map((t) => [t, weight]));
    }
  }

  const batches: ComfyTokenEntry[][] = [];
  let batch: ComfyTokenEntry[] = [[tokenizer.bos, 1.0, 0]];
  batches.push(batch);
  groups.forEach((group, i) => {
    const large = group.length >= MAX_WORD_LENGTH;
    let rest = group;
    while (rest.length > 0) {
      if (rest.length + batch.length > MAX_LENGTH - 1) {
        const remaining = MAX_LENGTH - batch.length - 1;
        if (large) {
          for (const [t, w] of rest.slice(0, remaining)) batch.push([t, w, i + 1]);
          batch.push([tokenizer.eos, 1.0, 0]);
          rest = rest.slice(remaining);
        } else {
          batch.push([tokenizer.eos, 1.0, 0]);
          for (let k = 0; k < remaining; k++) batch.push([pad, 1.0, 0]);
        }
        batch = [[tokenizer.bos, 1.0, 0]];
        batches.push(batch);
      } else {
        for (const [t, w] of rest) batch.push([t, w, i + 1]);
        rest = [];
      }
    }
  });
  batch.push([tokenizer.eos, 1.0, 0]);
  while (batch.length < MAX_LENGTH) batch.push([pad, 1.0, 0]);
  return batches;
}
