import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import { MAX_HEADER_LENGTH, openSafetensors, serializeSafetensors } from './safetensors.js';

// Every malformed file is built here from bytes, then must be rejected with one error that starts
// with the file's path and names the specific fault.

const dir = await fsp.mkdtemp(join(tmpdir(), 'latentkit-safetensors-bad-'));
after(() => fsp.rm(dir, { recursive: true, force: true }));
let fileNo = 0;

const enc = new TextEncoder();

/** A file with the given header (string or JSON value) and `data` bytes after it. */
function build(header: unknown, data: number | Uint8Array = 0, lengthOverride?: bigint): Uint8Array {
  const h = header instanceof Uint8Array ? header : enc.encode(typeof header === 'string' ? header : JSON.stringify(header));
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
}

async function put(bytes: Uint8Array): Promise<string> {
  const path = join(dir, `bad-${fileNo++}.safetensors`);
  await fsp.writeFile(path, bytes);
  return path;
}

async function rejects(bytes: Uint8Array | string, re: RegExp): Promise<void> {
  const path = typeof bytes === 'string' ? bytes : await put(bytes);
  await assert.rejects(openSafetensors(path), (err: Error) => {
    assert.ok(err instanceof Error);
    assert.ok(err.message.startsWith(`${path}: `), `message does not start with the path: ${err.message}`);
    assert.match(err.message, re);
    return true;
  });
}

const f32 = (shape: number[], begin: number, end: number) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });

test('rejects a file too short to hold the header length', async () => {
  await rejects(new Uint8Array(0), /not a safetensors file: file is 0 bytes, too short/);
  await rejects(new Uint8Array([1, 2, 3, 4, 5]), /not a safetensors file: file is 5 bytes, too short to hold the 8-byte header length/);
});

test('rejects a header length of 0', async () => {
  await rejects(build('', 16), /not a safetensors file: header length is 0$/);
});

test('rejects a header length past the end of the file', async () => {
  const small = build('{}', 0, 9999999999n);
  const padded = new Uint8Array(1234);
  padded.set(small);
  await rejects(padded, /not a safetensors file: header length 9999999999 exceeds file size 1234$/);
  await rejects(build('{}', 0, 2n ** 64n - 1n), /header length 18446744073709551615 exceeds file size 10$/);
  await rejects(build('{}   ', 0, 6n), /header length 6 exceeds file size 13$/);
});

test('rejects a header longer than the 100 MB cap without reading it', async () => {
  const path = join(dir, `huge-${fileNo++}.safetensors`);
  const fh = await fsp.open(path, 'w');
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(MAX_HEADER_LENGTH + 1), true);
  await fh.write(len, 0, 8, 0);
  // Sparse: the size is there but no 100 MB are written (or read: the check comes first).
  await fh.truncate(8 + MAX_HEADER_LENGTH + 16);
  await fh.close();
  await rejects(path, /not a safetensors file: header length 100000001 exceeds the 100000000-byte limit$/);
});

test('rejects a header that is not UTF-8', async () => {
  await rejects(build(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), /not a safetensors file: header is not valid UTF-8$/);
});

test('rejects a header that is not JSON', async () => {
  await rejects(build('{"a": {"dtype": "F32",'), /not a safetensors file: header is not valid JSON \(/);
  await rejects(build('PK\u0003\u0004 a zip file'), /not a safetensors file: header is not valid JSON/);
});

test('rejects a JSON header that is not an object', async () => {
  await rejects(build('[1, 2, 3]'), /not a safetensors file: header is a JSON array, expected a JSON object$/);
  await rejects(build('null'), /header is JSON null, expected a JSON object$/);
  await rejects(build('"x"'), /header is a JSON string, expected a JSON object$/);
});

test('rejects a tensor entry that is not an object or lacks fields', async () => {
  await rejects(build({ w: 5 }), /invalid safetensors header: tensor "w": header entry is number 5, expected an object with dtype, shape and data_offsets$/);
  await rejects(build({ w: [1] }), /tensor "w": header entry is an array/);
  await rejects(build({ w: { shape: [1], data_offsets: [0, 4] } }, 4), /tensor "w": dtype is missing, expected a string$/);
  await rejects(build({ w: { dtype: 32, shape: [1], data_offsets: [0, 4] } }, 4), /tensor "w": dtype is number 32, expected a string$/);
  await rejects(build({ w: { dtype: 'F32', data_offsets: [0, 4] } }, 4), /tensor "w": shape is missing$/);
  await rejects(build({ w: { dtype: 'F32', shape: [1] } }, 4), /tensor "w": data_offsets is missing$/);
});

test('rejects an unknown dtype', async () => {
  await rejects(build({ w: { dtype: 'F7', shape: [1], data_offsets: [0, 1] } }, 1),
    /invalid safetensors header: tensor "w": unknown dtype "F7" \(supported: F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL, F8_E4M3, F8_E5M2\)$/);
  await rejects(build({ w: { dtype: 'f32', shape: [1], data_offsets: [0, 4] } }, 4), /tensor "w": unknown dtype "f32"/);
  await rejects(build({ w: { dtype: 'toString', shape: [1], data_offsets: [0, 4] } }, 4), /unknown dtype "toString"/);
});

test('rejects a bad shape: negative, fractional, not numbers, not an array', async () => {
  await rejects(build({ w: f32([2, -1], 0, 8) }, 8), /tensor "w": shape \[2,-1\] is not a list of non-negative integers$/);
  await rejects(build({ w: f32([1.5], 0, 6) }, 6), /tensor "w": shape \[1\.5\] is not a list of non-negative integers$/);
  await rejects(build({ w: { dtype: 'F32', shape: ['2'], data_offsets: [0, 8] } }, 8), /shape \["2"\] is not a list/);
  await rejects(build({ w: { dtype: 'F32', shape: 4, data_offsets: [0, 16] } }, 16), /shape 4 is not a list/);
  // Beyond 2^53 JSON numbers lose precision, so such a dimension is rejected rather than guessed.
  await rejects(build({ w: f32([2 ** 60], 0, 8) }, 8), /shape \[1152921504606847000\] is not a list of non-negative integers/);
});

test('rejects malformed data_offsets', async () => {
  await rejects(build({ w: f32([2], -8, 0) }, 8), /tensor "w": data_offsets \[-8,0\] is not a pair of non-negative integers$/);
  await rejects(build({ w: { dtype: 'F32', shape: [2], data_offsets: [0, 4, 8] } }, 8), /data_offsets \[0,4,8\] is not a pair/);
  await rejects(build({ w: { dtype: 'F32', shape: [2], data_offsets: { begin: 0 } } }, 8), /data_offsets \{"begin":0\} is not a pair/);
});

test('rejects data_offsets whose begin is after end', async () => {
  await rejects(build({ w: f32([1], 8, 4) }, 8), /invalid safetensors header: tensor "w": data_offsets \[8, 4\] begin after end$/);
});

test('rejects a byte range that does not match shape × dtype size', async () => {
  await rejects(build({ w: f32([2, 3], 0, 20) }, 20),
    /invalid safetensors header: tensor "w": shape \[2, 3\] of F32 needs 24 bytes, but data_offsets \[0, 20\] hold 20$/);
  await rejects(build({ s: f32([], 0, 0) }), /tensor "s": shape \[\] of F32 needs 4 bytes, but data_offsets \[0, 0\] hold 0$/);
  // An element count beyond 2^53 cannot be checked exactly, so it can never pass.
  await rejects(build({ w: { dtype: 'U8', shape: [2 ** 30, 2 ** 30, 2 ** 30], data_offsets: [0, 8] } }, 8),
    /shape \[1073741824, 1073741824, 1073741824\] of U8 needs more than 2\^53 bytes/);
});

test('rejects overlapping tensors', async () => {
  await rejects(build({ a: f32([4], 0, 16), b: f32([4], 8, 24) }, 24),
    /^[^:]+: tensor "b" data_offsets \[8, 24\] overlap tensor "a" data_offsets \[0, 16\]$/);
  // Two tensors sharing one range (as a pickle with tied weights might, but safetensors cannot).
  await rejects(build({ a: f32([2], 0, 8), b: f32([2], 0, 8) }, 8), /tensor "b" data_offsets \[0, 8\] overlap tensor "a"/);
});

test('rejects a hole between tensors or before the first one', async () => {
  await rejects(build({ a: f32([4], 0, 16), b: f32([2], 24, 32) }, 32),
    /tensor "b" data_offsets \[24, 32\] leave a hole: data bytes 16\.\.24 belong to no tensor$/);
  await rejects(build({ a: f32([2], 8, 16) }, 16), /tensor "a" data_offsets \[8, 16\] leave a hole: data bytes 0\.\.8 belong to no tensor$/);
});

test('rejects offsets that lie outside the data area', async () => {
  // The header is self-consistent, but the file holds only the first tensor's bytes.
  await rejects(build({ a: f32([2], 0, 8), b: f32([2], 8, 16) }, 8),
    /truncated: expected 16 bytes of tensor data, file has 8 \(tensor "b" data_offsets \[8, 16\] reach past the end of the file\)$/);
  await rejects(build({ a: { dtype: 'U8', shape: [2 ** 40], data_offsets: [0, 2 ** 40] } }, 8),
    /truncated: expected 1099511627776 bytes of tensor data, file has 8 \(tensor "a"/);
});

test('rejects data after the last tensor (the data area must be fully covered)', async () => {
  await rejects(build({ a: f32([2], 0, 8) }, 12), /4 bytes of data after the last tensor: tensors cover 8 bytes of tensor data, file has 12$/);
  await rejects(build({}, 3), /3 bytes of data after the last tensor/);
});

test('rejects a truncated file', async () => {
  const good = serializeSafetensors({ w: Tensor.f32([6], [1, 2, 3, 4, 5, 6]), v: new Tensor('u8', [3]) }, { format: 'pt' });
  await rejects(good.subarray(0, good.length - 4), /truncated: expected 27 bytes of tensor data, file has 23 \(tensor "w"/);
  // Cut inside the header: the length prefix now points past the end.
  await rejects(good.subarray(0, 20), /not a safetensors file: header length \d+ exceeds file size 20$/);
});

test('rejects bad __metadata__', async () => {
  await rejects(build({ __metadata__: { format: 'pt', epochs: 3 } }),
    /invalid safetensors header: __metadata__ value for "epochs" is number 3, expected a string$/);
  await rejects(build({ __metadata__: { nested: { a: 'b' } } }), /__metadata__ value for "nested" is an object, expected a string$/);
  await rejects(build({ __metadata__: ['pt'] }), /__metadata__ is an array, expected an object of strings$/);
  await rejects(build({ __metadata__: 'pt' }), /__metadata__ is string "pt", expected an object of strings$/);
});

test('reading a key the file does not have names the key and the file', async () => {
  const path = await put(serializeSafetensors({ 'model.w': Tensor.f32([1], [1]) }));
  const f = await openSafetensors(path);
  try {
    assert.equal(f.has('model.x'), false);
    assert.equal(f.info('model.x'), undefined);
    await assert.rejects(f.read('model.x'), (err: Error) => {
      assert.equal(err.message, `${path}: no tensor "model.x" in this file (it has 1 tensors)`);
      return true;
    });
    await assert.rejects(f.readBytes('__metadata__'), /no tensor "__metadata__" in this file/);
  } finally {
    await f.close();
  }
});

test('a missing file gives the operating system error with its path', async () => {
  const path = join(dir, 'does-not-exist.safetensors');
  await assert.rejects(openSafetensors(path), (err: NodeJS.ErrnoException) => {
    assert.equal(err.code, 'ENOENT');
    assert.ok(err.message.includes(path));
    return true;
  });
});
