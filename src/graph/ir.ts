import type { Tensor } from '../tensor/tensor.js';
import type { Shape, Value, ValueType } from './types.js';
import type { WeightRef } from './weights.js';

/** An ONNX attribute value, tagged with its ONNX kind so emission never has to guess int vs float. */
export type Attr =
  | { readonly i: number }
  | { readonly f: number }
  | { readonly s: string }
  | { readonly ints: readonly number[] }
  | { readonly floats: readonly number[] };

/**
 * One node of the IR. Most are ONNX operators as they will be emitted; a few (domain 'latentkit')
 * are lowered at emission time, where the choice depends on the execution provider.
 */
export interface Node {
  readonly op: string;
  readonly domain: '' | 'com.microsoft' | 'latentkit';
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, Attr>>;
}

export interface WeightInit {
  readonly name: string;
  readonly ref: WeightRef;
  readonly type: ValueType;
  readonly shape: readonly number[];
}

export interface ConstInit {
  readonly name: string;
  readonly tensor: Tensor;
}

/** A finished graph: what emission and the session cache consume. */
export interface GraphIR {
  readonly inputs: readonly Value[];
  readonly outputs: readonly Value[];
  readonly nodes: readonly Node[];
  readonly weights: readonly WeightInit[];
  readonly constants: readonly ConstInit[];
  /** Compute dtype: floating weights are converted to it when materialised. */
  readonly dtype: ValueType;
  /** Inferred shape of every value, for analysis (FLOP counts, memory estimates). */
  readonly shapes: ReadonlyMap<string, Shape>;
}
