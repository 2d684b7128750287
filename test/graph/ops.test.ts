import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../src/graph/builder.js';
import type { Value } from '../../src/graph/types.js';
import { MemoryWeights } from '../../src/graph/weights.js';
import { createSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as R from './reference.js';

const TOL = 1e-5;

function t32(a: R.Arr): Tensor {
  return Tensor.f32(a.shape, Float32Array.from(a.data));
}

/** Rounds a reference array through f32 so the reference sees exactly what the graph sees. */
function f32(a: R.Arr): R.Arr {
  return { shape: a.shape, data: Float64Array.from(Float32Array.from(a.data)) };
}

interface Case {
  weights?: Record<string, R.Arr>;
  inputs: Record<string, R.Arr>;
  build: (g: GraphBuilder, x: Record<string, Value>) => Value;
  fusedAttention?: boolean;
}

async function run(c: Case): Promise<Tensor> {
  const weights = new MemoryWeights(Object.fromEntries(Object.entries(c.weights ?? {}).map(([k, v]) => [k, t32(v)])));
  const g = new GraphBuilder({ weights });
  const xs: Record<string, Value> = {};
  for (const [name, a] of Object.entries(c.inputs)) xs[name] = g.input(name, a.shape.map((d, i) => (i === 0 ? 'B' : d)));
  g.output(c.build(g, xs), 'y');
  const s = await createSession(g.finish(), weights, { fusedAttention: c.fusedAttention });
  try {
    const out = await s.run(Object.fromEntries(Object.entries(c.inputs).map(([k, v]) => [k, t32(v)])));
    return out.y;
  } finally {
    await s.release();
  }
}

async function check(name: string, c: Case, want: R.Arr, tol = TOL): Promise<void> {
  const y = await run(c);
  assert.deepEqual([...y.shape], want.shape, `${name}: shape`);
  const err = R.relError(y.data as Float32Array, want);
  console.log(`  ${name}: worst relative error ${err.toExponential(2)} (tolerance ${tol})`);
  assert.ok(err <= tol, `${name}: relative error ${err} exceeds ${tol}`);
}

test('conv2d: stride, padding, groups, dilation, asymmetric pads, odd channels, batch 3, 1×1 spatial', async () => {
  const cases: { name: string; x: number[]; w: number[]; opts: Parameters<GraphBuilder['conv2d']>[2]; ref: Parameters<typeof R.conv2d>[3]; bias?: boolean }[] = [
    { name: '3x3 pad 1, 5→7 ch, batch 3', x: [3, 5, 9, 11], w: [7, 5, 3, 3], opts: { padding: 1 }, ref: { pads: [1, 1, 1, 1] }, bias: true },
    { name: '3x3 stride 2 pad 1', x: [2, 4, 9, 8], w: [6, 4, 3, 3], opts: { stride: 2, padding: 1 }, ref: { stride: [2, 2], pads: [1, 1, 1, 1] }, bias: true },
    { name: 'VAE downsample: pads (0,0,1,1), stride 2', x: [1, 3, 8, 8], w: [3, 3, 3, 3], opts: { stride: 2, padding: [0, 0, 1, 1] }, ref: { stride: [2, 2], pads: [0, 0, 1, 1] }, bias: true },
    { name: 'groups 3 (9→6 ch)', x: [2, 9, 5, 5], w: [6, 3, 3, 3], opts: { groups: 3, padding: 1 }, ref: { groups: 3, pads: [1, 1, 1, 1] } },
    { name: 'dilation 2', x: [1, 2, 9, 9], w: [3, 2, 3, 3], opts: { dilation: 2, padding: 2 }, ref: { dilation: [2, 2], pads: [2, 2, 2, 2] }, bias: true },
    { name: '1x1 conv on 1×1 spatial', x: [3, 13, 1, 1], w: [11, 13, 1, 1], opts: {}, ref: {}, bias: true },
    { name: '3x3 pad 1 on 1×1 spatial', x: [2, 3, 1, 1], w: [5, 3, 3, 3], opts: { padding: 1 }, ref: { pads: [1, 1, 1, 1] }, bias: true },
  ];
  let seed = 1;
  for (const c of cases) {
    const x = R.random(c.x, seed++);
    const w = R.random(c.w, seed++, 0.5);
    const b = R.random([c.w[0]], seed++, 0.5);
    const weights: Record<string, R.Arr> = { 'c.weight': w };
    if (c.bias) weights['c.bias'] = b;
    await check(`conv2d ${c.name}`, { weights, inputs: { x }, build: (g, v) => g.conv2d(v.x, g.scope('c'), c.opts) }, R.conv2d(f32(x), f32(w), c.bias ? f32(b) : undefined, c.ref));
  }
});

test('linear and matmul (batched, broadcast)', async () => {
  const x = R.random([3, 7, 13], 10);
  const w = R.random([9, 13], 11, 0.5);
  const b = R.random([9], 12);
  await check('linear with bias', { weights: { 'l.weight': w, 'l.bias': b }, inputs: { x }, build: (g, v) => g.linear(v.x, g.scope('l')) }, R.linear(f32(x), f32(w), f32(b)));
  await check('linear without bias', { weights: { 'l.weight': w }, inputs: { x }, build: (g, v) => g.linear(v.x, g.scope('l')) }, R.linear(f32(x), f32(w)));
  const a = R.random([3, 2, 5, 6], 13);
  const m = R.random([2, 6, 4], 14);
  await check('matmul [3,2,5,6]·[2,6,4]', { weights: { m }, inputs: { a }, build: (g, v) => g.matmul(v.a, g.weight('m')) }, R.matmul(f32(a), f32(m)));
});

test('element-wise arithmetic with broadcasting and scalars', async () => {
  const a = R.random([3, 5, 4], 20);
  const b = R.random([5, 1], 21);
  const bb = { b };
  const ops: [string, (g: GraphBuilder, x: Value, y: Value) => Value, (p: number, q: number) => number][] = [
    ['add', (g, x, y) => g.add(x, y), (p, q) => p + q],
    ['sub', (g, x, y) => g.sub(x, y), (p, q) => p - q],
    ['mul', (g, x, y) => g.mul(x, y), (p, q) => p * q],
    ['div', (g, x, y) => g.div(x, g.add(y, 3)), (p, q) => p / Math.fround(q + 3)],
  ];
  for (const [name, f, ref] of ops) {
    await check(name, { weights: bb, inputs: { a }, build: (g, v) => f(g, v.a, g.weight('b')) }, R.broadcast(f32(a), f32(b), ref));
  }
  await check('scalar on the left (1 - x)', { inputs: { a }, build: (g, v) => g.sub(1, v.a) }, R.map(f32(a), (x) => 1 - x));
  await check('pow 2', { inputs: { a }, build: (g, v) => g.pow(v.a, 2) }, R.map(f32(a), (x) => x * x));
});

test('group norm: 32 groups of 1 channel, 3 groups of 2, odd spatial, 1×1 spatial, batch 3', async () => {
  const shapes: [number[], number, number][] = [[[2, 32, 5, 3], 32, 1e-5], [[3, 6, 7, 5], 3, 1e-6], [[3, 12, 1, 1], 4, 1e-5], [[1, 64, 4, 4], 32, 1e-6]];
  let seed = 30;
  for (const [shape, groups, eps] of shapes) {
    const x = R.random(shape, seed++, 2);
    const w = R.random([shape[1]], seed++);
    const b = R.random([shape[1]], seed++);
    await check(`groupNorm ${JSON.stringify(shape)} / ${groups}`, {
      weights: { 'n.weight': w, 'n.bias': b }, inputs: { x }, build: (g, v) => g.groupNorm(v.x, g.scope('n'), groups, eps),
    }, R.groupNorm(f32(x), groups, f32(w), f32(b), eps));
  }
});

test('layer norm and softmax', async () => {
  const x = R.random([3, 7, 13], 40, 3);
  const w = R.random([13], 41);
  const b = R.random([13], 42);
  await check('layerNorm', { weights: { 'n.weight': w, 'n.bias': b }, inputs: { x }, build: (g, v) => g.layerNorm(v.x, g.scope('n'), 1e-5) }, R.layerNorm(f32(x), f32(w), f32(b), 1e-5));
  await check('softmax last axis', { inputs: { x }, build: (g, v) => g.softmax(v.x) }, R.softmax(f32(x)));
  await check('softmax axis 1', { inputs: { x }, build: (g, v) => g.transpose(g.softmax(g.transpose(v.x, [0, 2, 1]), -1), [0, 2, 1]) },
    R.transpose(R.softmax(R.transpose(f32(x), [0, 2, 1])), [0, 2, 1]));
});

test('attention: self and cross, 1–3 heads, batch 3, fused and plain', async () => {
  const configs: [number, number, number, number][] = [[3, 11, 11, 2], [2, 9, 5, 3], [1, 4, 77, 1], [3, 1, 1, 2]];
  let seed = 50;
  for (const [b, s, l, heads] of configs) {
    const width = heads * 5;
    const q = R.random([b, s, width], seed++);
    const k = R.random([b, l, width], seed++);
    const v = R.random([b, l, width], seed++);
    const want = R.attention(f32(q), f32(k), f32(v), heads);
    for (const fused of [true, false]) {
      await check(`attention b${b} s${s} l${l} h${heads} ${fused ? 'fused' : 'plain'}`, {
        inputs: { q, k, v }, fusedAttention: fused, build: (g, x) => g.attention(x.q, x.k, x.v, { heads }),
      }, want);
    }
  }
});

test('activations: SiLU, GELU (erf, tanh), QuickGELU, sigmoid, tanh, exp, sin, cos, sqrt', async () => {
  const x = R.random([3, 5, 7], 60, 4);
  const xs = f32(x);
  const acts: [string, (g: GraphBuilder, v: Value) => Value, (p: number) => number][] = [
    ['silu', (g, v) => g.silu(v), R.silu],
    ['gelu', (g, v) => g.gelu(v), R.gelu],
    ['gelu tanh', (g, v) => g.gelu(v, 'tanh'), R.geluTanh],
    ['quickGelu', (g, v) => g.quickGelu(v), R.quickGelu],
    ['sigmoid', (g, v) => g.sigmoid(v), R.sigmoid],
    ['tanh', (g, v) => g.tanh(v), Math.tanh],
    ['exp', (g, v) => g.exp(v), Math.exp],
    ['sin', (g, v) => g.sin(v), Math.sin],
    ['cos', (g, v) => g.cos(v), Math.cos],
    ['sqrt|x|', (g, v) => g.sqrt(g.mul(v, v)), (p) => Math.abs(p)],
  ];
  for (const [name, f, ref] of acts) await check(name, { inputs: { x }, build: (g, v) => f(g, v.x) }, R.map(xs, ref));
});

test('layout ops: upsample, concat, split, slice, reshape, transpose, gather, reduceMean, cast', async () => {
  const x = R.random([3, 5, 2, 3], 70);
  const xs = f32(x);
  await check('upsampleNearest ×2', { inputs: { x }, build: (g, v) => g.upsampleNearest(v.x, 2) }, R.upsampleNearest(xs, 2));
  const one = R.random([3, 5, 1, 1], 71);
  await check('upsampleNearest ×3 of 1×1', { inputs: { x: one }, build: (g, v) => g.upsampleNearest(v.x, 3) }, R.upsampleNearest(f32(one), 3));
  const y = R.random([3, 2, 2, 3], 72);
  await check('concat channels [h, skip]', { inputs: { x, skip: y }, build: (g, v) => g.concat([v.x, v.skip], 1) }, (() => {
    const out = new Float64Array(3 * 7 * 6);
    for (let b = 0; b < 3; b++) {
      out.set(xs.data.subarray(b * 30, b * 30 + 30), b * 42);
      out.set(Float64Array.from(Float32Array.from(y.data.subarray(b * 12, b * 12 + 12))), b * 42 + 30);
    }
    return R.arr([3, 7, 2, 3], out);
  })());
  await check('split [2,3] on axis 1, second part', { inputs: { x }, build: (g, v) => g.split(v.x, [2, 3], 1)[1] }, (() => {
    const out: number[] = [];
    for (let b = 0; b < 3; b++) out.push(...xs.data.subarray(b * 30 + 12, b * 30 + 30));
    return R.arr([3, 3, 2, 3], out);
  })());
  await check('slice with negative start and step 2', { inputs: { x }, build: (g, v) => g.slice(v.x, [-4, 0], [100, 3], [1, 3], [2, 2]) }, (() => {
    const out: number[] = [];
    for (let b = 0; b < 3; b++) for (const c of [1, 3]) for (let h = 0; h < 2; h++) for (const w of [0, 2]) out.push(xs.data[((b * 5 + c) * 2 + h) * 3 + w]);
    return R.arr([3, 2, 2, 2], out);
  })());
  await check('reshape [0,-1] then transpose', { inputs: { x }, build: (g, v) => g.transpose(g.reshape(v.x, [0, 5, -1]), [0, 2, 1]) },
    R.transpose(R.arr([3, 5, 6], xs.data), [0, 2, 1]));
  await check('reduceMean over H,W', { inputs: { x }, build: (g, v) => g.reduceMean(v.x, [2, 3]) }, (() => {
    const out: number[] = [];
    for (let p = 0; p < 15; p++) out.push(xs.data.subarray(p * 6, p * 6 + 6).reduce((s, q) => s + q, 0) / 6);
    return R.arr([3, 5, 1, 1], out);
  })());
  await check('cast f32→f16→f32 (rounds to half)', { inputs: { x }, build: (g, v) => g.cast(g.cast(v.x, 'f16'), 'f32') },
    R.map(xs, (p) => Tensor.f32([1], [p]).to('f16').toFloat32Array()[0]), 0);

  // gather: token embedding lookup with i64 ids, as CLIP does
  const table = R.random([10, 4], 73);
  const weights = new MemoryWeights({ emb: t32(table) });
  const g = new GraphBuilder({ weights });
  const ids = g.input('ids', ['B', 'T'], 'i64');
  g.output(g.gather(g.weight('emb'), ids, 0), 'y');
  const s = await createSession(g.finish(), weights);
  const out = await s.run({ ids: new Tensor('i64', [3, 2], BigInt64Array.from([0, 9, 3, 3, 7, 1], BigInt)) });
  await s.release();
  assert.deepEqual([...out.y.shape], [3, 2, 4]);
  const want = [0, 9, 3, 3, 7, 1].flatMap((i) => [...Float32Array.from(table.data.subarray(i * 4, i * 4 + 4))]);
  assert.deepEqual([...(out.y.data as Float32Array)], want);
});

test('one session serves every batch and spatial size (symbolic dims)', async () => {
  const w = R.random([4, 3, 3, 3], 80, 0.5);
  const weights = new MemoryWeights({ 'c.weight': t32(w) });
  const g = new GraphBuilder({ weights });
  const x = g.input('x', ['B', 3, 'H', 'W']);
  const y = g.upsampleNearest(g.conv2d(x, g.scope('c'), { padding: 1 }), 2);
  assert.deepEqual(y.shape, ['B', 4, 'H*2', 'W*2']);
  g.output(y, 'y');
  const s = await createSession(g.finish(), weights);
  for (const [b, h, wd] of [[1, 4, 4], [3, 7, 2], [2, 1, 1]]) {
    const xin = R.random([b, 3, h, wd], 81 + b);
    const out = await s.run({ x: t32(xin) });
    const want = R.upsampleNearest(R.conv2d(f32(xin), f32(w), undefined, { pads: [1, 1, 1, 1] }), 2);
    assert.deepEqual([...out.y.shape], want.shape);
    assert.ok(R.relError(out.y.data as Float32Array, want) < TOL);
  }
  await s.release();
});

test('missing and misshapen weights are reported with key and both shapes', () => {
  const weights = new MemoryWeights({ 'blk.conv.weight': Tensor.f32([8, 4, 3, 3]), 'blk.norm.weight': Tensor.f32([6]), 'blk.norm.bias': Tensor.f32([6]) });
  const g = new GraphBuilder({ weights });
  const x = g.input('x', ['B', 5, 'H', 'W']);
  assert.throws(() => g.conv2d(x, g.scope('blk.conv')), /weight 'blk\.conv\.weight' has shape \[8, 4, 3, 3\] but the model expects \[\?, 5, \?, \?\]/);
  assert.throws(() => g.conv2d(x, g.scope('blk.nope')), /missing weight 'blk\.nope\.weight'/);
  const y = g.input('y', ['B', 8, 'H', 'W']);
  assert.throws(() => g.groupNorm(y, g.scope('blk.norm'), 2, 1e-5), /weight 'blk\.norm\.weight' has shape \[6\] but the model expects \[8\]/);
  assert.throws(() => g.weight('blk.conv.weight', [8, 4, 3, 1]), /has shape \[8, 4, 3, 3\] but the model expects \[8, 4, 3, 1\]/);
});

test('shape errors name the op and both shapes', () => {
  const g = new GraphBuilder();
  const a = g.input('a', ['B', 3, 4]);
  const b = g.input('b', ['B', 5, 4]);
  assert.throws(() => g.add(a, b), /Add: shapes \[B, 3, 4\] and \[B, 5, 4\] do not broadcast/);
  assert.throws(() => g.matmul(a, b), /inner dimensions/);
  assert.throws(() => g.reshape(g.input('n', [2, 3, 4]), [5, -1]), /\[2, 3, 4\] cannot become \[5, -1\]/);
  assert.throws(() => g.concat([a, g.input('c', ['B', 3, 5])], 1), /differ on axis 2/);
  assert.throws(() => g.transpose(a, [0, 0, 1]), /not a permutation/);
  assert.throws(() => g.finish(), /no outputs/);
});

test('attention with a causal mask (as CLIP uses), fused and plain', async () => {
  const n = 7;
  const q = R.random([3, n, 6], 90);
  const k = R.random([3, n, 6], 91);
  const v = R.random([3, n, 6], 92);
  // Reference: masked positions get −inf before the softmax.
  const want = (() => {
    const out = new Float64Array(3 * n * 6);
    const [qs, ks, vs] = [f32(q), f32(k), f32(v)];
    for (let b = 0; b < 3; b++) for (let h = 0; h < 2; h++) for (let i = 0; i < n; i++) {
      const logits = Array.from({ length: i + 1 }, (_, j) => {
        let d = 0;
        for (let t = 0; t < 3; t++) d += qs.data[(b * n + i) * 6 + h * 3 + t] * ks.data[(b * n + j) * 6 + h * 3 + t];
        return d / Math.sqrt(3);
      });
      const p = R.softmax(R.arr([i + 1], logits)).data;
      for (let t = 0; t < 3; t++) out[(b * n + i) * 6 + h * 3 + t] = p.reduce((s, pj, j) => s + pj * vs.data[(b * n + j) * 6 + h * 3 + t], 0);
    }
    return R.arr([3, n, 6], out);
  })();
  for (const fused of [true, false]) {
    await check(`causal attention ${fused ? 'fused' : 'plain'}`, {
      inputs: { q, k, v }, fusedAttention: fused, build: (g, x) => g.attention(x.q, x.k, x.v, { heads: 2, bias: g.causalMask(n) }),
    }, want);
  }
});

test('upsampleNearestTo resizes onto a skip of any size with torch nearest indexing', async () => {
  const x = R.random([2, 3, 2, 3], 95);
  const like = R.random([2, 1, 3, 5], 96);
  const xs = f32(x);
  const out: number[] = [];
  for (let p = 0; p < 6; p++) for (let y = 0; y < 3; y++) for (let q = 0; q < 5; q++) out.push(xs.data[(p * 2 + Math.floor((y * 2) / 3)) * 3 + Math.floor((q * 3) / 5)]);
  await check('upsampleNearestTo 2×3 → 3×5', { inputs: { x, like }, build: (g, v) => g.upsampleNearestTo(v.x, v.like) }, R.arr([2, 3, 3, 5], out), 0);
});

test('relu, leakyRelu, prelu (per-channel and shared), pixelShuffle and pixelUnshuffle as torch defines them', async () => {
  const x = R.random([2, 8, 4, 6], 97);
  const xs = f32(x);
  await check('relu', { inputs: { x }, build: (g, v) => g.relu(v.x) }, R.map(xs, (a) => Math.max(a, 0)), 0);
  await check('leakyRelu 0.2', { inputs: { x }, build: (g, v) => g.leakyRelu(v.x, 0.2) }, R.map(xs, (a) => (a >= 0 ? a : a * Math.fround(0.2))));
  const slope = R.random([8], 98);
  const sl = f32(slope);
  const preluWant = R.arr(x.shape, xs.data.map((a, i) => (a >= 0 ? a : a * sl.data[Math.floor(i / 24) % 8])));
  await check('prelu per channel', { weights: { 'p.weight': slope }, inputs: { x }, build: (g, v) => g.prelu(v.x, g.weight('p.weight')) }, preluWant);
  const one = R.arr([1], [0.25]);
  await check('prelu shared', { weights: { 'p.weight': one }, inputs: { x }, build: (g, v) => g.prelu(v.x, g.weight('p.weight')) }, R.map(xs, (a) => (a >= 0 ? a : a * 0.25)));
  // torch: shuffle out[n, c, h·r + i, w·r + j] = in[n, c·r² + i·r + j, h, w]; unshuffle is its inverse.
  const [n, c, h, w] = x.shape;
  for (const r of [2]) {
    const co = c / (r * r);
    const sh = new Float64Array(xs.data.length);
    for (let b = 0; b < n; b++) for (let ch = 0; ch < co; ch++) for (let y = 0; y < h * r; y++) for (let q = 0; q < w * r; q++) {
      const src = ((b * c + ch * r * r + (y % r) * r + (q % r)) * h + Math.floor(y / r)) * w + Math.floor(q / r);
      sh[((b * co + ch) * h * r + y) * w * r + q] = xs.data[src];
    }
    await check(`pixelShuffle ${r}`, { inputs: { x }, build: (g, v) => g.pixelShuffle(v.x, r) }, R.arr([n, co, h * r, w * r], sh), 0);
    const un = new Float64Array(xs.data.length);
    const [ho, wo] = [h / r, w / r];
    for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let q = 0; q < w; q++) {
      const dst = ((b * c * r * r + ch * r * r + (y % r) * r + (q % r)) * ho + Math.floor(y / r)) * wo + Math.floor(q / r);
      un[dst] = xs.data[((b * c + ch) * h + y) * w + q];
    }
    await check(`pixelUnshuffle ${r}`, { inputs: { x }, build: (g, v) => g.pixelUnshuffle(v.x, r) }, R.arr([n, c * r * r, ho, wo], un), 0);
    await check(`pixelShuffle ∘ pixelUnshuffle = id`, { inputs: { x }, build: (g, v) => g.pixelShuffle(g.pixelUnshuffle(v.x, r), r) }, xs, 0);
  }
});
