/** Element types a graph value can have. Weights are converted to the graph's compute dtype. */
export type ValueType = 'f32' | 'f16' | 'bf16' | 'f64' | 'i64' | 'i32' | 'i8' | 'u8' | 'bool';

/** A dimension: a number when known at build time, otherwise a symbolic name or expression ("B", "H/2"). */
export type Dim = number | string;
export type Shape = readonly Dim[];

/** A tensor-valued edge of the graph. */
export interface Value {
  readonly name: string;
  readonly type: ValueType;
  readonly shape: Shape;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function isFloatType(t: ValueType): boolean {
  return t === 'f32' || t === 'f16' || t === 'bf16' || t === 'f64';
}
