import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { alphasCumprod, fma32, fma64, scaledLinearBetas, sdSchedule, sigmaTable, torchLinspace } from './discrete.js';
import { join } from 'node:path';
import { HAS_REF, REF, refTests } from '../../test/ref.js';

const refTest = refTests('discrete schedules against the reference tables');
const ref = HAS_REF ? JSON.parse(readFileSync(join(REF, 'samplers/schedules.json'), 'utf8')) : undefined;

/** Count of unequal entries and max relative error (reference float32 arrays go through fround). */
function compare(got: ArrayLike<number>, want: number[], isF32: boolean): { diff: number; rel: number } {
  assert.equal(got.length, want.length);
  let diff = 0;
  let rel = 0;
  for (let i = 0; i < want.length; i++) {
    const w = isF32 ? Math.fround(want[i]) : want[i];
    if (got[i] !== w) diff++;
    rel = Math.max(rel, w === 0 ? Math.abs(got[i]) : Math.abs(got[i] - w) / Math.abs(w));
  }
  return { diff, rel };
}

refTest('betas and alphas_cumprod are bit-exact (float64)', () => {
  const betas = scaledLinearBetas();
  const b = compare(betas, ref.kdiffusion.betas_f64, false);
  const a = compare(alphasCumprod(betas), ref.kdiffusion.alphas_cumprod_f64, false);
  console.log(`betas: ${b.diff} differ, worst rel ${b.rel}; alphas_cumprod: ${a.diff} differ, worst rel ${a.rel}`);
  assert.equal(b.diff, 0);
  assert.equal(a.diff, 0);
});

refTest('sigma tables: k-diffusion float32 and ComfyUI float64→float32, bit-exact', () => {
  const kd = compare(sigmaTable('kdiffusion'), ref.kdiffusion.model_sigmas_f32, true);
  const cf = compare(sigmaTable('comfy'), ref.comfy.model_sigmas_f32, true);
  console.log(`k-diffusion table: ${kd.diff} differ; comfy table: ${cf.diff} differ`);
  assert.equal(kd.diff, 0);
  assert.equal(cf.diff, 0);
  assert.equal(sdSchedule('kdiffusion').sigmaMin, ref.kdiffusion.sigma_min);
  assert.equal(sdSchedule('kdiffusion').sigmaMax, ref.kdiffusion.sigma_max);
  assert.equal(sdSchedule('comfy').sigmaMin, ref.comfy.sigma_min);
  assert.equal(sdSchedule('comfy').sigmaMax, ref.comfy.sigma_max);
});

refTest('k-diffusion sigma_to_t / t_to_sigma / quantized, to 1e-6 relative', () => {
  const kd = sdSchedule('kdiffusion');
  const c = ref.kdiffusion.discrete_conversions;
  const probes = (c.sigma_probes as number[]).map(Math.fround);
  const results = [
    ['sigma_to_t', compare(probes.map((s) => kd.sigmaToT(s)), c.sigma_to_t, true)],
    ['sigma_to_t_quantize', compare(probes.map((s) => kd.sigmaToTQuantized(s)), c.sigma_to_t_quantize, false)],
    ['t_to_sigma', compare((c.t_probes as number[]).map((t) => kd.tToSigma(t)), c.t_to_sigma, true)],
    ['roundtrip', compare(probes.map((s) => kd.tToSigma(kd.sigmaToT(s))), c.roundtrip_t_to_sigma_of_sigma_to_t, true)],
  ] as const;
  for (const [name, r] of results) {
    console.log(`k-diffusion ${name}: worst rel ${r.rel} (${r.diff} not bit-equal)`);
    assert.ok(r.rel <= 1e-6, name);
  }
  assert.equal(results[1][1].diff, 0);
});

refTest('ComfyUI timestep / sigma / percent_to_sigma, to 1e-6 relative', () => {
  const ms = sdSchedule('comfy');
  const c = ref.comfy.conversions;
  const ts = compare((c.sigma_probes as number[]).map((s) => ms.sigmaToTQuantized(Math.fround(s))), c.timestep_of_sigma, false);
  const st = compare((c.t_probes as number[]).map((t) => ms.tToSigma(t)), c.sigma_of_t, true);
  const pc = compare((c.percent_probes as number[]).map((p) => ms.percentToSigma(p)), c.percent_to_sigma, false);
  console.log(`comfy timestep: ${ts.diff} differ; sigma(t) worst rel ${st.rel}; percent_to_sigma worst rel ${pc.rel}`);
  assert.equal(ts.diff, 0);
  assert.ok(st.rel <= 1e-6);
  assert.ok(pc.rel <= 1e-6);
});

test('fused multiply-add rounds once', () => {
  // 1 + 2^-52 squared: the 2^-104 term is lost by a separate multiply, kept by an FMA.
  const a = 1 + 2 ** -52;
  assert.equal(fma64(a, a, -(1 + 2 ** -51)), 2 ** -104);
  const b = Math.fround(1 + 2 ** -23);
  assert.equal(fma32(b, b, -Math.fround(1 + 2 ** -22)), 2 ** -46);
  assert.equal(fma32(3, 5, 7), 22);
});

test('torchLinspace endpoints and length', () => {
  assert.deepEqual(torchLinspace(999, 0, 1, 'f32'), [999]);
  const t = torchLinspace(999, 0, 37, 'f32');
  assert.equal(t.length, 37);
  assert.equal(t[0], 999);
  assert.equal(t[36], 0);
});
