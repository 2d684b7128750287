// Finding and reading the CLIP BPE vocabulary. Two layouts exist in the wild: Hugging Face's
// vocab.json + merges.txt (diffusers folders, ComfyUI) and OpenAI's bpe_simple_vocab_16e6.txt.gz.
// Both describe the same 49408-token vocabulary; the .gz lists only merges, and the vocabulary is
// rebuilt from them the way openai's SimpleTokenizer does.
// The vocabulary is never downloaded: latentkit runs without network access.

import { existsSync, promises as fsp, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

export const CLIP_VOCAB_ENV = 'LATENTKIT_CLIP_VOCAB';
export const CLIP_GZ_NAME = 'bpe_simple_vocab_16e6.txt.gz';
export const SOT_TOKEN = '<|startoftext|>';
export const EOT_TOKEN = '<|endoftext|>';

/** Token string -> id, and the merge list in rank order. */
export interface ClipVocab {
  encoder: Map<string, number>;
  merges: Array<[string, string]>;
  /** Where it was read from, for messages. */
  source: string;
}

export type ClipVocabFiles =
  | { kind: 'hf'; vocabJson: string; mergesTxt: string }
  | { kind: 'gz'; path: string };

export class ClipVocabError extends Error {
  override name = 'ClipVocabError';
}

export class ClipVocabNotFoundError extends ClipVocabError {
  override name = 'ClipVocabNotFoundError';
  constructor(readonly searched: string[], hint: string) {
    super(`CLIP tokenizer vocabulary not found. Looked in:\n${searched.map((s) => `  - ${s}`).join('\n')}\n${hint}`);
  }
}

/**
 * GPT-2's reversible byte -> printable character table. The order matters: the .gz layout assigns
 * ids 0..255 in exactly this order.
 */
export function bytesToUnicode(): Array<[number, string]> {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const table: Array<[number, string]> = printable.map((b) => [b, String.fromCharCode(b)]);
  const taken = new Set(printable);
  let next = 0;
  for (let b = 0; b < 256; b++) if (!taken.has(b)) table.push([b, String.fromCharCode(256 + next++)]);
  return table;
}

// ---------------------------------------------------------------- parsing

function parseMergeLines(lines: string[], file: string, firstLineNo: number): Array<[string, string]> {
  const merges: Array<[string, string]> = [];
  lines.forEach((line, i) => {
    if (line === '') return;
    const parts = line.split(' ');
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      throw new ClipVocabError(`${file}:${firstLineNo + i}: expected "first second", got ${JSON.stringify(line.slice(0, 80))}`);
    }
    merges.push([parts[0], parts[1]]);
  });
  return merges;
}

function checkSpecials(encoder: Map<string, number>, file: string): void {
  for (const t of [SOT_TOKEN, EOT_TOKEN]) {
    if (!encoder.has(t)) throw new ClipVocabError(`${file}: no ${t} token; this is not a CLIP vocabulary`);
  }
}

/** Reads the Hugging Face layout. */
export async function readHfVocab(vocabJson: string, mergesTxt: string): Promise<ClipVocab> {
  let raw: unknown;
  try {
    raw = JSON.parse(await fsp.readFile(vocabJson, 'utf8'));
  } catch (e) {
    throw new ClipVocabError(`${vocabJson}: cannot read as JSON (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ClipVocabError(`${vocabJson}: expected an object mapping token strings to ids`);
  }
  const encoder = new Map<string, number>();
  for (const [token, id] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0) {
      throw new ClipVocabError(`${vocabJson}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}, expected a non-negative integer`);
    }
    encoder.set(token, id);
  }
  checkSpecials(encoder, vocabJson);
  const text = await fsp.readFile(mergesTxt, 'utf8');
  const lines = text.split('\n');
  // The "#version" header is optional in practice (older exports omit it).
  const skip = lines[0]?.startsWith('#version') ? 1 : 0;
  const merges = parseMergeLines(lines.slice(skip), mergesTxt, skip + 1);
  for (const [a, b] of merges) {
    if (!encoder.has(a + b)) throw new ClipVocabError(`${mergesTxt}: merge "${a} ${b}" makes a token missing from ${vocabJson}`);
  }
  return { encoder, merges, source: `${vocabJson} + ${mergesTxt}` };
}

// openai's SimpleTokenizer takes lines[1 : 49152-256-2+1] of the file: the merges that, with the
// 512 byte tokens and 2 specials, fill a 49408-token vocabulary. The rest of the file is unused.
const GZ_MERGE_COUNT = 49152 - 256 - 2;

/** Reads OpenAI's gzipped merge list and rebuilds the vocabulary from it. */
export async function readGzVocab(path: string): Promise<ClipVocab> {
  let text: string;
  try {
    text = gunzipSync(await fsp.readFile(path)).toString('utf8');
  } catch (e) {
    throw new ClipVocabError(`${path}: cannot gunzip (${(e as Error).message})`);
  }
  const lines = text.split('\n');
  if (lines.length < GZ_MERGE_COUNT + 1) {
    throw new ClipVocabError(`${path}: ${lines.length} lines, expected at least ${GZ_MERGE_COUNT + 1} (a header and ${GZ_MERGE_COUNT} merges)`);
  }
  const merges = parseMergeLines(lines.slice(1, GZ_MERGE_COUNT + 1), path, 2);
  if (merges.length !== GZ_MERGE_COUNT) throw new ClipVocabError(`${path}: blank lines among the first ${GZ_MERGE_COUNT} merges`);
  const tokens: string[] = [];
  const byteChars = bytesToUnicode().map(([, c]) => c);
  tokens.push(...byteChars, ...byteChars.map((c) => c + '</w>'));
  for (const [a, b] of merges) tokens.push(a + b);
  tokens.push(SOT_TOKEN, EOT_TOKEN);
  const encoder = new Map<string, number>();
  tokens.forEach((t, i) => encoder.set(t, i));
  return { encoder, merges, source: path };
}

export async function readVocabFiles(files: ClipVocabFiles): Promise<ClipVocab> {
  return files.kind === 'hf' ? readHfVocab(files.vocabJson, files.mergesTxt) : readGzVocab(files.path);
}

// ---------------------------------------------------------------- locating

export interface LocateClipVocabOptions {
  /** A folder, a vocab.json / merges.txt file, or the .gz file. Takes precedence over everything. */
  path?: string;
  /** The model: a diffusers folder or a single checkpoint file (its folder is searched). */
  modelPath?: string;
  /** Defaults to process.env; tests pass their own. */
  env?: Record<string, string | undefined>;
  /** Folder of the package's bundled data; defaults to `<package root>/data/clip`. */
  packageDataDir?: string | null;
  /** Extra wording for the not-found message, e.g. the CLI's option name. */
  hint?: string;
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Vocabulary files inside one folder, or null. */
function inFolder(dir: string): ClipVocabFiles | null {
  const vocabJson = join(dir, 'vocab.json');
  const mergesTxt = join(dir, 'merges.txt');
  if (isFile(vocabJson) && isFile(mergesTxt)) return { kind: 'hf', vocabJson, mergesTxt };
  const gz = join(dir, CLIP_GZ_NAME);
  if (isFile(gz)) return { kind: 'gz', path: gz };
  return null;
}

/** What a user-given path (option or env) points at; records what was looked at. */
function fromUserPath(p: string, looked: string[], label: string): ClipVocabFiles | null {
  const abs = resolve(p);
  if (isFile(abs)) {
    if (abs.endsWith('.gz')) return { kind: 'gz', path: abs };
    const dir = dirname(abs);
    const vocabJson = join(dir, 'vocab.json');
    const mergesTxt = join(dir, 'merges.txt');
    if (isFile(vocabJson) && isFile(mergesTxt)) return { kind: 'hf', vocabJson, mergesTxt };
    looked.push(`${label}: ${abs} is a file, but vocab.json and merges.txt are not both beside it, and it is not a .gz`);
    return null;
  }
  if (isDir(abs)) {
    // Accept a diffusers model folder as well as the tokenizer folder itself.
    for (const dir of [abs, join(abs, 'tokenizer')]) {
      const found = inFolder(dir);
      if (found) return found;
    }
    looked.push(`${label}: ${abs} and ${join(abs, 'tokenizer')} (no vocab.json + merges.txt, no ${CLIP_GZ_NAME})`);
    return null;
  }
  looked.push(`${label}: ${abs} does not exist`);
  return null;
}

let defaultDataDir: string | null | undefined;

/** `<package root>/data/clip`, where the package root is the nearest folder with package.json. */
function packageDataDir(): string | null {
  if (defaultDataDir !== undefined) return defaultDataDir;
  let dir = dirname(fileURLToPath(import.meta.url));
  defaultDataDir = null;
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(dir, 'package.json'))) {
      defaultDataDir = join(dir, 'data', 'clip');
      break;
    }
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return defaultDataDir;
}

/**
 * Finds the vocabulary: the explicit path, then $LATENTKIT_CLIP_VOCAB, then the model's
 * `tokenizer/` folder and the model's own folder, then the package's data folder. A path the user
 * named explicitly (option or environment) must hold a vocabulary: a wrong one is an error rather
 * than silently replaced by another source.
 */
export function locateClipVocab(opts: LocateClipVocabOptions = {}): ClipVocabFiles {
  const env = opts.env ?? process.env;
  const looked: string[] = [];
  const hint =
    opts.hint ??
    `Provide it with the clipVocab option (CLI: --clip-vocab PATH) or set ${CLIP_VOCAB_ENV}=/path/to/folder ` +
      `holding vocab.json and merges.txt (or ${CLIP_GZ_NAME}); a diffusers model folder's tokenizer/ has them.`;

  if (opts.path) {
    const found = fromUserPath(opts.path, looked, 'clipVocab option');
    if (found) return found;
    throw new ClipVocabNotFoundError(looked, hint);
  }
  looked.push('clipVocab option: not given');

  const fromEnv = env[CLIP_VOCAB_ENV];
  if (fromEnv) {
    const found = fromUserPath(fromEnv, looked, `$${CLIP_VOCAB_ENV}`);
    if (found) return found;
    throw new ClipVocabNotFoundError(looked, hint);
  }
  looked.push(`$${CLIP_VOCAB_ENV}: not set`);

  if (opts.modelPath) {
    const model = resolve(opts.modelPath);
    const base = isDir(model) ? model : dirname(model);
    for (const dir of [join(base, 'tokenizer'), base]) {
      const found = inFolder(dir);
      if (found) return found;
      looked.push(`model folder: ${dir}`);
    }
  } else {
    looked.push('model folder: no model path given');
  }

  const data = opts.packageDataDir === undefined ? packageDataDir() : opts.packageDataDir;
  if (data) {
    const found = inFolder(data);
    if (found) return found;
    looked.push(`package data: ${data}`);
  }
  throw new ClipVocabNotFoundError(looked, hint);
}

/** locateClipVocab + read. */
export async function loadClipVocab(opts: LocateClipVocabOptions = {}): Promise<ClipVocab> {
  return readVocabFiles(locateClipVocab(opts));
}
