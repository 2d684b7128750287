// Textual-inversion files written the way A1111, diffusers and safetensors-era trainers write them,
// built in-process (no Python) from the pickle / zip writers of the format tests.
import { copyFile, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors } from '../../src/formats/safetensors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { OP, PickleWriter, buildZip, torchZipEntries, writeTensor } from '../fixtures/pickle/builders.js';

const FIXTURES = new URL('../fixtures/pickle/', import.meta.url).pathname;

function bytesOf(v: Float32Array): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength).slice();
}

/** A1111 `.pt`: {'string_to_token': {'*': 265}, 'string_to_param': {'*': [n, W]}, 'name', 'step'}. */
export function a1111Pt(vectors: Float32Array, count: number, width: number): Uint8Array {
  const w = new PickleWriter().proto(2).op(OP.EMPTY_DICT).mark();
  w.str('string_to_token').op(OP.EMPTY_DICT).str('*').int(265).op(OP.SETITEM);
  w.str('string_to_param').op(OP.EMPTY_DICT).str('*');
  writeTensor(w, { storage: '0', numel: count * width, shape: [count, width] });
  w.op(OP.SETITEM);
  w.str('name').str('trained-name').str('step').int(1500);
  w.op(OP.SETITEMS).stop();
  return buildZip(torchZipEntries('archive', w.toBytes(), { 0: bytesOf(vectors) }));
}

/** diffusers `learned_embeds.bin`: {'<token>': [W]}. */
export function diffusersBin(token: string, vector: Float32Array): Uint8Array {
  const w = new PickleWriter().proto(2).op(OP.EMPTY_DICT).str(token);
  writeTensor(w, { storage: '0', numel: vector.length, shape: [vector.length] });
  w.op(OP.SETITEM).stop();
  return buildZip(torchZipEntries('learned_embeds', w.toBytes(), { 0: bytesOf(vector) }));
}

export async function tempDir(prefix = 'lk-ti-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

export async function writePt(dir: string, name: string, vectors: Float32Array, count: number, width: number): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, a1111Pt(vectors, count, width));
  return p;
}

export async function writeEmbParams(dir: string, name: string, vectors: Float32Array, count: number, width: number): Promise<string> {
  const p = join(dir, name);
  await writeSafetensors(p, { emb_params: Tensor.f32([count, width], vectors) });
  return p;
}

/** A PyTorch zip whose pickle calls posix.system (must be refused, never run). */
export async function copyHostile(dir: string, name: string): Promise<string> {
  const p = join(dir, name);
  await copyFile(join(FIXTURES, 'hostile_posix_system.ckpt'), p);
  return p;
}

/** A valid A1111 embedding whose vectors are 4 wide (fits no real text encoder). */
export async function copyNarrow(dir: string, name: string): Promise<string> {
  const p = join(dir, name);
  await copyFile(join(FIXTURES, 'embedding_p5.pt'), p);
  return p;
}
