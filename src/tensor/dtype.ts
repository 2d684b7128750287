/** Element types as checkpoint files store them. Compute happens in f32 (CPU) or f16 (GPU). */
export type DType =
  | 'f64' | 'f32' | 'f16' | 'bf16'
  | 'i64' | 'i32' | 'i16' | 'i8' | 'u8' | 'bool'
  | 'f8e4m3' | 'f8e5m2';

export const DTYPE_SIZE: Record<DType, number> = {
  f64: 8, f32: 4, f16: 2, bf16: 2,
  i64: 8, i32: 4, i16: 2, i8: 1, u8: 1, bool: 1,
  f8e4m3: 1, f8e5m2: 1,
};

export function isFloatDType(d: DType): boolean {
  return d === 'f64' || d === 'f32' || d === 'f16' || d === 'bf16' || d === 'f8e4m3' || d === 'f8e5m2';
}

/** Number of elements of a shape; [] is a scalar with one element. */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
