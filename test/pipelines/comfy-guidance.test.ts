// ComfyUI conditioning semantics (comfy/samplers.py calc_cond_batch and friends) against an analytic
// stand-in UNet: eps = mean(context row)·x_in + t/1000 (float32), so every expected value below is
// computed from the formulas directly, not by the code under test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  average, combine, comfyConditioning, concat, setArea, setAreaPercentage, setMask, setTimestepRange, zeroOut,
  type ComfyConditioning, type ComfyMask,
} from '../../src/pipelines/comfy-conditioning.js';
import { comfyGuidedDenoiser, resolveComfyConds } from '../../src/pipelines/comfy-guidance.js';
import type { CondTensor } from '../../src/pipelines/conditioning.js';
import { cfgDenoiser, type UNetLike } from '../../src/pipelines/denoiser.js';
import { getProfile } from '../../src/pipelines/profiles.js';
import { Tensor } from '../../src/tensor/tensor.js';

const f32 = Math.fround;
const WIDTH = 4;
const profile = getProfile('comfy');
const schedule = profile.schedule();

/** A context of `tokens` tokens, every value `v` (so its mean is exactly f32(v)). */
function ctx(v: number, tokens = 77): CondTensor {
  return { data: new Float32Array(tokens * WIDTH).fill(v), tokens, width: WIDTH };
}

interface Call { rows: number; shape: number[]; tokens: number; means: number[]; context: Float32Array }

/** eps (or v) = mean(context row)·x + t·0.001, evaluated in float32; records every call. */
function fakeUNet(prediction: 'eps' | 'v' = 'eps') {
  const calls: Call[] = [];
  const model: UNetLike = {
    prediction,
    async predict(x: Tensor, t: Tensor, context: Tensor) {
      const [rows, tokens, w] = context.shape;
      const c = context.toFloat32Array();
      const means = Array.from({ length: rows }, (_, r) => {
        let s = 0;
        for (let i = 0; i < tokens * w; i++) s += c[r * tokens * w + i];
        return f32(s / (tokens * w));
      });
      calls.push({ rows, shape: [...x.shape], tokens, means, context: c });
      const xs = x.toFloat32Array();
      const ts = t.toFloat32Array();
      const per = xs.length / rows;
      const out = new Float32Array(xs.length);
      for (let r = 0; r < rows; r++) for (let i = 0; i < per; i++) out[r * per + i] = f32(means[r] * xs[r * per + i] + ts[r] * 0.001);
      return Tensor.f32(x.shape, out);
    },
  };
  return { model, calls };
}

/** The stand-in's denoised prediction for one latent value under a context of mean `m` (eps model). */
function dEps(x: number, sigma: number, m: number): number {
  const t = profile.timestep(schedule, sigma);
  const xin = profile.scaleInput(x, sigma);
  return x - sigma * f32(f32(m) * xin + f32(t) * 0.001);
}

function latent(B: number, C: number, h: number, w: number): Float64Array {
  return Float64Array.from({ length: B * C * h * w }, (_, i) => Math.sin(i * 0.7) * 2);
}

const near = (a: number, b: number, tol = 1e-12) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12, what = '') {
  assert.equal(actual.length, expected.length);
  let worst = 0;
  for (let i = 0; i < actual.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
  assert.ok(worst <= tol, `${what} worst relative error ${worst} > ${tol}`);
}

test('(a) one positive + one negative entry = cfgDenoiser under the comfy profile, bit for bit', async () => {
  for (const prediction of ['eps', 'v'] as const) {
    for (const [ct, ut] of [[77, 77], [77, 154]]) {
      const shape = [2, 4, 3, 5] as const;
      const x = latent(...shape);
      const pos = { ...ctx(0.75, ct), data: Float32Array.from({ length: ct * WIDTH }, (_, i) => Math.cos(i)) };
      const neg = { ...ctx(-0.5, ut), data: Float32Array.from({ length: ut * WIDTH }, (_, i) => Math.sin(i)) };
      const a = fakeUNet(prediction);
      const b = fakeUNet(prediction);
      const ours = comfyGuidedDenoiser({ model: a.model, profile, schedule, shape, positive: comfyConditioning(pos), negative: comfyConditioning(neg), cfgScale: 6.5 });
      const rep = (c: CondTensor) => Tensor.f32([2, c.tokens, WIDTH], Float32Array.from({ length: 2 * c.data.length }, (_, i) => c.data[i % c.data.length]));
      const ref = cfgDenoiser({ model: b.model, profile, schedule, shape, cond: rep(pos), uncond: rep(neg), cfgScale: 6.5 });
      for (const sigma of [14.6146, 3.2, 0.0292]) {
        assert.deepEqual(await ours(x, sigma), await ref(x, sigma));
        const [p, q] = [await ours.withUncond(x, sigma), await ref.withUncond(x, sigma)];
        assert.deepEqual(p.denoised, q.denoised);
        assert.deepEqual(p.uncond, q.uncond);
      }
      // Same UNet batches: [uncond ×2, cond ×2] at the lcm length.
      assert.deepEqual(a.calls.map((c) => [c.rows, c.tokens]), b.calls.map((c) => [c.rows, c.tokens]));
      assert.deepEqual(a.calls.map((c) => Array.from(c.context)), b.calls.map((c) => Array.from(c.context)));
    }
  }
});

test('(b) entries without areas: strength-weighted average, one batch in ComfyUI\'s order', async () => {
  const shape = [1, 2, 2, 3] as const;
  const x = latent(...shape);
  const { model, calls } = fakeUNet();
  const positive = combine(comfyConditioning(ctx(1)), setTimestepRange([{ cond: ctx(2), strength: 0.5 }], 0, 1));
  const d = comfyGuidedDenoiser({ model, profile, schedule, shape, positive, negative: comfyConditioning(ctx(-1)), cfgScale: 3 });
  const sigma = 2.5;
  const out = await d.withUncond(x, sigma);
  // to_run = [pos 1, pos 2, neg]; batched in reverse: [neg, pos 2, pos 1].
  assert.deepEqual(calls.map((c) => c.means), [[-1, 2, 1]]);
  for (let i = 0; i < x.length; i++) {
    const c = (dEps(x[i], sigma, 2) * 0.5 + dEps(x[i], sigma, 1) * 1) / (f32(1e-37) + 0.5 + 1);
    const u = dEps(x[i], sigma, -1);
    assert.ok(near(out.uncond[i], u));
    assert.ok(near(out.denoised[i], u + (c - u) * 3));
  }
});

/** Feathering of one axis, as a hand-written table: t-th cell from a fading edge scaled by (t+1)/rr. */
function fade(size: number, offset: number, full: number): number[] {
  const rr = Math.min(8, Math.floor(size / 4));
  const k = new Array<number>(size).fill(1);
  if (offset !== 0) for (let t = 0; t < rr; t++) k[t] = f32(k[t] * f32((t + 1) / rr));
  if (size + offset < full) for (let t = 0; t < rr; t++) k[size - 1 - t] = f32(k[size - 1 - t] * f32((t + 1) / rr));
  return k;
}

test('(c) an area entry acts only on its feathered region; the negative gets a same-area twin', async () => {
  const shape = [1, 1, 32, 48] as const;
  const [, , H, W] = shape;
  const x = latent(...shape);
  const { model, calls } = fakeUNet();
  // 96×296 px at (64, 39) → 12×37 cells at y 4, x 8.
  const area = setArea(comfyConditioning(ctx(3)), 296, 96, 64, 39, 0.8);
  assert.deepEqual(area[0].area, { kind: 'latent', height: 12, width: 37, y: 4, x: 8 });
  const positive = combine(comfyConditioning(ctx(1)), area);
  const negative = comfyConditioning(ctx(-1));
  const d = comfyGuidedDenoiser({ model, profile, schedule, shape, positive, negative, cfgScale: 5 });
  const sigma = 1.7;
  const out = await d.withUncond(x, sigma);
  // Full-size entries in one call, area entries (positive and its negative twin) in another.
  assert.deepEqual(calls.map((c) => [c.shape, c.means]), [[[2, 1, 32, 48], [-1, 1]], [[2, 1, 12, 37], [-1, 3]]]);
  const fy = fade(12, 4, H); // rr = 3, both edges inside the latent
  const fx = fade(37, 8, W); // rr = min(8, 37 // 4) = 8, both edges inside
  assert.deepEqual(fy, [f32(1 / 3), f32(2 / 3), 1, 1, 1, 1, 1, 1, 1, 1, f32(2 / 3), f32(1 / 3)]);
  assert.deepEqual(fx.slice(0, 9), [0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1, 1]);
  assert.deepEqual(fx.slice(28), [1, 1, 0.875, 0.75, 0.625, 0.5, 0.375, 0.25, 0.125]);
  for (let y = 0; y < H; y++) {
    for (let xx = 0; xx < W; xx++) {
      const i = y * W + xx;
      const inside = y >= 4 && y < 16 && xx >= 8 && xx < 45;
      const m = inside ? f32(f32(f32(0.8) * fy[y - 4]) * fx[xx - 8]) : 0;
      const base = dEps(x[i], sigma, 1);
      const c = inside ? (base + dEps(x[i], sigma, 3) * m) / (f32(1e-37) + 1 + m) : base;
      const un = dEps(x[i], sigma, -1);
      const u = inside ? (un + un * m) / (f32(1e-37) + 1 + m) : un;
      if (!inside) assert.equal(out.denoised[i], u + (c - u) * 5, `outside the area at ${y},${xx}`);
      assert.ok(near(out.denoised[i], u + (c - u) * 5), `at ${y},${xx}`);
    }
  }
});

test('(c) percentage areas resolve with Python rounding; twins take the smallest enclosing area', () => {
  const pos = combine(comfyConditioning(ctx(5)), combine(setAreaPercentage(comfyConditioning(ctx(1)), 0.5, 0.25, 0.125, 0.3, 1), setArea(comfyConditioning(ctx(2)), 64, 64, 0, 0, 1)));
  const neg = combine(comfyConditioning(ctx(-1)), setArea(comfyConditioning(ctx(-2)), 160, 160, 0, 0, 1));
  const r = resolveComfyConds(pos, neg, 10, 20, schedule);
  // height 0.25·10 = 2.5 → 2 (half to even), width 0.5·20 = 10, y 0.3·10 = 3, x 0.125·20 = 2.5 → 2.
  assert.deepEqual(r.positive[1].area, [2, 10, 3, 2]);
  assert.deepEqual(r.positive[2].area, [8, 8, 0, 0]);
  // Both positive areas lie inside the negative's 20×20 area, which beats its full-size entry → twins
  // with that text; the negative's area gets a twin with the full-size positive text; the twins of
  // the positive areas find their originals and add nothing.
  assert.deepEqual(r.negative.map((e) => [e.cond.data[0], e.area]), [[-1, undefined], [-2, [20, 20, 0, 0]], [-2, [2, 10, 3, 2]], [-2, [8, 8, 0, 0]]]);
  assert.deepEqual(r.positive.map((e) => [e.cond.data[0], e.area]), [[5, undefined], [1, [2, 10, 3, 2]], [2, [8, 8, 0, 0]], [5, [20, 20, 0, 0]]]);
});

test('(d) a mask entry weighs by mask·mask_strength (resized bilinearly to the latent), no feathering', async () => {
  const shape = [2, 2, 4, 4] as const;
  const x = latent(...shape);
  // An 8×8 pixel mask, halved to 4×4 cells: each cell the mean of a 2×2 block.
  const pix = Float32Array.from({ length: 64 }, (_, i) => ((i >> 3) < 4 && (i & 7) >= 2 ? 1 : 0) * (0.5 + (i % 3) * 0.25));
  const mask: ComfyMask = { data: pix, batch: 1, height: 8, width: 8 };
  const positive = combine(comfyConditioning(ctx(1)), setMask(comfyConditioning(ctx(4)), mask, 'default', 0.6));
  const { model, calls } = fakeUNet();
  const d = comfyGuidedDenoiser({ model, profile, schedule, shape, positive, negative: comfyConditioning(ctx(-1)), cfgScale: 2 });
  const sigma = 0.9;
  const out = await d.withUncond(x, sigma);
  assert.deepEqual(calls.map((c) => [c.rows, c.means]), [[6, [-1, -1, 4, 4, 1, 1]]]);
  for (let b = 0; b < 2; b++) {
    for (let c = 0; c < 2; c++) {
      for (let y = 0; y < 4; y++) {
        for (let xx = 0; xx < 4; xx++) {
          const cell = f32((pix[2 * y * 8 + 2 * xx] + pix[2 * y * 8 + 2 * xx + 1] + pix[(2 * y + 1) * 8 + 2 * xx] + pix[(2 * y + 1) * 8 + 2 * xx + 1]) / 4);
          const m = f32(cell * f32(0.6));
          const i = ((b * 2 + c) * 4 + y) * 4 + xx;
          const cond = (dEps(x[i], sigma, 4) * m + dEps(x[i], sigma, 1)) / (f32(1e-37) + m + 1);
          const u = dEps(x[i], sigma, -1);
          assert.ok(near(out.denoised[i], u + (cond - u) * 2, 1e-6), `at ${b},${c},${y},${xx}`);
        }
      }
    }
  }
});

test('(d) "mask bounds": the entry runs on the mask\'s bounding box (at least 8×8 cells)', async () => {
  const shape = [1, 1, 16, 16] as const;
  const x = latent(...shape);
  const data = new Float32Array(256);
  for (let y = 5; y <= 7; y++) for (let xx = 3; xx <= 12; xx++) data[y * 16 + xx] = 1;
  const positive = combine(comfyConditioning(ctx(1)), setMask(comfyConditioning(ctx(2)), { data, batch: 1, height: 16, width: 16 }, 'mask bounds', 1));
  const { model, calls } = fakeUNet();
  const d = comfyGuidedDenoiser({ model, profile, schedule, shape, positive, negative: comfyConditioning(ctx(-1)), cfgScale: 4 });
  const sigma = 5;
  const out = await d.withUncond(x, sigma);
  // Box rows 5..7 (3 → 8 cells), columns 3..12 (10 cells): area [8, 10, 5, 3]; the negative gets a twin.
  assert.deepEqual(calls.map((c) => [c.shape, c.means]), [[[2, 1, 16, 16], [-1, 1]], [[2, 1, 8, 10], [-1, 2]]]);
  for (let y = 0; y < 16; y++) {
    for (let xx = 0; xx < 16; xx++) {
      const i = y * 16 + xx;
      const m = data[i];
      const cond = (dEps(x[i], sigma, 1) + dEps(x[i], sigma, 2) * m) / (f32(1e-37) + 1 + m);
      const un = dEps(x[i], sigma, -1);
      const u = (un + un * m) / (f32(1e-37) + 1 + m);
      assert.ok(near(out.denoised[i], u + (cond - u) * 4));
    }
  }
});

test('(e) timestep ranges select entries by σ; with no active entry the prediction is 0', async () => {
  const shape = [1, 1, 2, 2] as const;
  const x = latent(...shape);
  const early = setTimestepRange(comfyConditioning(ctx(1)), 0, 0.5);
  const late = setTimestepRange(comfyConditioning(ctx(2)), 0.5, 1);
  const mid = schedule.percentToSigma(0.5);
  assert.equal(mid, schedule.tToSigma(499.5));
  const { model, calls } = fakeUNet();
  const d = comfyGuidedDenoiser({ model, profile, schedule, shape, positive: combine(early, late), negative: comfyConditioning(ctx(-1)), cfgScale: 7 });
  await d(x, 10);
  await d(x, 0.5);
  await d(x, mid);
  assert.deepEqual(calls.map((c) => c.means), [[-1, 1], [-1, 2], [-1, 2, 1]]);

  const only = fakeUNet();
  const e = comfyGuidedDenoiser({ model: only.model, profile, schedule, shape, positive: early, negative: comfyConditioning(ctx(-1)), cfgScale: 7 });
  const sigma = 0.5;
  const out = await e.withUncond(x, sigma);
  assert.deepEqual(only.calls.map((c) => c.means), [[-1]]);
  for (let i = 0; i < x.length; i++) {
    const u = dEps(x[i], sigma, -1);
    assert.equal(out.uncond[i], u);
    assert.equal(out.denoised[i], u + (0 - u) * 7);
  }
});

test('(f) cfg 1 skips the negative list; withUncond still evaluates it', async () => {
  const shape = [1, 1, 2, 3] as const;
  const x = latent(...shape);
  const { model, calls } = fakeUNet();
  const d = comfyGuidedDenoiser({ model, profile, schedule, shape, positive: comfyConditioning(ctx(1.5)), negative: comfyConditioning(ctx(-1)), cfgScale: 1 });
  const sigma = 3;
  const out = await d(x, sigma);
  assert.deepEqual(calls.map((c) => c.means), [[1.5]]);
  for (let i = 0; i < x.length; i++) assert.equal(out[i], dEps(x[i], sigma, 1.5));
  const both = await d.withUncond(x, sigma);
  assert.deepEqual(calls.map((c) => c.means), [[1.5], [-1, 1.5]]);
  for (let i = 0; i < x.length; i++) assert.equal(both.uncond[i], dEps(x[i], sigma, -1));
  assertClose(both.denoised, out, 1e-12);
});

test('(g) contexts of 77 and 154 tokens run together repeated to 154; 77 and 385 (5×) do not', async () => {
  const shape = [1, 1, 2, 2] as const;
  const x = latent(...shape);
  const short: CondTensor = { data: Float32Array.from({ length: 77 * WIDTH }, (_, i) => i / 1000), tokens: 77, width: WIDTH };
  const { model, calls } = fakeUNet();
  const d = comfyGuidedDenoiser({ model, profile, schedule, shape, positive: combine(comfyConditioning(short), comfyConditioning(ctx(2, 154))), negative: comfyConditioning(ctx(-1)), cfgScale: 3 });
  await d(x, 1);
  assert.deepEqual(calls.map((c) => [c.rows, c.tokens]), [[3, 154]]);
  const ctxRow = (r: number) => calls[0].context.subarray(r * 154 * WIDTH, (r + 1) * 154 * WIDTH);
  // Row order [neg, pos 154, pos 77]; the 77-token contexts appear twice in a row.
  assert.deepEqual(Array.from(ctxRow(2)), [...short.data, ...short.data]);
  assert.deepEqual(Array.from(ctxRow(0)), new Array(154 * WIDTH).fill(-1));

  const far = fakeUNet();
  const e = comfyGuidedDenoiser({ model: far.model, profile, schedule, shape, positive: comfyConditioning(ctx(1, 385)), negative: comfyConditioning(ctx(-1)), cfgScale: 3 });
  await e(x, 1);
  // 385 vs 77: lcm 385 = 5× the shorter > 4 → two calls, the positive first.
  assert.deepEqual(far.calls.map((c) => [c.rows, c.tokens, c.means]), [[1, 385, [1]], [1, 77, [-1]]]);
  const mid = fakeUNet();
  await comfyGuidedDenoiser({ model: mid.model, profile, schedule, shape, positive: comfyConditioning(ctx(1, 154)), negative: comfyConditioning(ctx(-1, 231)), cfgScale: 3 })(x, 1);
  assert.deepEqual(mid.calls.map((c) => [c.rows, c.tokens]), [[2, 462]]);
});

test('maxBatchRows splits a batch as ComfyUI does under memory pressure', async () => {
  const shape = [1, 1, 2, 2] as const;
  const positive = [1, 2, 3].map((v) => ({ cond: ctx(v) }));
  const { model, calls } = fakeUNet();
  const d = comfyGuidedDenoiser({ model, profile, schedule, shape, positive, negative: comfyConditioning(ctx(-1)), cfgScale: 3, maxBatchRows: 2 });
  await d(latent(...shape), 1);
  // 4 compatible, reversed [neg, 3, 2, 1]: halves of it until one fits.
  assert.deepEqual(calls.map((c) => c.means), [[-1, 3], [2, 1]]);
});

test('node transformations: combine, concat, average, zeroOut, setArea, setTimestepRange, setMask', () => {
  const a: ComfyConditioning = [{ cond: ctx(1), pooledOutput: Float32Array.of(1, 2) }];
  const b: ComfyConditioning = [{ cond: ctx(0.3, 154), pooledOutput: Float32Array.of(5, 6) }, { cond: ctx(9) }];
  assert.deepEqual(combine(a, b), [...a, ...b]);

  const c = concat(combine(a, a), b);
  assert.equal(c.length, 2);
  assert.equal(c[0].cond.tokens, 77 + 154);
  assert.deepEqual(Array.from(c[0].cond.data), [...a[0].cond.data, ...b[0].cond.data]);
  assert.equal(c[0].pooledOutput, a[0].pooledOutput);

  // ConditioningAverage: from cut to the entry's length, zero-padded when shorter, float32 math.
  const avgLong = average(a, b, 0.3);
  assert.equal(avgLong[0].cond.tokens, 77);
  assert.equal(avgLong[0].cond.data[0], f32(f32(1 * f32(0.3)) + f32(f32(0.3) * f32(0.7))));
  assert.deepEqual(Array.from(avgLong[0].pooledOutput!), [f32(f32(1 * f32(0.3)) + f32(5 * f32(0.7))), f32(f32(2 * f32(0.3)) + f32(6 * f32(0.7)))]);
  const avgShort = average(b, a, 0.25);
  assert.equal(avgShort[0].cond.tokens, 154);
  assert.equal(avgShort[0].cond.data[0], f32(f32(f32(0.3) * 0.25) + f32(1 * 0.75)));
  assert.equal(avgShort[0].cond.data[77 * WIDTH], f32(f32(0.3) * 0.25));
  // An entry without a pooled output mixes from's with itself.
  assert.deepEqual(Array.from(avgShort[1].pooledOutput!), [f32(f32(0.25) + f32(0.75)), f32(f32(2 * 0.25) + f32(2 * 0.75))]);

  const z = zeroOut(b);
  assert.ok(z[0].cond.data.every((v) => v === 0) && z[0].cond.tokens === 154);
  assert.deepEqual(Array.from(z[0].pooledOutput!), [0, 0]);
  assert.equal(z[1].pooledOutput, undefined);
  assert.ok(b[0].cond.data[0] !== 0, 'inputs are not modified');

  // pixels // 8, Python floor division
  const s = setArea(b, 100, 130, 9, 15, 0.7);
  assert.deepEqual(s.map((e) => [e.area, e.strength, e.setAreaToBounds]), [[{ kind: 'latent', height: 16, width: 12, y: 1, x: 1 }, 0.7, false], [{ kind: 'latent', height: 16, width: 12, y: 1, x: 1 }, 0.7, false]]);
  assert.equal(b[0].area, undefined);
  assert.deepEqual(setTimestepRange(a, 0.2, 0.7).map((e) => [e.startPercent, e.endPercent]), [[0.2, 0.7]]);
  const m: ComfyMask = { data: new Float32Array(4), batch: 1, height: 2, width: 2 };
  assert.deepEqual(setMask(a, m, 'mask bounds', 0.4).map((e) => [e.mask, e.setAreaToBounds, e.maskStrength]), [[m, true, 0.4]]);
  assert.throws(() => concat(a, []), /ConditioningConcat: conditioning_from is empty/);
});

test('an area outside the latent is reported clearly', async () => {
  const shape = [1, 1, 4, 4] as const;
  const { model } = fakeUNet();
  const d = comfyGuidedDenoiser({ model, profile, schedule, shape, positive: setArea(comfyConditioning(ctx(1)), 64, 64, 64, 0, 1), negative: comfyConditioning(ctx(-1)), cfgScale: 3 });
  await assert.rejects(d(latent(...shape), 1), /outside the 4×4 latent/);
});
