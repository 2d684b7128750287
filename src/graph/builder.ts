import { Tensor } from '../tensor/tensor.js';
import type { DType } from '../tensor/dtype.js';
import type { Attr, ConstInit, GraphIR, Node, WeightInit } from './ir.js';
import {
  broadcastShapes, convOut, dimAdd, dimEq, dimMul, normAxis, product,
} from './shape.js';
import { formatShape, isFloatType, type Dim, type Shape, type Value, type ValueType } from './types.js';
import {
  checkWeightShape, type ShapePattern, type WeightRef, type WeightSource, type WeightTransform,
} from './weights.js';

export interface BuilderOptions {
  /** Compute dtype of activations and floating weights (f32 on CPU, f16 on GPU). */
  readonly dtype?: 'f32' | 'f16';
  /** Where `weight()` finds tensors; required only when the graph uses weights. */
  readonly weights?: WeightSource;
}

export interface Conv2dOptions {
  readonly stride?: number | readonly [number, number];
  /** Symmetric padding, [h, w], or explicit [top, left, bottom, right] as ONNX orders it. */
  readonly padding?: number | readonly [number, number] | readonly [number, number, number, number];
  readonly dilation?: number | readonly [number, number];
  readonly groups?: number;
  /** Expected (square) kernel size, checked against the weight when it comes from a scope. */
  readonly kernel?: number;
}

export interface AttentionOptions {
  readonly heads: number;
  /** Defaults to head_dim^-0.5. */
  readonly scale?: number;
  /** Additive bias on the logits, broadcastable to [B, heads, S, L] (a causal mask, for instance). */
  readonly bias?: Value;
}

type Operand = Value | number;

const TENSOR_DTYPE: Partial<Record<ValueType, DType>> = {
  f32: 'f32', f16: 'f16', bf16: 'bf16', f64: 'f64', i64: 'i64', i32: 'i32', i8: 'i8', u8: 'u8', bool: 'bool',
};

function pair(v: number | readonly [number, number] | undefined, dflt: number): [number, number] {
  if (v === undefined) return [dflt, dflt];
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

/**
 * Weights under one key prefix, mirroring the checkpoint's module tree:
 * `w.scope('input_blocks.1.0').get('in_layers.0.weight')` names `…input_blocks.1.0.in_layers.0.weight`.
 */
export class WeightScope {
  constructor(private readonly g: GraphBuilder, readonly prefix: string) {}

  key(name: string): string {
    return this.prefix ? `${this.prefix}.${name}` : name;
  }

  scope(name: string | number): WeightScope {
    return new WeightScope(this.g, this.key(String(name)));
  }

  has(name: string): boolean {
    return this.g.hasWeight(this.key(name));
  }

  /** The stored shape of a weight, for reading hyperparameters off the file. */
  shape(name: string): readonly number[] | undefined {
    return this.g.weightShape(this.key(name));
  }

  get(name: string, expected?: ShapePattern, transform?: WeightTransform | readonly WeightTransform[]): Value {
    return this.g.weight(this.key(name), expected, transform);
  }
}

/**
 * Builds a graph with typed ops and shape inference. Every op checks its operands' shapes as far as
 * they are known, so a wrong model description fails here with the weight key, not inside ONNX Runtime.
 */
export class GraphBuilder {
  readonly dtype: 'f32' | 'f16';
  private readonly source: WeightSource | undefined;
  private readonly nodes: Node[] = [];
  private readonly inputs: Value[] = [];
  private readonly outputs: Value[] = [];
  private readonly weights = new Map<string, WeightInit>();
  private readonly constants: ConstInit[] = [];
  private readonly scalarCache = new Map<string, Value>();
  private readonly names = new Set<string>();
  private readonly shapes = new Map<string, Shape>();
  private counter = 0;

  constructor(options: BuilderOptions = {}) {
    this.dtype = options.dtype ?? 'f32';
    this.source = options.weights;
  }

  // ---- graph structure -------------------------------------------------------------------------

  private fresh(hint: string): string {
    let name: string;
    do name = `${hint}_${this.counter++}`; while (this.names.has(name));
    this.names.add(name);
    return name;
  }

  private value(hint: string, type: ValueType, shape: Shape): Value {
    const v = { name: this.fresh(hint), type, shape: [...shape] };
    this.shapes.set(v.name, v.shape);
    return v;
  }

  private node(op: string, inputs: readonly (Value | string)[], outputs: readonly Value[], attrs: Record<string, Attr> = {}, domain: Node['domain'] = ''): void {
    this.nodes.push({ op, domain, inputs: inputs.map((v) => (typeof v === 'string' ? v : v.name)), outputs: outputs.map((v) => v.name), attrs });
  }

  private op1(op: string, inputs: readonly (Value | string)[], type: ValueType, shape: Shape, attrs: Record<string, Attr> = {}, domain: Node['domain'] = ''): Value {
    const out = this.value(op.toLowerCase(), type, shape);
    this.node(op, inputs, [out], attrs, domain);
    return out;
  }

  input(name: string, shape: Shape, type: ValueType = this.dtype): Value {
    if (this.names.has(name)) throw new Error(`graph input '${name}' is defined twice`);
    this.names.add(name);
    const v: Value = { name, type, shape: [...shape] };
    this.shapes.set(name, v.shape);
    this.inputs.push(v);
    return v;
  }

  output(v: Value, name: string): Value {
    if (this.outputs.some((o) => o.name === name)) throw new Error(`graph output '${name}' is defined twice`);
    if (this.names.has(name)) throw new Error(`graph output name '${name}' is already used inside the graph`);
    this.names.add(name);
    const out: Value = { name, type: v.type, shape: v.shape };
    this.shapes.set(name, out.shape);
    this.node('Identity', [v], [out]);
    this.outputs.push(out);
    return out;
  }

  finish(): GraphIR {
    if (this.outputs.length === 0) throw new Error('graph has no outputs');
    return {
      inputs: [...this.inputs], outputs: [...this.outputs], nodes: [...this.nodes],
      weights: [...this.weights.values()], constants: [...this.constants], dtype: this.dtype,
      shapes: new Map([
        ...this.shapes,
        ...[...this.weights.values()].map((w) => [w.name, w.shape] as const),
        ...this.constants.map((c) => [c.name, c.tensor.shape] as const),
      ]),
    };
  }

  // ---- weights and constants -------------------------------------------------------------------

  scope(prefix = ''): WeightScope {
    return new WeightScope(this, prefix);
  }

  hasWeight(key: string): boolean {
    return this.source?.info(key) !== undefined;
  }

  weightShape(key: string): readonly number[] | undefined {
    return this.source?.info(key)?.shape;
  }

  /**
   * A lazy reference to a checkpoint tensor by key. The data is read when the session is built;
   * here only its presence and shape are checked.
   */
  weight(key: string, expected?: ShapePattern, transform: WeightTransform | readonly WeightTransform[] = []): Value {
    if (!this.source) throw new Error(`weight '${key}' requested but the graph has no weight source`);
    const info = this.source.info(key);
    if (!info) {
      const exp = expected ? ` (expected shape ${formatShape(expected.map((d) => d ?? '?'))})` : '';
      throw new Error(`missing weight '${key}'${exp} in ${this.source.label ?? this.source.id}`);
    }
    checkWeightShape(key, info.shape, expected);
    const transforms = (Array.isArray(transform) ? transform : [transform]) as readonly WeightTransform[];
    let shape: number[] = [...info.shape];
    for (const tr of transforms) {
      if (tr.kind === 'transpose') {
        if (shape.length !== 2) throw new Error(`weight '${key}' has shape ${formatShape(shape)}; only 2-D weights can be transposed`);
        shape = [shape[1], shape[0]];
      } else if (tr.kind === 'reshape') {
        if (product(tr.shape) !== product(shape)) {
          throw new Error(`weight '${key}' of shape ${formatShape(shape)} cannot be viewed as ${formatShape(tr.shape)}`);
        }
        shape = [...tr.shape];
      } else if (tr.kind === 'rows') {
        if (tr.start < 0 || tr.end > shape[0] || tr.start >= tr.end) {
          throw new Error(`weight '${key}' of shape ${formatShape(shape)} has no rows ${tr.start}..${tr.end}`);
        }
        shape = [tr.end - tr.start, ...shape.slice(1)];
      }
    }
    const id = `${key}|${JSON.stringify(transforms)}`;
    const existing = this.weights.get(id);
    if (existing) return { name: existing.name, type: existing.type, shape: existing.shape };
    const stored = info.dtype;
    const isFloat = stored === 'f32' || stored === 'f16' || stored === 'bf16' || stored === 'f64' || stored === 'f8e4m3' || stored === 'f8e5m2';
    const type: ValueType = isFloat ? this.dtype : stored === 'i64' ? 'i64' : stored === 'i32' ? 'i32' : stored === 'bool' ? 'bool' : stored === 'u8' ? 'u8' : 'i64';
    const ref: WeightRef = { key, storedShape: info.shape, transforms };
    const name = this.fresh(`w:${key}`);
    this.weights.set(id, { name, ref, type, shape });
    return { name, type, shape };
  }

  /** A small constant embedded in the graph (shape vectors, scales). */
  constant(tensor: Tensor, hint = 'const'): Value {
    const type = (Object.keys(TENSOR_DTYPE) as ValueType[]).find((k) => TENSOR_DTYPE[k] === tensor.dtype);
    if (!type) throw new Error(`constants of dtype ${tensor.dtype} are not supported`);
    const name = this.fresh(hint);
    this.constants.push({ name, tensor });
    return { name, type, shape: [...tensor.shape] };
  }

  private i64(values: readonly number[], hint = 'shape'): Value {
    return this.constant(new Tensor('i64', [values.length], BigInt64Array.from(values, (v) => BigInt(v))), hint);
  }

  /** A scalar in the compute dtype (or a given float type), shared between uses. */
  scalar(x: number, type: ValueType = this.dtype): Value {
    const id = `${type}:${Object.is(x, -0) ? '-0' : x}`;
    const hit = this.scalarCache.get(id);
    if (hit) return hit;
    let t: Tensor;
    if (type === 'f32') t = Tensor.f32([], [x]);
    else if (type === 'f16') t = Tensor.f32([], [x]).to('f16');
    else if (type === 'i64') t = new Tensor('i64', [], BigInt64Array.of(BigInt(x)));
    else throw new Error(`scalar constants of type ${type} are not supported`);
    const v = this.constant(t, 'scalar');
    this.scalarCache.set(id, v);
    return v;
  }

  private operand(x: Operand, like: Value): Value {
    return typeof x === 'number' ? this.scalar(x, like.type) : x;
  }

  // ---- element-wise ----------------------------------------------------------------------------

  private binary(op: string, a: Operand, b: Operand): Value {
    if (typeof a === 'number' && typeof b === 'number') throw new Error(`${op}: at least one operand must be a graph value`);
    const va = this.operand(a, b as Value);
    const vb = this.operand(b, va);
    if (va.type !== vb.type) throw new Error(`${op}: operand types ${va.type} and ${vb.type} differ`);
    return this.op1(op, [va, vb], va.type, broadcastShapes(va.shape, vb.shape, op));
  }

  add(a: Operand, b: Operand): Value { return this.binary('Add', a, b); }
  sub(a: Operand, b: Operand): Value { return this.binary('Sub', a, b); }
  mul(a: Operand, b: Operand): Value { return this.binary('Mul', a, b); }
  div(a: Operand, b: Operand): Value { return this.binary('Div', a, b); }
  pow(a: Value, b: Operand): Value { return this.binary('Pow', a, b); }

  private unary(op: string, x: Value, attrs: Record<string, Attr> = {}): Value {
    return this.op1(op, [x], x.type, x.shape, attrs);
  }

  sigmoid(x: Value): Value { return this.unary('Sigmoid', x); }
  tanh(x: Value): Value { return this.unary('Tanh', x); }
  exp(x: Value): Value { return this.unary('Exp', x); }
  log(x: Value): Value { return this.unary('Log', x); }
  sqrt(x: Value): Value { return this.unary('Sqrt', x); }
  erf(x: Value): Value { return this.unary('Erf', x); }
  neg(x: Value): Value { return this.unary('Neg', x); }
  sin(x: Value): Value { return this.unary('Sin', x); }
  cos(x: Value): Value { return this.unary('Cos', x); }

  clip(x: Value, min: number, max: number): Value {
    return this.op1('Clip', [x, this.scalar(min, x.type), this.scalar(max, x.type)], x.type, x.shape);
  }

  /** x·sigmoid(x); ONNX Runtime fuses the pair. */
  silu(x: Value): Value {
    return this.mul(x, this.sigmoid(x));
  }

  /** GELU, exact (erf) or the tanh approximation, written so ONNX Runtime's Gelu / FastGelu fusions match. */
  gelu(x: Value, approximate: 'none' | 'tanh' = 'none'): Value {
    if (approximate === 'none') {
      const inner = this.add(this.erf(this.div(x, Math.SQRT2)), 1);
      return this.mul(this.mul(x, inner), 0.5);
    }
    const cube = this.mul(this.mul(this.mul(x, x), x), 0.044715);
    const t = this.tanh(this.mul(this.add(x, cube), Math.sqrt(2 / Math.PI)));
    return this.mul(this.mul(x, 0.5), this.add(t, 1));
  }

  /** CLIP's x·sigmoid(1.702x). */
  quickGelu(x: Value): Value {
    return this.mul(x, this.sigmoid(this.mul(x, 1.702)));
  }

  cast(x: Value, type: ValueType): Value {
    if (x.type === type) return x;
    const onnxType = ONNX_TYPE_CODE[type];
    return this.op1('Cast', [x], type, x.shape, { to: { i: onnxType } });
  }

  // ---- linear algebra --------------------------------------------------------------------------

  matmul(a: Value, b: Value): Value {
    if (a.shape.length < 2 || b.shape.length < 2) throw new Error(`matmul needs rank ≥ 2 operands, got ${formatShape(a.shape)} and ${formatShape(b.shape)}`);
    const k1 = a.shape[a.shape.length - 1];
    const k2 = b.shape[b.shape.length - 2];
    if (dimEq(k1, k2) === false) throw new Error(`matmul: inner dimensions of ${formatShape(a.shape)} and ${formatShape(b.shape)} differ`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
    return this.op1('MatMul', [a, b], a.type, [...batch, a.shape[a.shape.length - 2], b.shape[b.shape.length - 1]]);
  }

  /**
   * torch.nn.Linear over the last axis. `w` is a scope holding `weight` [out, in] (and `bias` [out]
   * when present) or an explicit [in, out] weight value.
   */
  linear(x: Value, w: WeightScope | Value, bias?: Value): Value {
    const inF = x.shape[x.shape.length - 1];
    let weight: Value;
    let b = bias;
    if (w instanceof WeightScope) {
      const stored = w.shape('weight');
      weight = w.get('weight', [undefined, typeof inF === 'number' ? inF : undefined], { kind: 'transpose' });
      if (w.has('bias')) b = w.get('bias', [stored?.[0]]);
    } else weight = w;
    let y = this.matmul(x, weight);
    if (b) y = this.add(y, b);
    return y;
  }

  // ---- convolution and normalisation -----------------------------------------------------------

  /** 2-D convolution, NCHW. `w` is a scope with `weight` [O, C/groups, kh, kw] and optional `bias`. */
  conv2d(x: Value, w: WeightScope | Value, options: Conv2dOptions = {}, bias?: Value): Value {
    if (x.shape.length !== 4) throw new Error(`conv2d expects an NCHW input, got ${formatShape(x.shape)}`);
    const groups = options.groups ?? 1;
    const c = x.shape[1];
    let weight: Value;
    let b = bias;
    if (w instanceof WeightScope) {
      const cin = typeof c === 'number' ? c / groups : undefined;
      const k = options.kernel;
      weight = w.get('weight', [undefined, cin, k, k]);
      if (w.has('bias')) b = w.get('bias', [weight.shape[0] as number]);
    } else weight = w;
    if (weight.shape.length !== 4) throw new Error(`conv2d weight must be 4-D, got ${formatShape(weight.shape)}`);
    const [o, ci, kh, kw] = weight.shape as number[];
    if (typeof c === 'number' && (c % groups !== 0 || c / groups !== ci)) {
      throw new Error(`conv2d: input has ${c} channels but the weight ${formatShape(weight.shape)} with ${groups} group(s) expects ${ci * groups}`);
    }
    if (o % groups !== 0) throw new Error(`conv2d: ${o} output channels are not divisible by ${groups} groups`);
    const [sh, sw] = pair(options.stride, 1);
    const [dh, dw] = pair(options.dilation, 1);
    let pads: [number, number, number, number];
    const p = options.padding ?? 0;
    if (typeof p === 'number') pads = [p, p, p, p];
    else if (p.length === 2) pads = [p[0], p[1], p[0], p[1]];
    else pads = [p[0], p[1], p[2], p[3]];
    const h = convOut(x.shape[2], kh, sh, pads[0], pads[2], dh);
    const wd = convOut(x.shape[3], kw, sw, pads[1], pads[3], dw);
    const inputs = b ? [x, weight, b] : [x, weight];
    return this.op1('Conv', inputs, x.type, [x.shape[0], o, h, wd], {
      kernel_shape: { ints: [kh, kw] }, strides: { ints: [sh, sw] }, pads: { ints: pads },
      dilations: { ints: [dh, dw] }, group: { i: groups },
    });
  }

  /**
   * GroupNorm over NC… input. Lowered as reshape → InstanceNormalization → reshape → affine, which
   * ONNX Runtime runs on every provider; `w` holds `weight` and `bias` of shape [C].
   */
  groupNorm(x: Value, w: WeightScope | { weight: Value; bias: Value }, groups: number, eps: number): Value {
    if (x.shape.length < 3) throw new Error(`groupNorm expects N, C and at least one spatial axis, got ${formatShape(x.shape)}`);
    const c = x.shape[1];
    if (typeof c !== 'number') throw new Error('groupNorm needs a known channel count');
    if (c % groups !== 0) throw new Error(`groupNorm: ${c} channels are not divisible by ${groups} groups`);
    const affineShape = [c, ...x.shape.slice(2).map(() => 1)];
    let weight: Value;
    let bias: Value;
    if (w instanceof WeightScope) {
      weight = w.get('weight', [c], { kind: 'reshape', shape: affineShape });
      bias = w.get('bias', [c], { kind: 'reshape', shape: affineShape });
    } else ({ weight, bias } = w);
    const grouped = this.reshape(x, [0, groups, -1]);
    const ones = this.constant(Tensor.f32([groups], new Float32Array(groups).fill(1)).to(x.type === 'f16' ? 'f16' : 'f32'), 'gn_one');
    const zeros = this.constant(Tensor.f32([groups]).to(x.type === 'f16' ? 'f16' : 'f32'), 'gn_zero');
    const normed = this.op1('InstanceNormalization', [grouped, ones, zeros], x.type, grouped.shape, { epsilon: { f: eps } });
    const shapeOfX = this.op1('Shape', [x], 'i64', [x.shape.length]);
    const back = this.op1('Reshape', [normed, shapeOfX], x.type, x.shape);
    return this.add(this.mul(back, weight), bias);
  }

  /** LayerNorm over the last axis; `w` holds `weight` and `bias` of shape [C]. */
  layerNorm(x: Value, w: WeightScope | { weight: Value; bias?: Value }, eps: number): Value {
    const c = x.shape[x.shape.length - 1];
    let weight: Value;
    let bias: Value | undefined;
    if (w instanceof WeightScope) {
      const n = typeof c === 'number' ? c : undefined;
      weight = w.get('weight', [n]);
      bias = w.has('bias') ? w.get('bias', [n]) : undefined;
    } else ({ weight, bias } = w);
    const inputs = bias ? [x, weight, bias] : [x, weight];
    return this.op1('LayerNormalization', inputs, x.type, x.shape, { axis: { i: -1 }, epsilon: { f: eps } });
  }

  softmax(x: Value, axis = -1): Value {
    normAxis(axis, x.shape.length, 'softmax');
    return this.unary('Softmax', x, { axis: { i: axis } });
  }

  /**
   * Scaled dot-product attention on [B, S, heads·d] tensors, as SD's CrossAttention holds them after
   * to_q / to_k / to_v. Emitted fused (MultiHeadAttention) or as plain ops, per provider.
   */
  attention(q: Value, k: Value, v: Value, options: AttentionOptions): Value {
    for (const [n, t] of [['q', q], ['k', k], ['v', v]] as const) {
      if (t.shape.length !== 3) throw new Error(`attention: ${n} must be [batch, tokens, heads·dim], got ${formatShape(t.shape)}`);
    }
    const { heads } = options;
    const dq = q.shape[2];
    const dk = k.shape[2];
    const dv = v.shape[2];
    if (typeof dq !== 'number' || typeof dv !== 'number') throw new Error('attention needs known channel counts');
    if (dq % heads !== 0 || dv % heads !== 0) throw new Error(`attention: widths ${dq}/${dv} are not divisible by ${heads} heads`);
    if (dimEq(dq, dk) === false) throw new Error(`attention: q width ${dq} and k width ${dk} differ`);
    if (dimEq(k.shape[1], v.shape[1]) === false) throw new Error('attention: k and v token counts differ');
    broadcastShapes([q.shape[0]], [k.shape[0]], 'attention batch');
    const scale = options.scale ?? 1 / Math.sqrt(dq / heads);
    const inputs = [q, k, v];
    if (options.bias) {
      if (options.bias.shape.length !== 4) throw new Error(`attention: bias must be 4-D [B|1, heads|1, S, L], got ${formatShape(options.bias.shape)}`);
      inputs.push(options.bias);
    }
    return this.op1('Attention', inputs, q.type, [q.shape[0], q.shape[1], dv], {
      num_heads: { i: heads }, scale: { f: scale },
    }, 'latentkit');
  }

  /** Causal mask as an additive bias [1, 1, n, n]: 0 on and below the diagonal, a large negative above. */
  causalMask(n: number): Value {
    const m = new Float32Array(n * n);
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) m[i * n + j] = -Infinity;
    const t = Tensor.f32([1, 1, n, n], m);
    return this.constant(this.dtype === 'f16' ? t.to('f16') : t, 'causal');
  }

  // ---- layout ----------------------------------------------------------------------------------

  /** Reshape with ONNX semantics: 0 copies the input dim, one -1 is inferred. */
  reshape(x: Value, shape: readonly number[]): Value {
    const out: Dim[] = shape.map((d, i) => {
      if (d === 0) {
        if (i >= x.shape.length) throw new Error(`reshape: 0 at position ${i} has no input dim to copy`);
        return x.shape[i];
      }
      return d;
    });
    const minus = out.indexOf(-1);
    if (out.some((d, i) => typeof d === 'number' && d < 0 && i !== minus)) throw new Error(`reshape: invalid target ${formatShape(shape)}`);
    const total = product(x.shape);
    if (minus >= 0) {
      const rest = product(out.filter((_, i) => i !== minus));
      if (typeof total === 'number' && typeof rest === 'number') {
        if (rest === 0 || total % rest !== 0) throw new Error(`reshape: ${formatShape(x.shape)} cannot become ${formatShape(shape)}`);
        out[minus] = total / rest;
      } else {
        const known = out.filter((d, i) => i !== minus);
        // Symbolic: cancel the dims copied from the input, keep the rest as an expression.
        const remaining = [...x.shape];
        let divisor: Dim = 1;
        for (const d of known) {
          const j = remaining.findIndex((r) => r === d);
          if (j >= 0) remaining.splice(j, 1);
          else divisor = dimMul(divisor, d);
        }
        const p = product(remaining);
        out[minus] = divisor === 1 ? p : `${typeof p === 'number' ? p : `(${p})`}/${divisor}`;
      }
    } else {
      const p = product(out);
      if (typeof total === 'number' && typeof p === 'number' && p !== total) {
        throw new Error(`reshape: ${formatShape(x.shape)} (${total} elements) cannot become ${formatShape(shape)} (${p})`);
      }
    }
    return this.op1('Reshape', [x, this.i64(shape)], x.type, out);
  }

  /** Reshape to the (runtime) shape of another value with the same element count. */
  reshapeAs(x: Value, like: Value): Value {
    const a = product(x.shape);
    const b = product(like.shape);
    if (typeof a === 'number' && typeof b === 'number' && a !== b) {
      throw new Error(`reshapeAs: ${formatShape(x.shape)} cannot take the shape ${formatShape(like.shape)}`);
    }
    const shape = this.op1('Shape', [like], 'i64', [like.shape.length]);
    return this.op1('Reshape', [x, shape], x.type, like.shape);
  }

  transpose(x: Value, perm: readonly number[]): Value {
    const r = x.shape.length;
    if (perm.length !== r || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
      throw new Error(`transpose: [${perm.join(', ')}] is not a permutation of ${r} axes`);
    }
    return this.op1('Transpose', [x], x.type, perm.map((p) => x.shape[p]), { perm: { ints: perm } });
  }

  concat(xs: readonly Value[], axis: number): Value {
    if (xs.length === 0) throw new Error('concat of nothing');
    const r = xs[0].shape.length;
    const a = normAxis(axis, r, 'concat');
    let size: Dim = 0;
    for (const x of xs) {
      if (x.shape.length !== r || x.type !== xs[0].type) throw new Error(`concat: ${formatShape(x.shape)} ${x.type} does not match ${formatShape(xs[0].shape)} ${xs[0].type}`);
      for (let i = 0; i < r; i++) {
        if (i !== a && dimEq(x.shape[i], xs[0].shape[i]) === false) {
          throw new Error(`concat on axis ${axis}: shapes ${formatShape(xs[0].shape)} and ${formatShape(x.shape)} differ on axis ${i}`);
        }
      }
      size = dimAdd(size, x.shape[a]);
    }
    const shape = [...xs[0].shape];
    shape[a] = size;
    return this.op1('Concat', xs, xs[0].type, shape, { axis: { i: a } });
  }

  /** Splits into pieces of the given sizes along an axis. */
  split(x: Value, sizes: readonly number[], axis: number): Value[] {
    const a = normAxis(axis, x.shape.length, 'split');
    const total = sizes.reduce((s, v) => s + v, 0);
    if (typeof x.shape[a] === 'number' && x.shape[a] !== total) {
      throw new Error(`split: sizes [${sizes.join(', ')}] do not add up to ${x.shape[a]}`);
    }
    const outs = sizes.map((s) => {
      const shape = [...x.shape];
      shape[a] = s;
      return this.value('split', x.type, shape);
    });
    this.node('Split', [x, this.i64(sizes)], outs, { axis: { i: a } });
    return outs;
  }

  /** Slice with ONNX semantics (negative and out-of-range bounds clamp as in Python). */
  slice(x: Value, starts: readonly number[], ends: readonly number[], axes?: readonly number[], steps?: readonly number[]): Value {
    const ax = axes ?? starts.map((_, i) => i);
    const st = steps ?? starts.map(() => 1);
    if (ends.length !== starts.length || ax.length !== starts.length || st.length !== starts.length) {
      throw new Error('slice: starts, ends, axes and steps must have the same length');
    }
    const shape = [...x.shape];
    ax.forEach((axis, i) => {
      const a = normAxis(axis, x.shape.length, 'slice');
      const d = x.shape[a];
      const step = st[i];
      if (step === 0) throw new Error('slice: step 0');
      if (typeof d === 'number') {
        const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
        let s = starts[i] < 0 ? starts[i] + d : starts[i];
        let e = ends[i] < 0 ? ends[i] + d : ends[i];
        if (step > 0) { s = clamp(s, 0, d); e = clamp(e, 0, d); shape[a] = Math.max(0, Math.ceil((e - s) / step)); }
        else { s = clamp(s, -1, d - 1); e = clamp(e, -1, d - 1); shape[a] = Math.max(0, Math.ceil((s - e) / -step)); }
      } else if (step === 1 && starts[i] >= 0 && ends[i] >= 0 && ends[i] < 2 ** 31) {
        shape[a] = ends[i] - starts[i];
      } else {
        shape[a] = `slice(${d})`;
      }
    });
    return this.op1('Slice', [x, this.i64(starts), this.i64(ends), this.i64(ax), this.i64(st)], x.type, shape);
  }

  gather(x: Value, indices: Value, axis = 0): Value {
    const a = normAxis(axis, x.shape.length, 'gather');
    if (indices.type !== 'i64' && indices.type !== 'i32') throw new Error(`gather: indices must be integers, got ${indices.type}`);
    return this.op1('Gather', [x, indices], x.type, [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)], { axis: { i: a } });
  }

  reduceMean(x: Value, axes: readonly number[], keepDims = true): Value {
    const norm = axes.map((a) => normAxis(a, x.shape.length, 'reduceMean'));
    const shape: Dim[] = [];
    x.shape.forEach((d, i) => {
      if (!norm.includes(i)) shape.push(d);
      else if (keepDims) shape.push(1);
    });
    return this.op1('ReduceMean', [x], x.type, shape, { axes: { ints: norm }, keepdims: { i: keepDims ? 1 : 0 } });
  }

  /**
   * Nearest-neighbour resize of NCHW to the spatial size of `like` (torch 'nearest': source index
   * floor(i·in/out)), for upsampling onto a skip connection whose size is not exactly twice.
   */
  upsampleNearestTo(x: Value, like: Value): Value {
    if (x.shape.length !== 4 || like.shape.length !== 4) throw new Error('upsampleNearestTo expects NCHW inputs');
    const nc = this.op1('Slice', [this.op1('Shape', [x], 'i64', [4]), this.i64([0]), this.i64([2])], 'i64', [2]);
    const hw = this.op1('Slice', [this.op1('Shape', [like], 'i64', [4]), this.i64([2]), this.i64([4])], 'i64', [2]);
    const sizes = this.op1('Concat', [nc, hw], 'i64', [4], { axis: { i: 0 } });
    return this.op1('Resize', [x, '', '', sizes], x.type, [x.shape[0], x.shape[1], like.shape[2], like.shape[3]], {
      mode: { s: 'nearest' }, coordinate_transformation_mode: { s: 'asymmetric' }, nearest_mode: { s: 'floor' },
    });
  }

  /** Nearest-neighbour upsampling of the spatial axes of NCHW by an integer factor (torch 'nearest'). */
  upsampleNearest(x: Value, scale = 2): Value {
    if (x.shape.length !== 4) throw new Error(`upsampleNearest expects NCHW, got ${formatShape(x.shape)}`);
    if (!Number.isInteger(scale) || scale < 1) throw new Error(`upsampleNearest: scale must be a positive integer, got ${scale}`);
    const scales = this.constant(Tensor.f32([4], [1, 1, scale, scale]), 'scales');
    return this.op1('Resize', [x, '', scales], x.type, [x.shape[0], x.shape[1], dimMul(x.shape[2], scale), dimMul(x.shape[3], scale)], {
      mode: { s: 'nearest' }, coordinate_transformation_mode: { s: 'asymmetric' }, nearest_mode: { s: 'floor' },
    });
  }

  // ---- super-resolution / tiny-autoencoder ops -------------------------------------------------

  relu(x: Value): Value { return this.unary('Relu', x); }

  /** torch.nn.LeakyReLU(negative_slope). */
  leakyRelu(x: Value, alpha: number): Value {
    return this.unary('LeakyRelu', x, { alpha: { f: alpha } });
  }

  /** torch.nn.PReLU on NCHW: `slope` holds one value per channel ([C], stored as in the checkpoint) or one shared. */
  prelu(x: Value, slope: Value): Value {
    if (x.shape.length !== 4) throw new Error(`prelu expects NCHW, got ${formatShape(x.shape)}`);
    const n = slope.shape.reduce<number>((p, d) => p * (typeof d === 'number' ? d : NaN), 1);
    if (n !== 1 && dimEq(x.shape[1], n) === false) throw new Error(`prelu: ${n} slopes for ${x.shape[1]} channels`);
    // ONNX broadcasts the slope numpy-style, so a per-channel slope must be [C, 1, 1].
    const s = n === 1 ? slope : this.reshape(slope, [n, 1, 1]);
    return this.op1('PRelu', [x, s], x.type, x.shape);
  }

  /** torch.nn.functional.pixel_shuffle: [N, C·r², H, W] → [N, C, H·r, W·r] (ONNX DepthToSpace, CRD order). */
  pixelShuffle(x: Value, r: number): Value {
    if (x.shape.length !== 4) throw new Error(`pixelShuffle expects NCHW, got ${formatShape(x.shape)}`);
    const c = x.shape[1];
    if (typeof c !== 'number' || c % (r * r) !== 0) throw new Error(`pixelShuffle: ${c} channels are not divisible by ${r}²`);
    return this.op1('DepthToSpace', [x], x.type, [x.shape[0], c / (r * r), dimMul(x.shape[2], r), dimMul(x.shape[3], r)], {
      blocksize: { i: r }, mode: { s: 'CRD' },
    });
  }

  /**
   * torch.nn.functional.pixel_unshuffle: [N, C, H·r, W·r] → [N, C·r², H, W]. ONNX SpaceToDepth puts the
   * block offset before the channel (k·C + c) where torch puts it after (c·r² + k); a constant Gather
   * reorders, which keeps H and W symbolic (a reshape-based version would need them known).
   */
  pixelUnshuffle(x: Value, r: number): Value {
    if (x.shape.length !== 4) throw new Error(`pixelUnshuffle expects NCHW, got ${formatShape(x.shape)}`);
    const c = x.shape[1];
    if (typeof c !== 'number') throw new Error('pixelUnshuffle needs a known channel count');
    const div = (d: Dim): Dim => {
      if (typeof d !== 'number') return `${/^[A-Za-z_][A-Za-z0-9_]*$/.test(d) ? d : `(${d})`}/${r}`;
      if (d % r !== 0) throw new Error(`pixelUnshuffle: size ${d} is not divisible by ${r}`);
      return d / r;
    };
    const s2d = this.op1('SpaceToDepth', [x], x.type, [x.shape[0], c * r * r, div(x.shape[2]), div(x.shape[3])], { blocksize: { i: r } });
    const order: number[] = [];
    for (let ch = 0; ch < c; ch++) for (let k = 0; k < r * r; k++) order.push(k * c + ch);
    return this.gather(s2d, this.i64(order, 'unshuffle_order'), 1);
  }
}

/** ONNX TensorProto.DataType codes. */
export const ONNX_TYPE_CODE: Record<ValueType, number> = {
  f32: 1, u8: 2, i8: 3, i32: 6, i64: 7, bool: 9, f16: 10, f64: 11, bf16: 16,
};

export { isFloatType };
