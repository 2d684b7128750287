import { createHash } from 'node:crypto';
import onnxProto from 'onnx-proto';
import { ONNX_TYPE_CODE } from './builder.js';
import type { Attr, GraphIR, Node, WeightInit } from './ir.js';
import type { Dim, Value } from './types.js';

const { onnx } = onnxProto;

export interface EmitOptions {
  /**
   * Emit attention as ONNX Runtime's fused MultiHeadAttention kernel (CPU, CUDA and WebGPU have it).
   * Off gives plain MatMul/Softmax ops, which any ONNX runtime can execute.
   */
  readonly fusedAttention?: boolean;
}

/** The serialised model plus, for each weight, the name of the in-memory external-data "file" it lives in. */
export interface EmittedModel {
  readonly model: Uint8Array;
  readonly weightFiles: readonly { readonly path: string; readonly weight: WeightInit }[];
  /** sha256 of the model bytes: identifies the graph (weight data excluded) for session caching. */
  readonly hash: string;
}

const OPSET = 17;

function attrProto(name: string, a: Attr): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if ('i' in a) return { name, type: T.INT, i: a.i };
  if ('f' in a) return { name, type: T.FLOAT, f: a.f };
  if ('s' in a) return { name, type: T.STRING, s: new TextEncoder().encode(a.s) };
  if ('ints' in a) return { name, type: T.INTS, ints: [...a.ints] };
  return { name, type: T.FLOATS, floats: [...a.floats] };
}

/** Graph inputs keep their symbolic names; derived expressions are left unnamed for ONNX Runtime to infer. */
function valueInfo(v: Value, symbols: ReadonlySet<string>): onnxProto.onnx.IValueInfoProto {
  const dim = v.shape.map((d: Dim) => (typeof d === 'number' ? { dimValue: d } : symbols.has(d) ? { dimParam: d } : {}));
  return { name: v.name, type: { tensorType: { elemType: ONNX_TYPE_CODE[v.type], shape: { dim } } } };
}

type ProtoNode = onnxProto.onnx.INodeProto;

/** Plain-op attention: split heads, softmax(q·kᵀ·scale)·v, merge heads. */
function lowerAttention(n: Node, fused: boolean): ProtoNode[] {
  const [q, k, v, bias] = n.inputs;
  const out = n.outputs[0];
  const heads = (n.attrs.num_heads as { i: number }).i;
  const scale = (n.attrs.scale as { f: number }).f;
  if (fused) {
    return [{
      // inputs: query, key, value, bias, key_padding_mask, attention_bias
      opType: 'MultiHeadAttention', domain: 'com.microsoft', input: bias ? [q, k, v, '', '', bias] : [q, k, v], output: [out], name: out,
      attribute: [attrProto('num_heads', { i: heads }), attrProto('scale', { f: scale })],
    }];
  }
  const p = `${out}/`;
  const nodes: ProtoNode[] = [];
  const shapeHeads = `${p}heads_shape`;
  const shapeMerge = `${p}merge_shape`;
  nodes.push(constI64(shapeHeads, [0, 0, heads, -1]), constI64(shapeMerge, [0, 0, -1]));
  const split = (x: string, tag: string, perm: number[]) => {
    nodes.push({ opType: 'Reshape', input: [x, shapeHeads], output: [`${p}${tag}4`] });
    nodes.push({ opType: 'Transpose', input: [`${p}${tag}4`], output: [`${p}${tag}t`], attribute: [attrProto('perm', { ints: perm })] });
    return `${p}${tag}t`;
  };
  const qt = split(q, 'q', [0, 2, 1, 3]);
  const kt = split(k, 'k', [0, 2, 3, 1]);
  const vt = split(v, 'v', [0, 2, 1, 3]);
  // The scale constant takes the activations' type via CastLike, so the lowering works for f16 too.
  nodes.push(
    { opType: 'MatMul', input: [qt, kt], output: [`${p}logits`] },
    constF32(`${p}scale_f`, scale),
    { opType: 'CastLike', input: [`${p}scale_f`, `${p}logits`], output: [`${p}scale`] },
    { opType: 'Mul', input: [`${p}logits`, `${p}scale`], output: [bias ? `${p}scaled0` : `${p}scaled`] },
    ...(bias ? [{ opType: 'Add', input: [`${p}scaled0`, bias], output: [`${p}scaled`] }] : []),
    { opType: 'Softmax', input: [`${p}scaled`], output: [`${p}probs`], attribute: [attrProto('axis', { i: -1 })] },
    { opType: 'MatMul', input: [`${p}probs`, vt], output: [`${p}ctx`] },
    { opType: 'Transpose', input: [`${p}ctx`], output: [`${p}ctxt`], attribute: [attrProto('perm', { ints: [0, 2, 1, 3] })] },
    { opType: 'Reshape', input: [`${p}ctxt`, shapeMerge], output: [out] },
  );
  return nodes;
}

function constI64(name: string, values: number[]): ProtoNode {
  const raw = new Uint8Array(BigInt64Array.from(values, (x) => BigInt(x)).buffer);
  return {
    opType: 'Constant', output: [name], name,
    attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dims: [values.length], dataType: ONNX_TYPE_CODE.i64, rawData: raw } }],
  };
}

function constF32(name: string, value: number): ProtoNode {
  const raw = new Uint8Array(Float32Array.of(value).buffer);
  return {
    opType: 'Constant', output: [name], name,
    attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dims: [], dataType: ONNX_TYPE_CODE.f32, rawData: raw } }],
  };
}

/**
 * Serialises the IR to an ONNX ModelProto. Weights become initializers whose data lives in external
 * "files" that exist only in memory (one per weight), so the model bytes stay small and the tensor
 * data is handed to ONNX Runtime without an extra copy through protobuf.
 */
export function emitOnnx(ir: GraphIR, options: EmitOptions = {}): EmittedModel {
  const fused = options.fusedAttention ?? true;
  const symbols = new Set<string>();
  for (const v of ir.inputs) for (const d of v.shape) if (typeof d === 'string') symbols.add(d);

  const nodes: ProtoNode[] = [];
  for (const n of ir.nodes) {
    if (n.domain === 'latentkit') {
      if (n.op === 'Attention') nodes.push(...lowerAttention(n, fused));
      else throw new Error(`internal: no lowering for ${n.op}`);
      continue;
    }
    nodes.push({
      opType: n.op, domain: n.domain || undefined, input: [...n.inputs], output: [...n.outputs], name: n.outputs[0],
      attribute: Object.entries(n.attrs).map(([k, a]) => attrProto(k, a)),
    });
  }

  const weightFiles = ir.weights.map((w, i) => ({ path: `w${i}.bin`, weight: w }));
  const initializer: onnxProto.onnx.ITensorProto[] = weightFiles.map(({ path, weight }) => ({
    name: weight.name,
    dims: [...weight.shape],
    dataType: ONNX_TYPE_CODE[weight.type],
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [{ key: 'location', value: path }],
  }));
  for (const c of ir.constants) {
    const type = (Object.keys(ONNX_TYPE_CODE) as (keyof typeof ONNX_TYPE_CODE)[]).find((t) => t === c.tensor.dtype);
    if (!type) throw new Error(`internal: constant ${c.name} has unsupported dtype ${c.tensor.dtype}`);
    initializer.push({ name: c.name, dims: [...c.tensor.shape], dataType: ONNX_TYPE_CODE[type], rawData: c.tensor.bytes().slice() });
  }

  const opsetImport = [{ domain: '', version: OPSET }];
  if (nodes.some((n) => n.domain === 'com.microsoft')) opsetImport.push({ domain: 'com.microsoft', version: 1 });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'latentkit',
    opsetImport,
    graph: {
      name: 'latentkit',
      node: nodes,
      input: ir.inputs.map((v) => valueInfo(v, symbols)),
      output: ir.outputs.map((v) => valueInfo(v, symbols)),
      initializer,
    },
  });
  const bytes = onnx.ModelProto.encode(model).finish();
  const hash = createHash('sha256').update(bytes).digest('hex');
  return { model: bytes, weightFiles, hash };
}
