// The CLIP byte-level BPE tokenizer, id for id the same as openai/CLIP's simple_tokenizer.py
// (which SD1's HF CLIPTokenizer with ftfy and SD2's open_clip.tokenize also reproduce).

import { clipCleanText, PY_WHITESPACE_CLASS } from './text-clean.js';
import {
  bytesToUnicode,
  ClipVocabError,
  EOT_TOKEN,
  locateClipVocab,
  readVocabFiles,
  SOT_TOKEN,
  type ClipVocab,
  type ClipVocabFiles,
  type LocateClipVocabOptions,
} from './vocab.js';

/** Tokens of one text-encoder window: BOS + 75 + EOS. */
export const CLIP_CONTEXT_LENGTH = 77;

export interface Tokenize77Options {
  /** Id for the positions after EOS: SD1 (HF CLIPTokenizer) uses EOS 49407, SD2 (open_clip) 0. Default: EOS. */
  padId?: number;
  /** Keep the first 75 tokens of a longer prompt (default). With false, a longer prompt is an error. */
  truncate?: boolean;
}

// openai's pattern, compiled with IGNORECASE; `\s` must be Python's set (see text-clean.ts).
const PRE_TOKEN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${PY_WHITESPACE_CLASS}\\p{L}\\p{N}]+`,
  'giu',
);

const BYTE_ENCODER: string[] = (() => {
  const t = new Array<string>(256);
  for (const [b, c] of bytesToUnicode()) t[b] = c;
  return t;
})();
const BYTE_DECODER = new Map<string, number>(bytesToUnicode().map(([b, c]) => [c, b]));

// Long-running servers see unbounded distinct words; the cache is dropped when it gets this big.
const CACHE_LIMIT = 200_000;

export class ClipTokenizer {
  readonly bos: number;
  readonly eos: number;
  readonly source: string;
  private readonly encoder: Map<string, number>;
  private readonly decoder: string[];
  private readonly ranks: Map<string, number>;
  private cache = new Map<string, string[]>();
  private readonly utf8 = new TextEncoder();

  constructor(vocab: ClipVocab) {
    this.encoder = vocab.encoder;
    this.source = vocab.source;
    this.decoder = [];
    for (const [token, id] of vocab.encoder) this.decoder[id] = token;
    // Symbols never contain a space (the byte table maps 0x20 to U+0120), so "a b" is a safe key.
    this.ranks = new Map(vocab.merges.map(([a, b], i) => [`${a} ${b}`, i]));
    this.bos = vocab.encoder.get(SOT_TOKEN)!;
    this.eos = vocab.encoder.get(EOT_TOKEN)!;
  }

  /**
   * Loads the vocabulary from a path (folder, vocab.json/merges.txt, or the .gz), from located
   * files, or by searching as `locateClipVocab` does.
   */
  static async load(from: string | ClipVocabFiles | LocateClipVocabOptions = {}): Promise<ClipTokenizer> {
    const files = typeof from === 'string' ? locateClipVocab({ path: from }) : 'kind' in from ? from : locateClipVocab(from);
    return new ClipTokenizer(await readVocabFiles(files));
  }

  get vocabSize(): number {
    return this.decoder.length;
  }

  /** Token string of an id (e.g. `cat</w>`). */
  tokenString(id: number): string {
    const s = this.decoder[id];
    if (s === undefined) throw new RangeError(`token id ${id} is not in the CLIP vocabulary (0..${this.decoder.length - 1})`);
    return s;
  }

  /** Id of a token string, or undefined. */
  tokenId(token: string): number | undefined {
    return this.encoder.get(token);
  }

  /** The cleaned text the pre-tokenizer sees. */
  clean(text: string): string {
    return clipCleanText(text);
  }

  /** Regex pieces of already-cleaned text. */
  preTokenize(cleaned: string): string[] {
    return cleaned.match(PRE_TOKEN) ?? [];
  }

  /** BPE symbols of one pre-token (its UTF-8 bytes mapped to printable characters first). */
  bpe(piece: string): string[] {
    let word = this.cache.get(piece);
    if (word) return word;
    if (piece === SOT_TOKEN || piece === EOT_TOKEN) {
      word = [piece];
    } else {
      let mapped = '';
      for (const b of this.utf8.encode(piece)) mapped += BYTE_ENCODER[b];
      word = this.merge(mapped);
    }
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(piece, word);
    return word;
  }

  private merge(token: string): string[] {
    // The end-of-word marker is glued to the last symbol, so merges can tell word ends apart.
    let word = [...token.slice(0, -1)];
    word.push(token.slice(-1) + '</w>');
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best];
      const second = word[best + 1];
      const next: string[] = [];
      // Every non-overlapping occurrence, left to right, is merged in the same pass.
      for (let i = 0; i < word.length; ) {
        if (word[i] === first && i < word.length - 1 && word[i + 1] === second) {
          next.push(first + second);
          i += 2;
        } else {
          next.push(word[i]);
          i += 1;
        }
      }
      word = next;
    }
    return word;
  }

  /** BPE ids of a text, without BOS/EOS, padding or truncation (openai `SimpleTokenizer.encode`). */
  encode(text: string): number[] {
    const ids: number[] = [];
    for (const piece of this.preTokenize(this.clean(text))) {
      for (const sym of this.bpe(piece)) {
        const id = this.encoder.get(sym);
        if (id === undefined) throw new ClipVocabError(`${this.source}: BPE produced ${JSON.stringify(sym)}, which the vocabulary lacks`);
        ids.push(id);
      }
    }
    return ids;
  }

  /** One 77-token window: BOS, the first 75 ids, EOS, then padId up to 77. */
  tokenize77(text: string, opts: Tokenize77Options = {}): number[] {
    const ids = this.encode(text);
    const room = CLIP_CONTEXT_LENGTH - 2;
    if (ids.length > room && opts.truncate === false) {
      throw new RangeError(`prompt is ${ids.length} tokens; at most ${room} fit in one CLIP window: ${JSON.stringify(text.slice(0, 60))}`);
    }
    const out = [this.bos, ...ids.slice(0, room), this.eos];
    const pad = opts.padId ?? this.eos;
    while (out.length < CLIP_CONTEXT_LENGTH) out.push(pad);
    return out;
  }

  /** Text of ids (openai `SimpleTokenizer.decode`): bytes back to UTF-8, `</w>` as a space. */
  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      for (const ch of this.tokenString(id)) {
        const b = BYTE_DECODER.get(ch);
        if (b === undefined) throw new ClipVocabError(`${this.source}: token ${id} holds ${JSON.stringify(ch)}, not a byte symbol`);
        bytes.push(b);
      }
    }
    // ignoreBOM: Python's decode keeps a leading U+FEFF.
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(Uint8Array.from(bytes)).replaceAll('</w>', ' ');
  }
}
