// Multiply-add counts of a graph for given input sizes, so benchmarks can report GFLOP/s of the real
// network instead of a guess. Only convolutions, matmuls and attention are counted (they are >99% of
// the work in Stable Diffusion); element-wise ops are ignored.
import type { GraphIR } from './ir.js';
import type { Dim } from './types.js';

/**
 * Evaluates a symbolic dim ("H", "ceil(H/2)*2", "(H*W)/8") for concrete sizes. A small recursive-descent
 * parser over + - * / ( ) ceil floor and names; anything else is an error.
 */
export function evalDim(d: Dim, sizes: Readonly<Record<string, number>>): number {
  if (typeof d === 'number') return d;
  const tokens = d.match(/\s*(\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_]*|[-+*/()])/g)?.map((t) => t.trim()) ?? [];
  if (tokens.join('') !== d.replace(/\s+/g, '')) throw new Error(`cannot evaluate dim '${d}'`);
  let i = 0;
  const peek = () => tokens[i];
  const take = () => tokens[i++];
  const expr = (): number => {
    let v = term();
    while (peek() === '+' || peek() === '-') v = take() === '+' ? v + term() : v - term();
    return v;
  };
  const term = (): number => {
    let v = factor();
    while (peek() === '*' || peek() === '/') v = take() === '*' ? v * factor() : v / factor();
    return v;
  };
  const factor = (): number => {
    const t = take();
    if (t === undefined) throw new Error(`cannot evaluate dim '${d}'`);
    if (t === '(') {
      const v = expr();
      if (take() !== ')') throw new Error(`cannot evaluate dim '${d}'`);
      return v;
    }
    if (t === '-') return -factor();
    if (/^\d/.test(t)) return Number(t);
    if ((t === 'ceil' || t === 'floor') && peek() === '(') {
      take();
      const v = expr();
      if (take() !== ')') throw new Error(`cannot evaluate dim '${d}'`);
      return t === 'ceil' ? Math.ceil(v) : Math.floor(v);
    }
    if (t in sizes) return sizes[t];
    throw new Error(`dim '${d}' uses '${t}', which has no size`);
  };
  const v = expr();
  if (i !== tokens.length) throw new Error(`cannot evaluate dim '${d}'`);
  return v;
}

/** Floating-point operations (2 per multiply-add) of the graph's convolutions, matmuls and attention. */
export function countFlops(ir: GraphIR, sizes: Readonly<Record<string, number>>): number {
  const shape = (name: string) => {
    const s = ir.shapes.get(name);
    if (!s) throw new Error(`no shape recorded for '${name}'`);
    return s.map((d) => evalDim(d, sizes));
  };
  const prod = (a: number[]) => a.reduce((p, v) => p * v, 1);
  let flops = 0;
  for (const n of ir.nodes) {
    if (n.op === 'Conv') {
      const out = shape(n.outputs[0]);
      const w = shape(n.inputs[1]);
      flops += 2 * prod(out) * prod(w.slice(1));
    } else if (n.op === 'MatMul') {
      const out = shape(n.outputs[0]);
      const a = shape(n.inputs[0]);
      flops += 2 * prod(out) * a[a.length - 1];
    } else if (n.op === 'Attention') {
      const q = shape(n.inputs[0]);
      const k = shape(n.inputs[1]);
      const v = shape(n.inputs[2]);
      flops += 2 * q[0] * q[1] * k[1] * (q[2] + v[2]);
    }
  }
  return flops;
}
