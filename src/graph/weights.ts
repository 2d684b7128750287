import type { TensorInfo } from '../formats/state-dict.js';
import type { Tensor } from '../tensor/tensor.js';
import { formatShape, type Shape } from './types.js';

/** Where weights come from: a StateDict satisfies this, and so does an in-memory map (tests, patches). */
export interface WeightSource {
  /** Identity of the weights, used in session cache keys (file path + size + mtime, or a patch id). */
  readonly id: string;
  /** What error messages call it (the file path); defaults to `id`. */
  readonly label?: string;
  info(key: string): TensorInfo | undefined;
  read(key: string): Promise<Tensor>;
}

/**
 * How a stored tensor becomes an initializer. Transforms run on the host when the session is built,
 * so the graph never carries a Transpose of a constant and ONNX Runtime never holds two copies.
 */
export type WeightTransform =
  | { kind: 'none' }
  | { kind: 'transpose' } // 2-D [out, in] (torch Linear) → [in, out] for MatMul
  | { kind: 'reshape'; shape: readonly number[] }
  | { kind: 'rows'; start: number; end: number }; // a block of rows, e.g. q/k/v out of a fused in_proj

export interface WeightRef {
  readonly key: string;
  readonly storedShape: readonly number[];
  /** Applied in order when the weight is materialised. */
  readonly transforms: readonly WeightTransform[];
}

/** An expected shape; `undefined` entries accept any size (hyperparameters read from the file). */
export type ShapePattern = readonly (number | undefined)[];

export function checkWeightShape(key: string, actual: readonly number[], expected: ShapePattern | undefined): void {
  if (!expected) return;
  const ok = actual.length === expected.length && expected.every((d, i) => d === undefined || d === actual[i]);
  if (!ok) {
    const exp = formatShape(expected.map((d) => (d === undefined ? '?' : d)) as Shape);
    throw new Error(`weight '${key}' has shape ${formatShape(actual)} but the model expects ${exp}`);
  }
}

/** A WeightSource over tensors held in memory. */
export class MemoryWeights implements WeightSource {
  readonly id: string;
  private readonly tensors: Map<string, Tensor>;
  private static counter = 0;

  constructor(tensors: Record<string, Tensor> | Map<string, Tensor>, id?: string) {
    this.tensors = tensors instanceof Map ? new Map(tensors) : new Map(Object.entries(tensors));
    this.id = id ?? `memory:${++MemoryWeights.counter}`;
  }

  info(key: string): TensorInfo | undefined {
    const t = this.tensors.get(key);
    return t && { dtype: t.dtype, shape: t.shape };
  }

  async read(key: string): Promise<Tensor> {
    const t = this.tensors.get(key);
    if (!t) throw new Error(`no tensor '${key}' in ${this.id}`);
    return t;
  }
}

/** A StateDict seen as a WeightSource; `id` should identify the file's content (path + size + mtime). */
export function stateDictWeights(sd: { path: string; info(key: string): TensorInfo | undefined; read(key: string): Promise<Tensor> }, id: string = sd.path): WeightSource {
  return { id, label: sd.path, info: (key) => sd.info(key), read: (key) => sd.read(key) };
}
