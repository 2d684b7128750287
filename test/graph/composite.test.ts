import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../src/graph/builder.js';
import { MemoryWeights } from '../../src/graph/weights.js';
import { createSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as R from './reference.js';

// conv → group norm → SiLU → self-attention → linear, keyed like an SD block, against plain TypeScript.
const C = 12;
const HEADS = 3;
const GROUPS = 4;

function weights(): Record<string, R.Arr> {
  return {
    'blk.conv.weight': R.random([C, 5, 3, 3], 1, 0.3),
    'blk.conv.bias': R.random([C], 2, 0.1),
    'blk.norm.weight': R.map(R.random([C], 3, 0.2), (v) => 1 + v),
    'blk.norm.bias': R.random([C], 4, 0.1),
    'blk.attn.to_q.weight': R.random([C, C], 5, 0.3),
    'blk.attn.to_k.weight': R.random([C, C], 6, 0.3),
    'blk.attn.to_v.weight': R.random([C, C], 7, 0.3),
    'blk.proj.weight': R.random([7, C], 8, 0.3),
    'blk.proj.bias': R.random([7], 9, 0.1),
  };
}

function reference(x: R.Arr, w: Record<string, R.Arr>): R.Arr {
  const f = (a: R.Arr) => R.arr(a.shape, Float32Array.from(a.data));
  const h = R.map(R.groupNorm(R.conv2d(f(x), f(w['blk.conv.weight']), f(w['blk.conv.bias']), { pads: [1, 1, 1, 1] }), GROUPS, f(w['blk.norm.weight']), f(w['blk.norm.bias']), 1e-5), R.silu);
  const [b, c, hh, ww] = h.shape;
  const tokens = R.arr([b, hh * ww, c], R.transpose(h, [0, 2, 3, 1]).data);
  const q = R.linear(tokens, f(w['blk.attn.to_q.weight']));
  const k = R.linear(tokens, f(w['blk.attn.to_k.weight']));
  const v = R.linear(tokens, f(w['blk.attn.to_v.weight']));
  return R.linear(R.attention(q, k, v, HEADS), f(w['blk.proj.weight']), f(w['blk.proj.bias']));
}

for (const fused of [true, false]) {
  test(`composite block matches plain TypeScript to 1e-5 (${fused ? 'fused' : 'plain'} attention)`, async () => {
    const w = weights();
    const source = new MemoryWeights(Object.fromEntries(Object.entries(w).map(([k, v]) => [k, Tensor.f32(v.shape, Float32Array.from(v.data))])));
    const g = new GraphBuilder({ weights: source });
    const blk = g.scope('blk');
    const x = g.input('x', ['B', 5, 'H', 'W']);
    let h = g.silu(g.groupNorm(g.conv2d(x, blk.scope('conv'), { padding: 1 }), blk.scope('norm'), GROUPS, 1e-5));
    h = g.reshape(g.transpose(h, [0, 2, 3, 1]), [0, -1, C]);
    const attn = blk.scope('attn');
    const a = g.attention(g.linear(h, attn.scope('to_q')), g.linear(h, attn.scope('to_k')), g.linear(h, attn.scope('to_v')), { heads: HEADS });
    g.output(g.linear(a, blk.scope('proj')), 'y');
    const s = await createSession(g.finish(), source, { fusedAttention: fused });
    for (const [b, hh, ww] of [[3, 5, 7], [1, 1, 1]]) {
      const x0 = R.random([b, 5, hh, ww], 100 + b);
      const out = await s.run({ x: Tensor.f32(x0.shape, Float32Array.from(x0.data)) });
      const want = reference(x0, w);
      assert.deepEqual([...out.y.shape], want.shape);
      const err = R.relError(out.y.data as Float32Array, want);
      console.log(`  composite ${b}×${hh}×${ww}: worst relative error ${err.toExponential(2)} (tolerance 1e-5)`);
      assert.ok(err <= 1e-5, `relative error ${err}`);
    }
    await s.release();
  });
}
