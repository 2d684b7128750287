import { formatShape, type Dim, type Shape } from './types.js';

/**
 * Shape arithmetic over numeric and symbolic dims. Symbolic dims are strings; two different strings
 * cannot be proven unequal (H/2*2 may equal H), so checks only fail on numbers that disagree.
 */

export function dimEq(a: Dim, b: Dim): boolean | undefined {
  if (typeof a === 'number' && typeof b === 'number') return a === b;
  if (a === b) return true;
  return undefined;
}

function wrap(d: Dim): string {
  return typeof d === 'number' || /^[A-Za-z_][A-Za-z0-9_]*$/.test(d) ? String(d) : `(${d})`;
}

export function dimMul(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  if (a === 1) return b;
  if (b === 1) return a;
  return `${wrap(a)}*${wrap(b)}`;
}

export function dimAdd(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  return `${wrap(a)}+${wrap(b)}`;
}

/** Output size of a convolution / pooling window along one axis (floor division, as ONNX and torch). */
export function convOut(size: Dim, kernel: number, stride: number, padBegin: number, padEnd: number, dilation: number): Dim {
  const span = dilation * (kernel - 1) + 1;
  if (typeof size === 'number') {
    const out = Math.floor((size + padBegin + padEnd - span) / stride) + 1;
    if (out <= 0) throw new Error(`convolution window ${kernel} (stride ${stride}) does not fit an input of size ${size}`);
    return out;
  }
  const delta = padBegin + padEnd - span + 1;
  if (stride === 1) return delta === 0 ? size : `${wrap(size)}${delta > 0 ? '+' : '-'}${Math.abs(delta)}`;
  const inner = delta === 0 ? wrap(size) : `${wrap(size)}${delta > 0 ? '+' : '-'}${Math.abs(delta)}`;
  return `ceil(${inner}/${stride})`;
}

/** Numpy-style broadcasting of two shapes. */
export function broadcastShapes(a: Shape, b: Shape, what: string): Dim[] {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da === 1) out.push(db);
    else if (db === 1) out.push(da);
    else if (dimEq(da, db) === false) {
      throw new Error(`${what}: shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
    } else out.push(typeof da === 'number' ? da : db);
  }
  return out;
}

export function normAxis(axis: number, rank: number, what: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`${what}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

export function product(dims: readonly Dim[]): Dim {
  return dims.reduce<Dim>((p, d) => dimMul(p, d), 1);
}
