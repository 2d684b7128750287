import { DTYPE_SIZE, numel, type DType } from './dtype.js';
import {
  bf16ToFloat, f8e4m3ToFloat, f8e5m2ToFloat, floatArrayToHalf, floatToBf16, halfArrayToFloat,
} from './half.js';

export type TensorData =
  | Float64Array | Float32Array | Uint16Array | BigInt64Array | Int32Array
  | Int16Array | Int8Array | Uint8Array;

/** The typed-array class that holds each dtype: 16-bit floats and fp8 are kept as raw bits. */
function allocate(dtype: DType, n: number): TensorData {
  switch (dtype) {
    case 'f64': return new Float64Array(n);
    case 'f32': return new Float32Array(n);
    case 'f16': case 'bf16': return new Uint16Array(n);
    case 'i64': return new BigInt64Array(n);
    case 'i32': return new Int32Array(n);
    case 'i16': return new Int16Array(n);
    case 'i8': return new Int8Array(n);
    case 'u8': case 'bool': case 'f8e4m3': case 'f8e5m2': return new Uint8Array(n);
  }
}

/** A host tensor: a dense, row-major typed array with a shape. */
export class Tensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TensorData;

  constructor(dtype: DType, shape: readonly number[], data?: TensorData) {
    const n = numel(shape);
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new Error(`invalid tensor shape [${shape.join(', ')}]`);
    }
    this.dtype = dtype;
    this.shape = [...shape];
    this.data = data ?? allocate(dtype, n);
    if (this.data.length !== n) {
      throw new Error(`tensor data has ${this.data.length} elements, shape [${shape.join(', ')}] needs ${n}`);
    }
  }

  static f32(shape: readonly number[], data?: Float32Array | readonly number[]): Tensor {
    return new Tensor('f32', shape, data instanceof Float32Array ? data : data ? Float32Array.from(data) : undefined);
  }

  /** Copies little-endian bytes (any alignment) into a new tensor of the given dtype. */
  static fromBytes(dtype: DType, shape: readonly number[], bytes: Uint8Array): Tensor {
    const n = numel(shape);
    const need = n * DTYPE_SIZE[dtype];
    if (bytes.byteLength !== need) {
      throw new Error(`${bytes.byteLength} bytes given for a ${dtype} tensor of shape [${shape.join(', ')}] (needs ${need})`);
    }
    const t = new Tensor(dtype, shape);
    new Uint8Array(t.data.buffer, t.data.byteOffset, need).set(bytes);
    return t;
  }

  get size(): number {
    return this.data.length;
  }

  /** The raw little-endian bytes, without copying. */
  bytes(): Uint8Array {
    return new Uint8Array(this.data.buffer, this.data.byteOffset, this.data.byteLength);
  }

  /** The values as f32 (a view when already f32, otherwise a converted copy). */
  toFloat32Array(): Float32Array {
    const d = this.data;
    switch (this.dtype) {
      case 'f32': return d as Float32Array;
      case 'f16': return halfArrayToFloat(d as Uint16Array);
      case 'bf16': return Float32Array.from(d as Uint16Array, bf16ToFloat);
      case 'f8e4m3': return Float32Array.from(d as Uint8Array, f8e4m3ToFloat);
      case 'f8e5m2': return Float32Array.from(d as Uint8Array, f8e5m2ToFloat);
      case 'i64': return Float32Array.from(d as BigInt64Array, (v) => Number(v));
      default: return Float32Array.from(d as ArrayLike<number>);
    }
  }

  /** Converts to a floating compute dtype. */
  to(dtype: 'f32' | 'f16' | 'bf16'): Tensor {
    if (dtype === this.dtype) return this;
    const f = this.toFloat32Array();
    if (dtype === 'f32') return new Tensor('f32', this.shape, f === this.data ? new Float32Array(f) : f);
    if (dtype === 'f16') return new Tensor('f16', this.shape, floatArrayToHalf(f));
    return new Tensor('bf16', this.shape, Uint16Array.from(f, floatToBf16));
  }

  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.dtype, shape, this.data);
  }
}

/**
 * Materialises a strided view (as PyTorch storages hold them) into a dense row-major tensor.
 * `storage` holds the whole storage's bytes; offset and strides count elements.
 */
export function fromStrided(
  dtype: DType, shape: readonly number[], strides: readonly number[], storageOffset: number, storage: Uint8Array,
): Tensor {
  const size = DTYPE_SIZE[dtype];
  const n = numel(shape);
  if (strides.length !== shape.length) throw new Error(`strides [${strides.join(', ')}] do not match shape [${shape.join(', ')}]`);
  if (n === 0) return new Tensor(dtype, shape);
  let maxIndex = storageOffset;
  for (let i = 0; i < shape.length; i++) {
    if (strides[i] < 0) throw new Error('negative strides are not supported');
    maxIndex += (shape[i] - 1) * strides[i];
  }
  if (storageOffset < 0 || (maxIndex + 1) * size > storage.byteLength) {
    throw new Error(`tensor view (offset ${storageOffset}, shape [${shape.join(', ')}], strides [${strides.join(', ')}]) reaches past its storage of ${storage.byteLength / size} elements`);
  }
  let contiguous = true;
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && strides[i] !== expect) { contiguous = false; break; }
    expect *= shape[i];
  }
  if (contiguous) {
    return Tensor.fromBytes(dtype, shape, storage.subarray(storageOffset * size, (storageOffset + n) * size));
  }
  const out = new Tensor(dtype, shape);
  const dst = out.bytes();
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = 0; k < n; k++) {
    let e = storageOffset;
    for (let i = 0; i < shape.length; i++) e += idx[i] * strides[i];
    dst.set(storage.subarray(e * size, e * size + size), k * size);
    for (let i = shape.length - 1; i >= 0; i--) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}
