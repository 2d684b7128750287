import { test, after, mock } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DTYPE_SIZE, numel, type DType } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import { openSafetensors, serializeSafetensors, writeSafetensors } from './safetensors.js';
import { REF, refTests } from '../../test/ref.js';

const REF_SD1 = join(REF, 'ckpt/tiny-sd1.safetensors');
const REF_SD2 = join(REF, 'ckpt/tiny-sd2.safetensors');
const refTest = refTests('safetensors: the reference tiny checkpoints');

const dir = await fsp.mkdtemp(join(tmpdir(), 'latentkit-safetensors-'));
after(() => fsp.rm(dir, { recursive: true, force: true }));
let fileNo = 0;
const tmpPath = (name = 'f'): string => join(dir, `${name}-${fileNo++}.safetensors`);

const ALL_DTYPES: DType[] = ['f64', 'f32', 'f16', 'bf16', 'i64', 'i32', 'i16', 'i8', 'u8', 'bool', 'f8e4m3', 'f8e5m2'];

/** A tensor whose bytes are a position-dependent pattern, so misplaced ranges show up. */
function patterned(dtype: DType, shape: number[], seed: number): Tensor {
  const t = new Tensor(dtype, shape);
  const b = t.bytes();
  for (let i = 0; i < b.length; i++) b[i] = (i * 31 + seed * 7 + 1) & 0xff;
  // bool must hold 0/1 to be meaningful to other readers.
  if (dtype === 'bool') for (let i = 0; i < b.length; i++) b[i] &= 1;
  return t;
}

function headerText(bytes: Uint8Array): string {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  return new TextDecoder().decode(bytes.subarray(8, 8 + n));
}

test('round trip of every dtype, scalars, zero-size tensors and metadata', async () => {
  const tensors = new Map<string, Tensor>();
  ALL_DTYPES.forEach((d, i) => {
    tensors.set(`t.${d}`, patterned(d, [2, 3], i));
    tensors.set(`scalar.${d}`, patterned(d, [], i + 50));
    tensors.set(`empty.${d}`, patterned(d, [0], i));
  });
  tensors.set('empty.mid', new Tensor('f32', [2, 0, 3]));
  const i64 = new Tensor('i64', [3], new BigInt64Array([-1n, 2n ** 62n, 7n]));
  tensors.set('values.i64', i64);
  tensors.set('values.f32', Tensor.f32([2, 2], [1.5, -2, Infinity, 3.25]));
  const metadata = { format: 'pt', 'ss_note': 'unicode ✓ "quoted"', empty: '' };

  const path = tmpPath();
  await writeSafetensors(path, tensors, metadata);
  const f = await openSafetensors(path);
  try {
    assert.deepEqual(f.metadata, metadata);
    assert.deepEqual(f.keys().sort(), [...tensors.keys()].sort());
    for (const [key, t] of tensors) {
      assert.ok(f.has(key));
      const info = f.info(key)!;
      assert.equal(info.dtype, t.dtype, key);
      assert.deepEqual(info.shape, t.shape, key);
      const [b, e] = info.dataOffsets;
      assert.equal(e - b, numel(t.shape) * DTYPE_SIZE[t.dtype], key);
      const back = await f.read(key);
      assert.equal(back.dtype, t.dtype, key);
      assert.deepEqual(back.shape, t.shape, key);
      assert.deepEqual(back.bytes(), t.bytes(), key);
      assert.deepEqual(await f.readBytes(key), t.bytes(), key);
    }
    assert.deepEqual([...(await f.read('values.i64')).data as BigInt64Array], [-1n, 2n ** 62n, 7n]);
    assert.deepEqual([...(await f.read('values.f32')).data as Float32Array], [1.5, -2, Infinity, 3.25]);
    assert.equal((await f.read('scalar.f32')).size, 1);
    assert.equal((await f.read('empty.mid')).size, 0);
    assert.equal(f.has('constructor'), false);
    assert.equal(f.info('toString'), undefined);
  } finally {
    await f.close();
  }

  // The streamed file and the in-memory serialisation are the same bytes.
  assert.deepEqual(new Uint8Array(await fsp.readFile(path)), serializeSafetensors(tensors, metadata));
});

test('writer layout: sorted keys (integer-like too), padded header, contiguous offsets, no metadata unless given', async () => {
  const tensors: Record<string, Tensor> = {
    b: Tensor.f32([1], [1]), '10': Tensor.f32([2], [2, 3]), a: new Tensor('u8', [3]), '2': new Tensor('i64', []),
  };
  const bytes = serializeSafetensors(tensors);
  const text = headerText(bytes);
  assert.equal(text.length % 8, 0);
  assert.equal((8 + text.length) % 8, 0);
  assert.match(text, /^\{"10":\{"dtype":"F32","shape":\[2\],"data_offsets":\[0,8\]\},"2":\{"dtype":"I64","shape":\[\],"data_offsets":\[8,16\]\},"a":.*"b":.*\} *$/);
  assert.ok(!text.includes('__metadata__'));
  const parsed = JSON.parse(text) as Record<string, { data_offsets: [number, number] }>;
  assert.deepEqual(parsed.a.data_offsets, [16, 19]);
  assert.deepEqual(parsed.b.data_offsets, [19, 23]);
  assert.equal(bytes.length, 8 + text.length + 23);

  assert.match(headerText(serializeSafetensors({}, {})), /^\{"__metadata__":\{\}\} *$/);
  assert.deepEqual([...serializeSafetensors({})], [8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);

  const path = tmpPath();
  await fsp.writeFile(path, serializeSafetensors({}));
  const f = await openSafetensors(path);
  assert.deepEqual(f.keys(), []);
  assert.deepEqual(f.metadata, {});
  await f.close();

  assert.throws(() => serializeSafetensors({ __metadata__: Tensor.f32([1]) }), /"__metadata__" is reserved/);
  assert.throws(() => serializeSafetensors({}, { n: 3 as unknown as string }), /metadata value for "n" is number 3, expected a string/);
});

test('__metadata__: null is read as no metadata, as the Rust crate does', async () => {
  const path = tmpPath();
  const header = '{"__metadata__":null,"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}';
  const h = new TextEncoder().encode(header);
  const bytes = new Uint8Array(8 + h.length + 2);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(h.length), true);
  bytes.set(h, 8);
  bytes.set([7, 9], 8 + h.length);
  await fsp.writeFile(path, bytes);
  const f = await openSafetensors(path);
  assert.deepEqual(f.metadata, {});
  assert.deepEqual([...(await f.read('x')).data], [7, 9]);
  await f.close();
});

refTest('reads the reference tiny-sd1 checkpoint', async () => {
  const f = await openSafetensors(REF_SD1);
  try {
    assert.equal(f.path, REF_SD1);
    assert.deepEqual(f.metadata, { format: 'pt' });
    assert.equal(f.keys().length, 553);
    assert.equal(f.dataStart, 8 + 69544);

    const pos = await f.read('cond_stage_model.transformer.text_model.embeddings.position_ids');
    assert.equal(pos.dtype, 'i64');
    assert.deepEqual(pos.shape, [1, 77]);
    assert.deepEqual([...pos.data as BigInt64Array], Array.from({ length: 77 }, (_, i) => BigInt(i)));

    const conv = await f.read('model.diffusion_model.input_blocks.0.0.weight');
    assert.equal(conv.dtype, 'f16');
    assert.deepEqual(conv.shape, [32, 4, 3, 3]);
    assert.equal(conv.size, 32 * 4 * 9);
    const emb = f.info('cond_stage_model.transformer.text_model.embeddings.token_embedding.weight')!;
    assert.equal(emb.dtype, 'f16');
    assert.deepEqual(emb.shape, [49408, 32]);
    assert.deepEqual(emb.dataOffsets, [f.dataStart + 17544, f.dataStart + 3179656]);

    // Values as numpy reads them from the same bytes.
    const bias = await f.read('model.diffusion_model.out.2.bias');
    assert.deepEqual([...bias.data as Uint16Array], [10771, 43339, 41234, 8888]);
    assert.deepEqual([...bias.toFloat32Array()], [0.047454833984375, -0.041351318359375, -0.0099029541015625, 0.01312255859375]);
    const ac = await f.read('alphas_cumprod');
    assert.equal(ac.dtype, 'f32');
    assert.deepEqual(ac.shape, [1000]);
    assert.deepEqual([...(ac.data as Float32Array).subarray(0, 3)], [0.9991499781608582, 0.9982960224151611, 0.9974380731582642]);

    const dtypes = new Set(f.keys().map((k) => f.info(k)!.dtype));
    assert.deepEqual([...dtypes].sort(), ['f16', 'f32', 'i64']);
  } finally {
    await f.close();
  }
});

refTest('reads the reference tiny-sd2 checkpoint (0-dim logit_scale)', async () => {
  const f = await openSafetensors(REF_SD2);
  try {
    assert.deepEqual(f.metadata, { format: 'pt' });
    const ls = await f.read('cond_stage_model.model.logit_scale');
    assert.equal(ls.dtype, 'f32');
    assert.deepEqual(ls.shape, []);
    assert.equal(ls.size, 1);
    assert.equal((ls.data as Float32Array)[0], Math.fround(2.6592600345611572));
    const w = await f.read('model.diffusion_model.input_blocks.0.0.weight');
    assert.equal(w.dtype, 'f16');
    assert.deepEqual(w.shape, [32, 4, 3, 3]);
  } finally {
    await f.close();
  }
});

refTest('concurrent reads on one handle, then rewriting reproduces the reference file byte for byte', async () => {
  const f = await openSafetensors(REF_SD1);
  const keys = f.keys();
  const tensors = await Promise.all(keys.map((k) => f.read(k)));
  const raw = await Promise.all(keys.map((k) => f.readBytes(k)));
  const metadata = { ...f.metadata };
  await f.close();
  const map = new Map(keys.map((k, i) => [k, tensors[i]]));
  keys.forEach((k, i) => assert.deepEqual(tensors[i].bytes(), raw[i], k));

  const out = tmpPath('rewrite');
  await writeSafetensors(out, map, metadata);
  const [a, b] = await Promise.all([fsp.readFile(REF_SD1), fsp.readFile(out)]);
  assert.equal(b.length, a.length);
  assert.ok(a.equals(b), 'rewritten file differs from the reference');
});

/** Opens `path` through a spy that records every FileHandle.read as [position, length]. */
async function openSpied(path: string): Promise<{ reads: [number, number][]; file: Awaited<ReturnType<typeof openSafetensors>>; restore: () => void }> {
  const reads: [number, number][] = [];
  const realOpen = fsp.open.bind(fsp);
  const spy = mock.method(fsp, 'open', async (...args: Parameters<typeof fsp.open>) => {
    const fh: FileHandle = await realOpen(...args);
    const realRead = fh.read.bind(fh) as (b: Uint8Array, o: number, l: number, p: number) => Promise<{ bytesRead: number; buffer: Uint8Array }>;
    (fh as unknown as { read: typeof realRead }).read = async (b, o, l, p) => {
      const r = await realRead(b, o, l, p);
      reads.push([p, r.bytesRead]);
      return r;
    };
    return fh;
  });
  try {
    const file = await openSafetensors(path);
    return { reads, file, restore: () => spy.mock.restore() };
  } catch (err) {
    spy.mock.restore();
    throw err;
  }
}

test('lazy: opening and reading one tensor touches only the header and that tensor', async () => {
  const path = tmpPath('lazy');
  const big = new Tensor('u8', [8 << 20]);
  big.bytes().fill(0xab);
  await writeSafetensors(path, { a_small: Tensor.f32([4], [1, 2, 3, 4]), z_big: big });

  const { reads, file, restore } = await openSpied(path);
  try {
    const headerReads = reads.reduce((s, [, n]) => s + n, 0);
    assert.equal(headerReads, file.dataStart, 'open reads exactly the length prefix and the header');
    const small = await file.read('a_small');
    assert.deepEqual([...small.data as Float32Array], [1, 2, 3, 4]);
    const total = reads.reduce((s, [, n]) => s + n, 0);
    assert.equal(total, file.dataStart + 16);
    const [bb, be] = file.info('z_big')!.dataOffsets;
    for (const [p, n] of reads) assert.ok(p + n <= bb || p >= be, `read [${p}, ${p + n}) touches the big tensor`);

    const bigBack = await file.read('z_big');
    assert.equal(bigBack.bytes().every((v) => v === 0xab), true);
    assert.equal(reads.reduce((s, [, n]) => s + n, 0), file.dataStart + 16 + (be - bb));
  } finally {
    restore();
    await file.close();
  }
});

test('lazy: tensor bytes come from disk at read time, not from a copy made at open', async () => {
  const path = tmpPath('late');
  await writeSafetensors(path, { a: new Tensor('u8', [4]), b: new Tensor('u8', [4]) });
  const f = await openSafetensors(path);
  try {
    const [b0] = f.info('b')!.dataOffsets;
    const w = await fsp.open(path, 'r+');
    await w.write(new Uint8Array([1, 2, 3, 4]), 0, 4, b0);
    await w.close();
    assert.deepEqual([...(await f.read('b')).data], [1, 2, 3, 4]);
    assert.deepEqual([...(await f.read('a')).data], [0, 0, 0, 0]);
  } finally {
    await f.close();
  }
});

test('a file truncated after opening gives an error naming the key and file, never short data', async () => {
  const path = tmpPath('shrink');
  await writeSafetensors(path, { a: patterned('f32', [8], 1), b: patterned('f32', [1024], 2) });
  const f = await openSafetensors(path);
  try {
    await fsp.truncate(path, f.info('b')!.dataOffsets[0] + 100);
    assert.equal((await f.read('a')).size, 8);
    for (const op of [() => f.read('b'), () => f.readBytes('b')]) {
      await assert.rejects(op(), (err: Error) => {
        assert.ok(err.message.startsWith(`${path}: tensor "b": short read`), err.message);
        assert.match(err.message, /got 100 of 4096 bytes/);
        return true;
      });
    }
  } finally {
    await f.close();
  }
  await assert.rejects(f.read('a'), /has been closed/);
});

test('write is atomic: a tensor failing midway leaves the old file intact and no temp file', async () => {
  const sub = await fsp.mkdtemp(join(dir, 'atomic-'));
  const path = join(sub, 'model.safetensors');
  await writeSafetensors(path, { old: Tensor.f32([2], [5, 6]) }, { v: '1' });
  const before = await fsp.readFile(path);

  const exploding = {
    dtype: 'f32', shape: [4], data: new Float32Array(4),
    bytes(): Uint8Array { throw new Error('boom: device lost'); },
  } as unknown as Tensor;
  const first = new Tensor('u8', [1 << 20]);
  await assert.rejects(
    writeSafetensors(path, { a: first, b: exploding, c: Tensor.f32([1], [1]) }),
    (err: Error) => {
      assert.ok(err.message.startsWith(`${path}: tensor "b": could not get its data: boom: device lost`), err.message);
      return true;
    },
  );
  assert.ok(before.equals(await fsp.readFile(path)), 'old file was modified');
  assert.deepEqual(await fsp.readdir(sub), ['model.safetensors']);

  // A tensor-like whose data disagrees with its shape is caught before it corrupts the layout.
  const liar = { dtype: 'f32', shape: [4], bytes: () => new Uint8Array(12) } as unknown as Tensor;
  await assert.rejects(writeSafetensors(path, { a: liar }), /tensor "a": has 12 bytes of data, its f32 shape \[4\] needs 16/);
  assert.deepEqual(await fsp.readdir(sub), ['model.safetensors']);

  // A successful write replaces the file and also leaves nothing behind.
  await writeSafetensors(path, { fresh: Tensor.f32([1], [9]) });
  assert.deepEqual(await fsp.readdir(sub), ['model.safetensors']);
  const f = await openSafetensors(path);
  assert.deepEqual(f.keys(), ['fresh']);
  assert.deepEqual(f.metadata, {});
  await f.close();
});
