import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { sdSchedule } from './discrete.js';
import {
  AYS_NOISE_LEVELS, a1111Sigmas, alignYourStepsA1111Sigmas, alignYourStepsSigmas, betaCdf, betaPpf, comfySigmas,
  discardsPenultimate, discreteUniformSigmas, dropPenultimate, exponentialSigmas, karrasSigmas, klOptimalSigmas,
  loglinearInterp, polyexponentialSigmas, sigmasFor, vpSigmas,
} from './schedules.js';
import { join } from 'node:path';
import { HAS_REF, REF, refTests } from '../../test/ref.js';

const refTest = refTests('schedules against the reference tables');
const ref = HAS_REF ? JSON.parse(readFileSync(join(REF, 'samplers/schedules.json'), 'utf8')) : undefined;
const TOL = 1e-6;

function relErr(got: readonly number[], want: readonly number[], isF32: boolean): number {
  assert.equal(got.length, want.length, `length ${got.length} ≠ ${want.length}`);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const w = isF32 ? Math.fround(want[i]) : want[i];
    worst = Math.max(worst, w === 0 ? Math.abs(got[i]) : Math.abs(got[i] - w) / Math.abs(w));
  }
  return worst;
}

refTest('k-diffusion schedules (float32 and float64 runs) to 1e-6 relative', () => {
  for (const dtype of ['f32', 'f64'] as const) {
    // The reference passes the float32 table's σ_min/σ_max as Python floats in both runs.
    const kd = sdSchedule('kdiffusion');
    const table = sdSchedule(dtype === 'f32' ? 'kdiffusion' : 'kdiffusion-f64');
    const worst: Record<string, number> = {};
    for (const [n, lists] of Object.entries(ref.kdiffusion[`schedules_${dtype}`]) as [string, Record<string, number[]>][]) {
      const N = Number(n);
      const got: Record<string, number[]> = {
        karras: karrasSigmas(N, kd.sigmaMin, kd.sigmaMax, 7, dtype),
        exponential: exponentialSigmas(N, kd.sigmaMin, kd.sigmaMax, dtype),
        polyexponential_rho1: polyexponentialSigmas(N, kd.sigmaMin, kd.sigmaMax, 1, dtype),
        polyexponential_rho2: polyexponentialSigmas(N, kd.sigmaMin, kd.sigmaMax, 2, dtype),
        vp_defaults: vpSigmas(N, 19.9, 0.1, 1e-3, dtype),
        normal: discreteUniformSigmas(table, N),
      };
      for (const [name, want] of Object.entries(lists)) {
        const e = relErr(got[name], want, dtype === 'f32');
        worst[name] = Math.max(worst[name] ?? 0, e);
        assert.ok(e <= TOL, `${dtype} ${name} n=${n}: ${e}`);
      }
    }
    console.log(`k-diffusion ${dtype} worst rel:`, JSON.stringify(worst));
  }
});

refTest('every ComfyUI scheduler, n ∈ {1,2,5,10,20,50}, to 1e-6 relative', () => {
  const worst: Record<string, number> = {};
  for (const [name, byN] of Object.entries(ref.comfy.schedules) as [string, Record<string, number[] | null>][]) {
    for (const [n, want] of Object.entries(byN)) {
      if (want === null) {
        assert.throws(() => comfySigmas(name, Number(n)), /kl_optimal/);
        continue;
      }
      const e = relErr(comfySigmas(name, Number(n)), want, true);
      worst[name] = Math.max(worst[name] ?? 0, e);
      assert.ok(e <= TOL, `${name} n=${n}: ${e}`);
    }
  }
  console.log('comfy schedules worst rel:', JSON.stringify(worst));
});

refTest("ComfyUI KSampler's discard-penultimate schedules to 1e-6 relative", () => {
  let worst = 0;
  for (const sampler of ref.comfy.discard_penultimate_samplers as string[]) {
    assert.ok(discardsPenultimate('comfy', sampler));
    for (const [name, byN] of Object.entries(ref.comfy.discard_penultimate) as [string, Record<string, number[]>][]) {
      for (const [n, want] of Object.entries(byN)) {
        const e = relErr(sigmasFor('comfy', sampler, name, Number(n)), want, true);
        worst = Math.max(worst, e);
        assert.ok(e <= TOL, `${sampler} ${name} n=${n}: ${e}`);
      }
    }
  }
  console.log('comfy discard-penultimate worst rel:', worst);
});

test('discard rules differ between the profiles', () => {
  assert.ok(discardsPenultimate('a1111', 'dpmpp_3m_sde'));
  assert.ok(!discardsPenultimate('comfy', 'dpmpp_3m_sde'));
  assert.ok(discardsPenultimate('comfy', 'uni_pc'));
  assert.ok(!discardsPenultimate('a1111', 'uni_pc'));
  assert.ok(discardsPenultimate('a1111', 'euler', true));
  assert.deepEqual(dropPenultimate([3, 2, 1, 0]), [3, 2, 0]);
  const s = sigmasFor('a1111', 'dpm_2', 'karras', 10);
  assert.equal(s.length, 11);
  assert.deepEqual(s, dropPenultimate(karrasSigmas(11, sdSchedule('kdiffusion').sigmaMin, sdSchedule('kdiffusion').sigmaMax)));
});

test('A1111 uses the float32 k-diffusion table; its uniform and normal coincide', () => {
  const kd = sdSchedule('kdiffusion');
  const uniform = a1111Sigmas('normal', 20);
  assert.deepEqual(uniform, discreteUniformSigmas(kd, 20));
  const karras = a1111Sigmas('karras', 10);
  assert.equal(karras[0], Math.fround(14.614643)); // the float32 Karras quirk the README notes
  // A1111 kl_optimal ends on σ_min itself (no appended 0); its beta spans σ_max → σ_min.
  const kl = a1111Sigmas('kl_optimal', 10);
  assert.equal(kl.length, 11);
  assert.ok(Math.abs(kl[10] - kd.sigmaMin) / kd.sigmaMin < 1e-6);
  const beta = a1111Sigmas('beta', 10);
  assert.ok(Math.abs(beta[0] - kd.sigmaMax) / kd.sigmaMax < 1e-6);
  assert.equal(beta[10], 0);
});

test('Align Your Steps: published SD1 list at 10 steps, log-linear resampling elsewhere', () => {
  const ten = alignYourStepsSigmas(10);
  assert.deepEqual(ten, [...AYS_NOISE_LEVELS.SD1.slice(0, 10), 0].map(Math.fround));
  // 20 steps: every other point is a published one; midpoints are geometric means.
  const twenty = alignYourStepsSigmas(20);
  assert.equal(twenty.length, 21);
  const L = AYS_NOISE_LEVELS.SD1;
  let worst = 0;
  for (let i = 0; i < 10; i++) {
    worst = Math.max(worst, Math.abs(twenty[2 * i] - L[i]) / L[i]);
    const mid = Math.sqrt(L[i] * L[i + 1]);
    worst = Math.max(worst, Math.abs(twenty[2 * i + 1] - mid) / mid);
  }
  console.log('AYS 20-step vs closed form worst rel:', worst);
  assert.ok(worst < 1e-6);
  assert.equal(twenty[20], 0);
  // exp(log σ) round trips, as numpy's, so compare within rounding.
  loglinearInterp([8, 2], 3).forEach((v, i) => assert.ok(Math.abs(v - [8, 4, 2][i]) < 1e-14));
  assert.equal(alignYourStepsSigmas(10, 'SD1', 0.5).length, 6);
  const a = alignYourStepsA1111Sigmas(10);
  assert.equal(a.length, 11);
  assert.equal(a[0], Math.fround(14.615));
  assert.equal(a[9], Math.fround(0.029));
});

test('beta quantile and CDF agree; symmetric median is exact', () => {
  for (const q of [0.01, 0.2, 0.5, 0.7, 0.99]) assert.ok(Math.abs(betaCdf(betaPpf(q, 0.6, 0.6), 0.6, 0.6) - q) < 1e-12);
  assert.equal(betaPpf(0.5, 0.6, 0.6), 0.5);
  assert.ok(Math.abs(betaCdf(0.3, 1, 1) - 0.3) < 1e-14);
});

test('bad inputs give clear errors', () => {
  assert.throws(() => comfySigmas('karas', 10), /unknown scheduler "karas"/);
  assert.throws(() => karrasSigmas(0, 0.03, 14.6), /positive integer/);
  assert.throws(() => klOptimalSigmas(1, 0.03, 14.6), /at least 2 steps/);
});
