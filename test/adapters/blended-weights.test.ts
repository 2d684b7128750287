// ModelMergeSimple's mix: a·ratio + b·(1 − ratio) on the keys both sources hold under their prefixes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlendedWeights } from '../../src/adapters/blended-weights.js';
import { MemoryWeights } from '../../src/graph/weights.js';
import { Tensor } from '../../src/tensor/tensor.js';

test('blends matching keys, keeps the rest of the first source, and names the mix in its id', async () => {
  const a = new MemoryWeights({ 'm.x.w': Tensor.f32([2], [1, 2]), 'm.only_a': Tensor.f32([1], [5]), 'm.shape': Tensor.f32([2], [1, 1]) }, 'A');
  const b = new MemoryWeights({ 'n.x.w': Tensor.f32([2], [3, 6]), 'n.shape': Tensor.f32([3], [9, 9, 9]) }, 'B');
  const w = new BlendedWeights(a, 'm', b, 'n', 0.25);
  assert.deepEqual([...(await w.read('m.x.w')).toFloat32Array()], [0.25 * 1 + 0.75 * 3, 0.25 * 2 + 0.75 * 6]);
  assert.deepEqual([...(await w.read('m.only_a')).toFloat32Array()], [5]);
  assert.deepEqual([...(await w.read('m.shape')).toFloat32Array()], [1, 1], 'misshapen partners are not mixed');
  assert.notEqual(w.id, new BlendedWeights(a, 'm', b, 'n', 0.5).id);
  assert.deepEqual([...(await new BlendedWeights(a, 'm', b, 'n', 1).read('m.x.w')).toFloat32Array()], [1, 2]);
});
