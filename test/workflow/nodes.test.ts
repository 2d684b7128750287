// Node functions that need no model, against hand computations of ComfyUI's definitions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { builtinNodes } from '../../src/workflow/nodes/index.js';
import type { ImageBatch, MaskBatch, NodeContext } from '../../src/workflow/types.js';
import type { LatentValue } from '../../src/workflow/values.js';

const nodes = new Map(builtinNodes().map((n) => [n.name, n]));
const ctx = {} as NodeContext;
const run = async (name: string, inputs: Record<string, unknown>) => (await nodes.get(name)!.run(inputs, ctx)).outputs;
const img = (h: number, w: number, f: (y: number, x: number, c: number) => number, c = 3): ImageBatch => ({
  batch: 1, height: h, width: w, channels: c, data: Float32Array.from({ length: h * w * c }, (_, k) => f(Math.floor(k / (w * c)), Math.floor(k / c) % w, k % c)),
});
const mask = (h: number, w: number, f: (y: number, x: number) => number): MaskBatch => ({ batch: 1, height: h, width: w, data: Float32Array.from({ length: h * w }, (_, k) => f(Math.floor(k / w), k % w)) });
const close = (a: number, b: number, tol = 1e-6) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

test('ImageBlur: Gaussian of ComfyUI (grid on [−1, 1], reflect padding)', async () => {
  const src = img(3, 3, (y, x) => (y === 1 && x === 1 ? 1 : 0), 1);
  const [out] = (await run('ImageBlur', { image: src, blur_radius: 1, sigma: 1 })) as ImageBatch[];
  const w = (d2: number) => Math.exp(-d2 / 2);
  const sum = w(0) + 4 * w(1) + 4 * w(2);
  close(out.data[4], w(0) / sum);
  // Edge (0,1): rows −1 and +1 both reflect onto the centre row.
  close(out.data[1], (2 * w(1)) / sum);
  // Corner (0,0): its reflect neighbourhood holds the centre pixel four times (at −1,−1 / −1,+1 / +1,−1 / +1,+1).
  close(out.data[0], (4 * w(2)) / sum);
});

test('ImageBlend modes and factor; ImageSharpen keeps a flat image', async () => {
  const a = img(1, 2, (_y, x) => (x ? 0.8 : 0.2));
  const b = img(1, 2, () => 0.5);
  const [m] = (await run('ImageBlend', { image1: a, image2: b, blend_factor: 1, blend_mode: 'multiply' })) as ImageBatch[];
  close(m.data[0], 0.1);
  close(m.data[3], 0.4);
  const [s] = (await run('ImageBlend', { image1: a, image2: b, blend_factor: 0.5, blend_mode: 'screen' })) as ImageBatch[];
  close(s.data[0], 0.2 * 0.5 + (1 - 0.8 * 0.5) * 0.5);
  const [flat] = (await run('ImageSharpen', { image: img(4, 4, () => 0.3), sharpen_radius: 1, sigma: 1, alpha: 1 })) as ImageBatch[];
  for (const v of flat.data) close(v, 0.3, 1e-5);
});

test('ImageCompositeMasked and LatentCompositeMasked paste through the mask at x, y', async () => {
  const dst = img(4, 4, () => 0);
  const src = img(2, 2, () => 1);
  const [out] = (await run('ImageCompositeMasked', { destination: dst, source: src, x: 1, y: 2, resize_source: false, mask: mask(2, 2, (_y, x) => (x ? 0.5 : 1)) })) as ImageBatch[];
  const at = (y: number, x: number) => out.data[(y * 4 + x) * 3];
  assert.deepEqual([at(2, 1), at(2, 2), at(3, 1), at(1, 1), at(2, 3)], [1, 0.5, 1, 0, 0]);
  const lat = (h: number, w: number, v: number): LatentValue => ({ samples: new Float32Array(4 * h * w).fill(v), shape: [1, 4, h, w] });
  const [l] = (await run('LatentCompositeMasked', { destination: lat(4, 4, 0), source: lat(2, 2, 2), x: 16, y: 8, resize_source: false })) as LatentValue[];
  assert.equal(l.samples[1 * 4 + 2], 2);
  assert.equal(l.samples[1 * 4 + 1], 0);
});

test('masks: grow (cross and box), feather, threshold, solid, invert', async () => {
  const dot = mask(5, 5, (y, x) => (y === 2 && x === 2 ? 1 : 0));
  const [cross] = (await run('GrowMask', { mask: dot, expand: 1, tapered_corners: true })) as MaskBatch[];
  assert.equal(cross.data.reduce((s, v) => s + v, 0), 5);
  const [box] = (await run('GrowMask', { mask: dot, expand: 1, tapered_corners: false })) as MaskBatch[];
  assert.equal(box.data.reduce((s, v) => s + v, 0), 9);
  const [shrunk] = (await run('GrowMask', { mask: box, expand: -1, tapered_corners: false })) as MaskBatch[];
  assert.deepEqual([...shrunk.data], [...dot.data]);
  const [f] = (await run('FeatherMask', { mask: mask(1, 4, () => 1), left: 2, top: 0, right: 0, bottom: 0 })) as MaskBatch[];
  assert.deepEqual([...f.data], [0.5, 1, 1, 1]);
  const [t] = (await run('ThresholdMask', { mask: mask(1, 3, (_y, x) => x * 0.4), value: 0.5 })) as MaskBatch[];
  assert.deepEqual([...t.data], [0, 0, 1]);
  const [inv] = (await run('InvertMask', { mask: t })) as MaskBatch[];
  assert.deepEqual([...inv.data], [1, 1, 0]);
});

test('latents: empty, rotate, flip, crop, upscale (nearest-exact, area), from batch, repeat', async () => {
  const [e] = (await run('EmptyLatentImage', { width: 20, height: 16, batch_size: 2 })) as LatentValue[];
  assert.deepEqual(e.shape, [2, 4, 2, 2]);
  const l: LatentValue = { samples: Float32Array.from({ length: 4 * 6 }, (_, k) => k % 6), shape: [1, 4, 2, 3] };
  const [r] = (await run('LatentRotate', { samples: l, rotation: '90 degrees' })) as LatentValue[];
  assert.deepEqual(r.shape, [1, 4, 3, 2]);
  assert.deepEqual([...r.samples.subarray(0, 6)], [3, 0, 4, 1, 5, 2]);
  const [fl] = (await run('LatentFlip', { samples: l, flip_method: 'y-axis: horizontally' })) as LatentValue[];
  assert.deepEqual([...fl.samples.subarray(0, 6)], [2, 1, 0, 5, 4, 3]);
  const [up] = (await run('LatentUpscaleBy', { samples: l, upscale_method: 'nearest-exact', scale_by: 2 })) as LatentValue[];
  assert.deepEqual(up.shape, [1, 4, 4, 6]);
  assert.deepEqual([...up.samples.subarray(0, 6)], [0, 0, 1, 1, 2, 2]);
  const [down] = (await run('LatentUpscale', { samples: { samples: Float32Array.from({ length: 16 }, (_, k) => k), shape: [1, 1, 4, 4] }, upscale_method: 'area', width: 16, height: 16, crop: 'disabled' })) as LatentValue[];
  assert.deepEqual([...down.samples], [2.5, 4.5, 10.5, 12.5]);
  const batch: LatentValue = { samples: Float32Array.from({ length: 3 * 4 }, (_, k) => Math.floor(k / 4)), shape: [3, 4, 1, 1] };
  const [one] = (await run('LatentFromBatch', { samples: batch, batch_index: 1, length: 1 })) as LatentValue[];
  assert.deepEqual([...one.samples], [1, 1, 1, 1]);
  assert.deepEqual(one.batchIndex, [1]);
  const [rep] = (await run('RepeatLatentBatch', { samples: one, amount: 2 })) as LatentValue[];
  assert.deepEqual(rep.batchIndex, [1, 2]);
  assert.deepEqual(rep.shape, [2, 4, 1, 1]);
});

test('bislerp keeps a constant latent constant and interpolates magnitudes', async () => {
  const l: LatentValue = { samples: Float32Array.from({ length: 4 * 4 }, (_, k) => [1, 2, 3, 4][Math.floor(k / 4)]), shape: [1, 4, 2, 2] };
  const [u] = (await run('LatentUpscale', { samples: l, upscale_method: 'bislerp', width: 24, height: 24, crop: 'disabled' })) as LatentValue[];
  assert.deepEqual(u.shape, [1, 4, 3, 3]);
  for (let c = 0; c < 4; c++) for (let p = 0; p < 9; p++) close(u.samples[c * 9 + p], c + 1, 1e-5);
});

test('ImagePadForOutpaint: grey border, mask 1 there and a quadratic feather inside', async () => {
  const [p, m] = (await run('ImagePadForOutpaint', { image: img(8, 8, () => 1), left: 8, top: 0, right: 0, bottom: 0, feathering: 2 })) as [ImageBatch, MaskBatch];
  assert.deepEqual([p.width, p.height], [16, 8]);
  assert.equal(p.data[0], 0.5);
  assert.equal(m.data[0], 1);
  assert.equal(m.data[4 * 16 + 8], 1);
  assert.equal(m.data[4 * 16 + 9], 0.25);
  assert.equal(m.data[4 * 16 + 10], 0);
});
