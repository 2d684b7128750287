import { DTYPE_SIZE, isFloatDType } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import type { WeightInit } from './ir.js';
import { formatShape } from './types.js';
import type { WeightSource } from './weights.js';

/** [r, c] → [c, r], in 32×32 blocks so both sides stay in cache (a plain loop strides through memory). */
function transpose2d(t: Tensor): Tensor {
  const [r, c] = t.shape;
  const size = DTYPE_SIZE[t.dtype];
  const src = t.bytes();
  const out = new Tensor(t.dtype, [c, r]);
  const B = 32;
  const blocked = <A extends Uint32Array | Uint16Array | Uint8Array>(s: A, d: A) => {
    for (let i0 = 0; i0 < r; i0 += B) {
      const i1 = Math.min(i0 + B, r);
      for (let j0 = 0; j0 < c; j0 += B) {
        const j1 = Math.min(j0 + B, c);
        for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) d[j * r + i] = s[i * c + j];
      }
    }
  };
  if (size === 4) {
    blocked(new Uint32Array(src.buffer, src.byteOffset, r * c), new Uint32Array(out.data.buffer, out.data.byteOffset, r * c));
  } else if (size === 2) {
    blocked(new Uint16Array(src.buffer, src.byteOffset, r * c), new Uint16Array(out.data.buffer, out.data.byteOffset, r * c));
  } else if (size === 1) {
    blocked(src, out.bytes());
  } else {
    const d = out.bytes();
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) d.set(src.subarray((i * c + j) * size, (i * c + j + 1) * size), (j * r + i) * size);
  }
  return out;
}

/** Reads one weight, converts it to the initializer's type and applies its layout transform. */
export async function materializeWeight(w: WeightInit, source: WeightSource): Promise<Tensor> {
  let t = await source.read(w.ref.key);
  if (t.shape.length !== w.ref.storedShape.length || t.shape.some((d, i) => d !== w.ref.storedShape[i])) {
    throw new Error(`weight '${w.ref.key}' changed shape from ${formatShape(w.ref.storedShape)} to ${formatShape(t.shape)} while the model was built`);
  }
  // Layout first, in the stored dtype: an fp16 checkpoint moves half the bytes it would as f32.
  for (const tr of w.ref.transforms) {
    if (tr.kind === 'transpose') t = transpose2d(t);
    else if (tr.kind === 'reshape') t = t.reshape(tr.shape);
    else if (tr.kind === 'rows') {
      const row = t.size / t.shape[0];
      t = new Tensor(t.dtype, [tr.end - tr.start, ...t.shape.slice(1)], t.data.slice(tr.start * row, tr.end * row));
    }
  }
  if (w.type === 'f32' || w.type === 'f16' || w.type === 'bf16') {
    if (!isFloatDType(t.dtype)) throw new Error(`weight '${w.ref.key}' is ${t.dtype}, a float was expected`);
    t = t.to(w.type);
  } else if (w.type === 'i64' && t.dtype !== 'i64') {
    t = new Tensor('i64', t.shape, BigInt64Array.from(t.toFloat32Array(), (v) => BigInt(Math.round(v))));
  }
  return t;
}

/**
 * Materialises every weight of an emitted model as the in-memory external data ONNX Runtime reads.
 * Reads run a few at a time so a large checkpoint streams through without stalling on one file.
 */
export async function materializeWeights(
  files: readonly { path: string; weight: WeightInit }[], source: WeightSource, concurrency = 8,
): Promise<{ path: string; data: Uint8Array }[]> {
  const out = new Array<{ path: string; data: Uint8Array }>(files.length);
  let next = 0;
  async function worker() {
    while (next < files.length) {
      const i = next++;
      const t = await materializeWeight(files[i].weight, source);
      out[i] = { path: files[i].path, data: t.bytes() };
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, files.length) }, worker));
  return out;
}
