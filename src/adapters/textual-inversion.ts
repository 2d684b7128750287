// Textual-inversion embeddings: a few learned token vectors that stand in for a word.
//
// Formats read: A1111 `.pt` (`string_to_param` → one [n, W] tensor, a ParameterDict in the
// original repo's files), `.safetensors` (`emb_params`, or any single tensor; SDXL's `clip_l` /
// `clip_g` pair is kept for SDXL), diffusers `learned_embeds.bin` (`{"<token>": [W]}`). Pickled files go
// through the whitelisting reader, so a hostile file is refused, never run.
//
// Triggering: A1111 matches the tokens of each file's name (its stem) inside the prompt; ComfyUI
// loads `embedding:name` from its folders by relative path. Files whose width does not fit the
// text encoder are skipped with a warning naming them, as A1111 skips them.
import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join, relative, resolve, sep } from 'node:path';
import { sha256File } from '../formats/hash.js';
import { openStateDict } from '../formats/open.js';
import type { ClipTokenizer } from '../text/clip-tokenizer.js';
import type { EmbeddingMatcher, EmbeddingVectors } from '../text/chunking.js';

export const EMBEDDING_EXTENSIONS = ['.safetensors', '.pt', '.bin'];

export interface TextualInversion extends EmbeddingVectors {
  readonly path: string;
  /** Which layout the file had. */
  readonly format: 'string_to_param' | 'single-tensor' | 'sdxl';
  /** SDXL's two halves (the pair is its own width: clip_l + clip_g). */
  readonly sdxl?: { readonly clipL: Float32Array; readonly clipG: Float32Array; readonly widthL: number; readonly widthG: number };
  /** Training step recorded in A1111 files, when present. */
  readonly step?: number;
}

function rows(shape: readonly number[]): { count: number; width: number } {
  if (shape.length === 1) return { count: 1, width: shape[0] };
  if (shape.length === 2) return { count: shape[0], width: shape[1] };
  throw new Error(`expected a [vectors, width] tensor, got shape [${shape.join(', ')}]`);
}

/**
 * Reads one embedding file. The name is the file stem (what A1111 matches in the prompt). Errors name
 * the file: unreadable, refused pickle, or a layout that is not an embedding.
 */
export async function loadTextualInversion(path: string, name = basename(path, extname(path))): Promise<TextualInversion> {
  const sd = await openStateDict(path);
  try {
    const keys = sd.keys();
    const objects = 'objects' in sd ? (sd as { objects: ReadonlyMap<string, unknown> }).objects : undefined;
    const stepValue = objects?.get('step');
    const step = typeof stepValue === 'number' ? stepValue : undefined;
    const read = async (key: string) => {
      const info = sd.info(key)!;
      const { count, width } = rows(info.shape);
      return { vectors: Float32Array.from((await sd.read(key)).toFloat32Array()), count, width };
    };
    const stp = keys.filter((k) => k.startsWith('string_to_param.'));
    if (stp.length > 0) {
      if (stp.length !== 1) throw new Error(`embedding file has multiple terms in it (${stp.join(', ')})`);
      return { name, path, format: 'string_to_param', step, ...(await read(stp[0])) };
    }
    if (keys.includes('clip_l') && keys.includes('clip_g')) {
      const l = await read('clip_l');
      const g = await read('clip_g');
      if (l.count !== g.count) throw new Error(`clip_l has ${l.count} vectors but clip_g ${g.count}`);
      const width = l.width + g.width;
      const vectors = new Float32Array(l.count * width);
      for (let i = 0; i < l.count; i++) {
        vectors.set(l.vectors.subarray(i * l.width, (i + 1) * l.width), i * width);
        vectors.set(g.vectors.subarray(i * g.width, (i + 1) * g.width), i * width + l.width);
      }
      return {
        name, path, format: 'sdxl', step, vectors, count: l.count, width,
        sdxl: { clipL: l.vectors, clipG: g.vectors, widthL: l.width, widthG: g.width },
      };
    }
    if (keys.length === 1 && (objects === undefined || ![...objects.keys()].some((k) => !k.includes('.')))) {
      return { name, path, format: 'single-tensor', step, ...(await read(keys[0])) };
    }
    throw new Error(keys.length === 0 ? 'no tensors: not a textual-inversion embedding'
      : `not a textual-inversion embedding (no string_to_param, emb_params or clip_l/clip_g; ${keys.length} tensors)`);
  } catch (err) {
    const msg = (err as Error).message;
    throw new Error(msg.includes(path) ? msg : `${path}: ${msg}`, { cause: err });
  } finally {
    await sd.close();
  }
}

async function walk(dir: string, out: string[]): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${dir}: embeddings folder does not exist`, { cause: err });
    throw new Error(`${dir}: cannot read the embeddings folder (${(err as Error).message})`, { cause: err });
  }
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const p = join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      const s = await stat(p).catch(() => undefined);
      isDir = !!s?.isDirectory();
      isFile = !!s?.isFile();
    }
    if (isDir) await walk(p, out);
    else if (isFile && EMBEDDING_EXTENSIONS.includes(extname(e.name).toLowerCase())) out.push(p);
  }
}

export interface EmbeddingLibraryOptions {
  /** Width of the text encoder's token vectors (768 SD1, 1024 SD2). */
  readonly width: number;
  readonly warn?: (message: string) => void;
}

export interface UsedEmbedding {
  readonly name: string;
  readonly path: string;
  /** A1111's `TI hashes` entry: the first 12 hex digits of the file's sha256. */
  readonly shortHash: string;
}

/**
 * The embeddings in a set of folders, loaded when a prompt first names them. Broken, hostile or
 * misfitting files are reported through `warn` once and then ignored.
 */
export class EmbeddingLibrary {
  private readonly loaded = new Map<string, TextualInversion | null>();
  private readonly warned = new Set<string>();
  private nameIds?: { ids: number[]; file: string; name: string }[];
  private readonly used = new Map<string, TextualInversion>();

  private constructor(readonly folders: readonly string[], private readonly files: readonly string[], private readonly opts: EmbeddingLibraryOptions) {}

  static async open(folders: readonly string[], opts: EmbeddingLibraryOptions): Promise<EmbeddingLibrary> {
    const files: string[] = [];
    for (const f of folders) await walk(resolve(f), files);
    return new EmbeddingLibrary(folders.map((f) => resolve(f)), files, opts);
  }

  /** File stems by file, in load order (sorted by path). */
  get names(): string[] {
    return this.files.map((f) => basename(f, extname(f)));
  }

  private warnOnce(file: string, message: string): void {
    if (this.warned.has(file)) return;
    this.warned.add(file);
    this.opts.warn?.(message);
  }

  /** The embedding in `file` whatever its width, or null (with one warning) when it cannot be read. */
  private async load(file: string): Promise<TextualInversion | null> {
    if (this.loaded.has(file)) return this.loaded.get(file)!;
    let emb: TextualInversion | null;
    try {
      emb = await loadTextualInversion(file);
    } catch (err) {
      this.warnOnce(file, `embedding '${basename(file, extname(file))}' skipped: ${(err as Error).message}`);
      emb = null;
    }
    this.loaded.set(file, emb);
    return emb;
  }

  /** The embedding in `file`, or null (with one warning) when it cannot be used with this model. */
  async get(file: string): Promise<TextualInversion | null> {
    const emb = await this.load(file);
    if (emb && emb.width !== this.opts.width) {
      this.warnOnce(file, `embedding '${emb.name}' (${file}) has ${emb.width}-wide vectors but this model's text encoder is ${this.opts.width} wide; skipped`);
      return null;
    }
    return emb;
  }

  private candidates(tokenizer: ClipTokenizer) {
    this.nameIds ??= this.files
      .map((file) => ({ file, name: basename(file, extname(file)), ids: tokenizer.encode(basename(file, extname(file))) }))
      .filter((c) => c.ids.length > 0);
    return this.nameIds;
  }

  /**
   * A1111 matching for the given prompt texts: loads every embedding whose name's tokens occur in
   * them, and returns the matcher the chunker uses (longest name first, first file on ties).
   */
  async a1111Matcher(tokenizer: ClipTokenizer, texts: readonly string[]): Promise<EmbeddingMatcher> {
    const cands = this.candidates(tokenizer);
    const seen = new Set<string>();
    for (const text of texts) {
      const ids = tokenizer.encode(text);
      for (const c of cands) {
        if (seen.has(c.file)) continue;
        for (let i = 0; i + c.ids.length <= ids.length; i++) {
          if (c.ids.every((v, k) => ids[i + k] === v)) {
            seen.add(c.file);
            break;
          }
        }
      }
    }
    const byFirst = new Map<number, { ids: number[]; emb: TextualInversion }[]>();
    const registered = new Set<string>();
    for (const c of cands) {
      if (!seen.has(c.file)) continue;
      const emb = await this.get(c.file);
      // A later file with an already registered name replaces the earlier one (A1111 keys them by name).
      if (!emb) continue;
      if (registered.has(c.name)) {
        for (const list of byFirst.values()) {
          const i = list.findIndex((x) => x.emb.name === c.name);
          if (i >= 0) list.splice(i, 1);
        }
      }
      registered.add(c.name);
      const list = byFirst.get(c.ids[0]) ?? [];
      list.push({ ids: c.ids, emb });
      list.sort((a, b) => b.ids.length - a.ids.length);
      byFirst.set(c.ids[0], list);
    }
    return {
      find: (tokens, pos) => {
        for (const { ids, emb } of byFirst.get(tokens[pos]) ?? []) {
          if (ids.every((v, k) => tokens[pos + k] === v)) {
            this.used.set(emb.name, emb);
            return { embedding: emb, length: ids.length };
          }
        }
        return undefined;
      },
    };
  }

  /**
   * ComfyUI `load_embed`: `name` relative to any folder or its subfolders, as given or with
   * .safetensors / .pt / .bin appended; never outside the folders.
   */
  async comfyPreload(names: readonly string[]): Promise<(name: string) => TextualInversion | undefined> {
    const found = new Map<string, TextualInversion>();
    const dirs = new Set<string>(this.folders);
    for (const f of this.files) {
      for (const folder of this.folders) {
        const rel = relative(folder, f);
        if (rel.startsWith('..')) continue;
        const parts = rel.split(sep);
        for (let i = 1; i < parts.length; i++) dirs.add(join(folder, ...parts.slice(0, i)));
      }
    }
    for (const name of names) {
      for (const dir of dirs) {
        const target = resolve(dir, name);
        if (target !== dir && !target.startsWith(dir + sep)) continue;
        const file = [target, ...EMBEDDING_EXTENSIONS.map((e) => target + e)].find((p) => this.files.includes(p));
        if (!file) continue;
        // ComfyUI loads any width here and drops a misfitting one only when encoding (conditioning.ts).
        const emb = await this.load(file);
        if (emb) found.set(name, { ...emb, name });
        break;
      }
    }
    return (name) => {
      const emb = found.get(name);
      if (emb && emb.width === this.opts.width) this.used.set(emb.name, emb);
      return emb;
    };
  }

  /** Embeddings the prompts of this run used, with A1111's short hashes, in first-use order. */
  async usedEmbeddings(): Promise<UsedEmbedding[]> {
    const out: UsedEmbedding[] = [];
    for (const emb of this.used.values()) out.push({ name: emb.name, path: emb.path, shortHash: (await sha256File(emb.path)).slice(0, 12) });
    return out;
  }

  /** Forgets which embeddings were used (one library can serve many runs). */
  resetUsage(): void {
    this.used.clear();
  }
}

/** `TI hashes` as A1111 writes it: `name: hash, …` with `:` and `,` removed from names. */
export function formatTiHashes(used: readonly UsedEmbedding[]): string | undefined {
  if (used.length === 0) return undefined;
  return used.map((u) => `${u.name.replaceAll(':', '').replaceAll(',', '')}: ${u.shortHash}`).join(', ');
}
