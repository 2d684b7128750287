// The denoiser's use of scheduled and composable conditioning, against a stand-in UNet that
// records what it is called with: which schedule entry each call gets (A1111 counts calls, the
// comfy profile reads the step off σ), AND combination, and cond/uncond of different lengths.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TextConditioning } from '../../src/pipelines/conditioning.js';
import { cfgDenoiser, type UNetLike } from '../../src/pipelines/denoiser.js';
import { getProfile } from '../../src/pipelines/profiles.js';
import { sampleLatents } from '../../src/pipelines/sample.js';
import { Tensor } from '../../src/tensor/tensor.js';

const W = 2;
const shape = [1, 1, 1, 2] as const;
const per = 2;

function cond(value: number, tokens = 77) {
  return { data: new Float32Array(tokens * W).fill(value), tokens, width: W };
}

/** eps = the context row's first value: each row's prediction tells which conditioning it saw. */
function recorder() {
  const calls: { rows: number; tokens: number; values: number[] }[] = [];
  const model: UNetLike = {
    prediction: 'eps',
    async predict(x: Tensor, _t: Tensor, ctx: Tensor) {
      const [rows, tokens] = ctx.shape;
      const c = ctx.toFloat32Array();
      const values = Array.from({ length: rows }, (_, r) => c[r * tokens * W]);
      calls.push({ rows, tokens, values });
      const out = new Float32Array(x.size);
      for (let r = 0; r < rows; r++) out.fill(values[r], r * per, (r + 1) * per);
      return Tensor.f32(x.shape, out);
    },
  };
  return { model, calls };
}

const scheduled: TextConditioning = {
  cond: [{ weight: 1, schedule: [{ endAtStep: 1, cond: cond(1) }, { endAtStep: 10, cond: cond(2) }] }],
  uncond: [{ endAtStep: 10, cond: cond(-1) }],
};

test('A1111 counts denoiser calls (Heun\'s second evaluation is the next step); the comfy profile reads σ', async () => {
  const sigmas = [3, 2, 1, 0];
  const seen: Record<string, number[]> = {};
  for (const name of ['a1111', 'comfy'] as const) {
    const { model, calls } = recorder();
    await sampleLatents({
      model, profile: getProfile(name), sampler: 'heun', sigmas, x: new Float64Array(per).fill(0.5), shape,
      conditioning: scheduled, cfgScale: 7, noise: () => new Float64Array(per),
    });
    seen[name] = calls.map((c) => c.values[name === 'a1111' ? 0 : 1]);
  }
  assert.deepEqual(seen.a1111, [1, 1, 2, 2, 2]);
  assert.deepEqual(seen.comfy, [1, 1, 1, 2, 2]);
});

test('AND parts combine as A1111 combine_denoised: u + Σ (c_k − u)·(w_k·cfg)', async () => {
  const { model, calls } = recorder();
  const tc: TextConditioning = {
    cond: [{ weight: 1.2, schedule: [{ endAtStep: 10, cond: cond(3) }] }, { weight: 0.5, schedule: [{ endAtStep: 10, cond: cond(5, 154) }] }],
    uncond: [{ endAtStep: 10, cond: cond(-1, 154) }],
  };
  const d = cfgDenoiser({ model, profile: getProfile('a1111'), schedule: getProfile('a1111').schedule(), shape, conditioning: tc, cfgScale: 7 });
  const x = Float64Array.from([0.25, -0.5]);
  const sigma = 2;
  const out = await d(x, sigma);
  // one call: [part 1, part 2 (padded to 154 with its last vector), uncond]
  assert.deepEqual(calls.map((c) => [c.rows, c.tokens, c.values]), [[3, 154, [3, 5, -1]]]);
  for (let i = 0; i < per; i++) {
    const u = x[i] - sigma * -1;
    const want = u + (x[i] - sigma * 3 - u) * (1.2 * 7) + (x[i] - sigma * 5 - u) * (0.5 * 7);
    assert.ok(Math.abs(out[i] - want) < 1e-12);
  }
});

test('cond and uncond of different lengths: A1111 makes two UNet calls, ComfyUI tiles both to a common length', async () => {
  const tc: TextConditioning = { cond: [{ weight: 1, schedule: [{ endAtStep: 10, cond: cond(3, 154) }] }], uncond: [{ endAtStep: 10, cond: cond(-1, 231) }] };
  const a = recorder();
  await cfgDenoiser({ model: a.model, profile: getProfile('a1111'), schedule: getProfile('a1111').schedule(), shape, conditioning: tc, cfgScale: 7 })(new Float64Array(per), 1);
  assert.deepEqual(a.calls.map((c) => [c.rows, c.tokens, c.values]), [[1, 154, [3]], [1, 231, [-1]]]);
  const c = recorder();
  await cfgDenoiser({ model: c.model, profile: getProfile('comfy'), schedule: getProfile('comfy').schedule(), shape, conditioning: tc, cfgScale: 7 })(new Float64Array(per), 1);
  assert.deepEqual(c.calls.map((k) => [k.rows, k.tokens, k.values]), [[2, 462, [-1, 3]]]);
});

test('plain cond / uncond tensors still work (the API other pipelines use)', async () => {
  const { model, calls } = recorder();
  const d = cfgDenoiser({
    model, profile: getProfile('a1111'), schedule: getProfile('a1111').schedule(), shape,
    cond: Tensor.f32([1, 77, W], new Float32Array(77 * W).fill(4)), uncond: Tensor.f32([1, 77, W], new Float32Array(77 * W).fill(-2)), cfgScale: 3,
  });
  const out = await d(Float64Array.from([1, 1]), 1);
  assert.deepEqual(calls.map((c) => c.values), [[4, -2]]);
  assert.ok(Math.abs(out[0] - ((1 + 2) + ((1 - 4) - (1 + 2)) * 3)) < 1e-12);
});
