import type { DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';

/** What a file says about one tensor, known before any of its data is read. */
export interface TensorInfo {
  readonly dtype: DType;
  readonly shape: readonly number[];
}

/**
 * A checkpoint opened for reading: the key list and shapes come from the header (safetensors) or the
 * pickle (PyTorch files); tensor data is read from disk only when asked for, by byte range.
 */
export interface StateDict {
  /** The file this came from, for error messages. */
  readonly path: string;
  /** Free-form string metadata (safetensors `__metadata__`); empty when the format has none. */
  readonly metadata: Readonly<Record<string, string>>;
  keys(): string[];
  has(key: string): boolean;
  info(key: string): TensorInfo | undefined;
  /** Reads one tensor; throws an error naming the key and the file when it is absent or unreadable. */
  read(key: string): Promise<Tensor>;
  close(): Promise<void>;
}
