// Model hashes as A1111 writes them. sha256 of a multi-GB file takes seconds, so results are cached
// per (path, size, mtime): in memory for the life of the process and, for files big enough to be
// worth it, in a JSON file in the user's cache folder so a 7 GB checkpoint is hashed once, ever.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

export type HashKind = 'sha256' | 'addnet';

const memory = new Map<string, string>();

interface CacheSettings {
  /** Folder of the persistent cache; undefined turns it off. */
  dir: string | undefined;
  /** Files smaller than this are hashed again rather than cached on disk (they hash in milliseconds). */
  minBytes: number;
}

function defaultDir(): string | undefined {
  if (process.env.LATENTKIT_CACHE_DIR === '') return undefined;
  if (process.env.LATENTKIT_CACHE_DIR) return process.env.LATENTKIT_CACHE_DIR;
  const base = process.env.XDG_CACHE_HOME || (homedir() ? join(homedir(), '.cache') : undefined);
  return base && join(base, 'latentkit');
}

const settings: CacheSettings = { dir: defaultDir(), minBytes: 64 << 20 };

/** Where (and from what size) hashes are kept on disk; tests point it at a temporary folder. */
export function configureHashCache(options: { dir?: string | null; minBytes?: number }): void {
  if (options.dir !== undefined) settings.dir = options.dir ?? undefined;
  if (options.minBytes !== undefined) settings.minBytes = options.minBytes;
  disk = undefined;
}

let disk: Promise<Map<string, string>> | undefined;

function cacheFile(): string | undefined {
  return settings.dir && join(settings.dir, 'hashes.json');
}

async function loadDisk(): Promise<Map<string, string>> {
  const file = cacheFile();
  if (!file) return new Map();
  try {
    const json = JSON.parse(await readFile(file, 'utf8')) as unknown;
    if (json && typeof json === 'object' && !Array.isArray(json)) {
      return new Map(Object.entries(json as Record<string, unknown>).filter((e): e is [string, string] => typeof e[1] === 'string'));
    }
  } catch {
    // A missing or damaged cache is only a slower start: every hash it held can be recomputed.
  }
  return new Map();
}

/** Re-reads before writing so several processes adding hashes keep each other's entries. */
async function saveDisk(key: string, value: string): Promise<void> {
  const file = cacheFile();
  if (!file || !settings.dir) return;
  try {
    await mkdir(settings.dir, { recursive: true });
    const current = await loadDisk();
    current.set(key, value);
    const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(Object.fromEntries(current), null, 1));
    } finally {
      await fh.close();
    }
    await rename(tmp, file).catch(async (err: unknown) => { await rm(tmp, { force: true }); throw err; });
    disk = Promise.resolve(current);
  } catch {
    // Not being able to write the cache (read-only home, full disk) must not fail a generation.
  }
}

async function cached(kind: HashKind, path: string, compute: () => Promise<string>): Promise<string> {
  const s = await stat(path);
  const key = `${kind}|${path}|${s.size}|${s.mtimeMs}`;
  const hit = memory.get(key);
  if (hit) return hit;
  const persistent = s.size >= settings.minBytes && settings.dir !== undefined;
  if (persistent) {
    disk ??= loadDisk();
    const d = (await disk).get(key);
    if (d) { memory.set(key, d); return d; }
  }
  const hex = await compute();
  memory.set(key, hex);
  if (persistent) await saveDisk(key, hex);
  return hex;
}

async function sha256Range(path: string, start: number, end?: number): Promise<string> {
  const hash = createHash('sha256');
  if (end === undefined || end > start) {
    for await (const chunk of createReadStream(path, { start, end: end === undefined ? undefined : end - 1, highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

export async function sha256File(path: string): Promise<string> {
  return cached('sha256', path, () => sha256Range(path, 0));
}

/** A1111's "Model hash" (AutoV2): the first 10 hex digits of the file's sha256. */
export async function autoV2Hash(path: string): Promise<string> {
  return (await sha256File(path)).slice(0, 10);
}

/**
 * A1111's legacy 8-hex model hash (`sd_models.model_hash`): sha256 of the 64 KiB at 0x100000 —
 * of whatever of it the file has (a small file hashes the empty string).
 */
export async function legacyModelHash(path: string): Promise<string> {
  return (await sha256Range(path, 0x100000, 0x110000)).slice(0, 8);
}

/**
 * kohya's / A1111's "addnet" hash of a safetensors file: sha256 of everything after the header, so
 * editing the metadata does not change it. Full 64 hex digits.
 */
export async function addnetHash(path: string): Promise<string> {
  return cached('addnet', path, async () => {
    const fh = await open(path, 'r');
    let n: bigint;
    try {
      const b = Buffer.alloc(8);
      const { bytesRead } = await fh.read(b, 0, 8, 0);
      if (bytesRead < 8) throw new Error(`${path}: too short for a safetensors header`);
      n = b.readBigUInt64LE(0);
    } finally {
      await fh.close();
    }
    return sha256Range(path, Number(n) + 8);
  });
}

/**
 * The short LoRA hash A1111 writes in `Lora hashes` (first 12 hex digits): the addnet hash for
 * `.safetensors` files, the whole file's sha256 otherwise.
 */
export async function loraShortHash(path: string): Promise<string> {
  const full = /\.safetensors$/i.test(path) ? await addnetHash(path) : await sha256File(path);
  return full.slice(0, 12);
}
