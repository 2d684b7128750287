import { stat } from 'node:fs/promises';

/** Identity of a file's content for caches: path, size and modification time. */
export async function fileIdentity(path: string): Promise<string> {
  const s = await stat(path);
  return `${path}|${s.size}|${s.mtimeMs}`;
}
