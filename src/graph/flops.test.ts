import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from './builder.js';
import { countFlops, evalDim } from './flops.js';
import { MemoryWeights } from './weights.js';
import { Tensor } from '../tensor/tensor.js';

test('symbolic dims evaluate for concrete sizes', () => {
  assert.equal(evalDim('ceil(H/2)*2', { H: 7 }), 8);
  assert.equal(evalDim('(H*W)/4', { H: 8, W: 6 }), 12);
  assert.equal(evalDim('H+2-1', { H: 5 }), 6);
  assert.throws(() => evalDim('H;process.exit()', { H: 1 }), /cannot evaluate/);
  assert.throws(() => evalDim('Q*2', { H: 1 }), /'Q'/);
});

test('conv, matmul and attention FLOPs are counted from the inferred shapes', () => {
  const weights = new MemoryWeights({ 'c.weight': Tensor.f32([8, 4, 3, 3]), 'l.weight': Tensor.f32([6, 8]) });
  const g = new GraphBuilder({ weights });
  const x = g.input('x', ['B', 4, 'H', 'W']);
  const h = g.conv2d(x, g.scope('c'), { padding: 1, stride: 2 });
  const t = g.reshape(g.transpose(h, [0, 2, 3, 1]), [0, -1, 8]);
  const a = g.attention(t, t, t, { heads: 2 });
  g.output(g.linear(a, g.scope('l')), 'y');
  const ir = g.finish();
  const [B, H, W] = [2, 10, 6];
  const tokens = 5 * 3;
  const conv = 2 * B * 8 * tokens * 4 * 9;
  const attn = 2 * B * tokens * tokens * (8 + 8);
  const lin = 2 * B * tokens * 8 * 6;
  assert.equal(countFlops(ir, { B, H, W }), conv + attn + lin);
});
