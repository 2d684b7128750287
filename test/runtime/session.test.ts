import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../src/graph/builder.js';
import { MemoryWeights } from '../../src/graph/weights.js';
import { createSession, SessionCache, sessionKey } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor/tensor.js';

function linearGraph(weights: MemoryWeights, scale = 1) {
  const g = new GraphBuilder({ weights });
  const x = g.input('x', ['B', 2]);
  g.output(g.mul(g.linear(x, g.scope('l')), scale), 'y');
  return g.finish();
}

const W1 = () => new MemoryWeights({ 'l.weight': Tensor.f32([2, 2], [1, 2, 3, 4]), 'l.bias': Tensor.f32([2], [10, 20]) }, 'w1');
const W2 = () => new MemoryWeights({ 'l.weight': Tensor.f32([2, 2], [0, 1, 1, 0]), 'l.bias': Tensor.f32([2], [0, 0]) }, 'w2');

test('session runs with host tensors and checks its inputs', async () => {
  const w = W1();
  const s = await createSession(linearGraph(w), w, { threads: 1 });
  const out = await s.run({ x: Tensor.f32([1, 2], [1, 1]) });
  assert.deepEqual([...(out.y.data as Float32Array)], [13, 27]);
  await assert.rejects(s.run({}), /missing input 'x'/);
  await assert.rejects(s.run({ x: Tensor.f32([1, 2]), z: Tensor.f32([1]) }), /unknown input 'z'/);
  await s.release();
  await assert.rejects(s.run({ x: Tensor.f32([1, 2]) }), /released/);
});

test('f16 compute: weights are converted and outputs come back as f16', async () => {
  const w = W1();
  const g = new GraphBuilder({ weights: w, dtype: 'f16' });
  const x = g.input('x', ['B', 2]);
  g.output(g.linear(x, g.scope('l')), 'y');
  const s = await createSession(g.finish(), w);
  const out = await s.run({ x: Tensor.f32([1, 2], [1, 1]).to('f16') });
  assert.equal(out.y.dtype, 'f16');
  assert.deepEqual([...out.y.toFloat32Array()], [13, 27]);
  await s.release();
});

test('session cache: same graph and weights reuse the session; other weights or graphs do not', async () => {
  const cache = new SessionCache();
  const w1 = W1();
  const w2 = W2();
  const a = await cache.get(linearGraph(w1), w1);
  const b = await cache.get(linearGraph(w1), w1);
  assert.equal(a, b, 'identical graph + weights must hit');
  const c = await cache.get(linearGraph(w2), w2);
  assert.notEqual(a, c);
  const d = await cache.get(linearGraph(w1, 2), w1);
  assert.notEqual(a, d);
  assert.equal(cache.size, 3);
  // switching back to the first weights is free
  assert.equal(await cache.get(linearGraph(w1), w1), a);
  const [p, q] = await Promise.all([cache.get(linearGraph(w2, 3), w2), cache.get(linearGraph(w2, 3), w2)]);
  assert.equal(p, q, 'concurrent requests share one build');
  assert.notEqual(sessionKey(linearGraph(w1), w1, { device: 'cpu' }), sessionKey(linearGraph(w1), w1, { device: 'webgpu' }));
  await cache.clear();
  assert.equal(cache.size, 0);
  await assert.rejects(a.run({ x: Tensor.f32([1, 2]) }), /released/);
});

test('session cache releases least recently used sessions over its byte budget', async () => {
  const cache = new SessionCache({ maxBytes: 40 }); // each session holds 24 bytes of weights
  const w1 = W1();
  const w2 = W2();
  const a = await cache.get(linearGraph(w1), w1);
  await cache.get(linearGraph(w2), w2);
  assert.equal(cache.size, 1);
  assert.ok(!cache.has(sessionKey(linearGraph(w1), w1)));
  await assert.rejects(a.run({ x: Tensor.f32([1, 2]) }), /released/);
  await cache.clear();
});

test('devices: unknown names are refused; GPU providers either run or explain what is missing', async () => {
  const w = W1();
  await assert.rejects(createSession(linearGraph(w), w, { device: 'tpu' as never }), /unknown device 'tpu'/);
  for (const device of ['cuda', 'webgpu'] as const) {
    try {
      const s = await createSession(linearGraph(w), w, { device });
      // A machine with this provider: it must compute the same thing.
      const out = await s.run({ x: Tensor.f32([1, 2], [1, 1]) });
      assert.deepEqual([...(out.y.data as Float32Array)], [13, 27]);
      await s.release();
    } catch (err) {
      assert.match((err as Error).message, new RegExp(`^device '${device}' is not available: `));
      if (device === 'cuda') assert.match((err as Error).message, /ONNXRUNTIME_NODE_INSTALL=cuda12|NVIDIA driver/);
    }
  }
});
