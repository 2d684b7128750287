// Compiler overhead benchmark: a 1024³ matmul and a 320-channel 3×3 convolution at 64×64, each built
// through the graph compiler and, as the machine's own peak, as a hand-written one-node ONNX model.
import onnxProto from 'onnx-proto';
import * as ort from 'onnxruntime-node';
import { GraphBuilder } from '../src/graph/builder.js';
import { MemoryWeights } from '../src/graph/weights.js';
import { createSession } from '../src/runtime/session.js';
import { Tensor } from '../src/tensor/tensor.js';
import { timeIt, type BenchResult } from './util.js';

const { onnx } = onnxProto;

function randomF32(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** One ONNX node with its weight inline: what ONNX Runtime does with no compiler in between. */
async function rawSession(op: 'MatMul' | 'Conv', xShape: number[], wShape: number[], w: Float32Array, threads?: number) {
  const attrs = op === 'Conv'
    ? [{ name: 'pads', type: onnx.AttributeProto.AttributeType.INTS, ints: [1, 1, 1, 1] }, { name: 'kernel_shape', type: onnx.AttributeProto.AttributeType.INTS, ints: [3, 3] }]
    : [];
  const model = onnx.ModelProto.create({
    irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'raw',
      input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: xShape.map((d) => ({ dimValue: d })) } } } }],
      output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
      initializer: [{ name: 'w', dims: wShape, dataType: 1, rawData: new Uint8Array(w.buffer) }],
      node: [{ opType: op, input: ['x', 'w'], output: ['y'], attribute: attrs }],
    },
  });
  return ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), {
    graphOptimizationLevel: 'all', ...(threads ? { intraOpNumThreads: threads } : {}),
  });
}

export async function benchFoundation(threads?: number): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  const reps = 10;

  // 1024 × 1024 × 1024 matmul
  {
    const n = 1024;
    const flops = 2 * n * n * n;
    const w = randomF32(n * n, 1);
    const xData = randomF32(n * n, 2);
    const raw = await rawSession('MatMul', [n, n], [n, n], w, threads);
    const rawT = await timeIt(reps, () => raw.run({ x: new ort.Tensor('float32', xData, [n, n]) }));
    await raw.release();

    const weights = new MemoryWeights({ 'mm.weight': Tensor.f32([n, n], w) });
    const g = new GraphBuilder({ weights });
    const x = g.input('x', ['M', n]);
    g.output(g.matmul(x, g.weight('mm.weight')), 'y');
    const s = await createSession(g.finish(), weights, { threads });
    const xt = Tensor.f32([n, n], xData);
    const t = await timeIt(reps, () => s.run({ x: xt }));
    await s.release();
    results.push({ name: 'matmul 1024³ (raw ONNX)', seconds: rawT, gflops: flops / rawT / 1e9 });
    results.push({ name: 'matmul 1024³ (compiler)', seconds: t, gflops: flops / t / 1e9, vsPeak: rawT / t });
  }

  // The machine's matmul peak: a product large enough that MLAS runs at full speed (1024³ is not quite).
  {
    const n = 2048;
    const raw = await rawSession('MatMul', [n, n], [n, n], randomF32(n * n, 5), threads);
    const xData = randomF32(n * n, 6);
    const rawT = await timeIt(5, () => raw.run({ x: new ort.Tensor('float32', xData, [n, n]) }));
    await raw.release();
    results.push({ name: 'matmul 2048³ (raw ONNX, machine peak)', seconds: rawT, gflops: (2 * n ** 3) / rawT / 1e9 });
  }

  // 3×3 conv, 320 → 320 channels, 64×64, batch 1 (an SD1.5 UNet top-level conv)
  {
    const c = 320;
    const hw = 64;
    const flops = 2 * c * c * 9 * hw * hw;
    const w = randomF32(c * c * 9, 3).map((v) => v * 0.05);
    const xData = randomF32(c * hw * hw, 4);
    const raw = await rawSession('Conv', [1, c, hw, hw], [c, c, 3, 3], w, threads);
    const rawT = await timeIt(reps, () => raw.run({ x: new ort.Tensor('float32', xData, [1, c, hw, hw]) }));
    await raw.release();

    const weights = new MemoryWeights({ 'conv.weight': Tensor.f32([c, c, 3, 3], w) });
    const g = new GraphBuilder({ weights });
    const x = g.input('x', ['B', c, 'H', 'W']);
    g.output(g.conv2d(x, g.scope('conv'), { padding: 1 }), 'y');
    const s = await createSession(g.finish(), weights, { threads });
    const xt = Tensor.f32([1, c, hw, hw], xData);
    const t = await timeIt(reps, () => s.run({ x: xt }));
    await s.release();
    results.push({ name: 'conv3x3 320ch 64×64 (raw ONNX)', seconds: rawT, gflops: flops / rawT / 1e9 });
    results.push({ name: 'conv3x3 320ch 64×64 (compiler)', seconds: t, gflops: flops / t / 1e9, vsPeak: rawT / t });
  }
  return results;
}
