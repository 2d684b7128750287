import { open } from 'node:fs/promises';
import { openSafetensors } from './safetensors.js';
import type { StateDict } from './state-dict.js';
import { openTorchFile } from './torch-file.js';

/**
 * Opens a checkpoint by what its bytes say, not its extension: safetensors (8-byte header length then
 * '{'), PyTorch zip ('PK'), or a legacy PyTorch pickle (protocol opcode 0x80).
 */
export async function openStateDict(path: string): Promise<StateDict> {
  let head: Buffer;
  let size: number;
  try {
    const fh = await open(path, 'r');
    try {
      size = (await fh.stat()).size;
      head = Buffer.alloc(9);
      await fh.read(head, 0, 9, 0);
    } finally {
      await fh.close();
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new Error(`${path}: no such file`, { cause: err });
    if (code === 'EISDIR') throw new Error(`${path}: is a folder, not a checkpoint file`, { cause: err });
    throw new Error(`${path}: cannot read (${(err as Error).message})`, { cause: err });
  }
  if (size >= 9 && head[8] === 0x7b) return openSafetensors(path);
  if (head[0] === 0x50 && head[1] === 0x4b) return openTorchFile(path);
  if (head[0] === 0x80) return openTorchFile(path);
  throw new Error(`${path}: not a checkpoint (neither safetensors nor a PyTorch file)`);
}
