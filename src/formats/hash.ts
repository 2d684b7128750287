// Model hashes as A1111 writes them. sha256 of a multi-GB file takes seconds, so results are cached
// per (path, size, mtime) for the life of the process.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

const cache = new Map<string, string>();

export async function sha256File(path: string): Promise<string> {
  const s = await stat(path);
  const key = `${path}|${s.size}|${s.mtimeMs}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
  const hex = hash.digest('hex');
  cache.set(key, hex);
  return hex;
}

/** A1111's "Model hash" (AutoV2): the first 10 hex digits of the file's sha256. */
export async function autoV2Hash(path: string): Promise<string> {
  return (await sha256File(path)).slice(0, 10);
}
