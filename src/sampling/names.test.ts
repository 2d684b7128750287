import { test } from 'node:test';
import assert from 'node:assert/strict';
import { a1111InfotextFields, automaticScheduler, parseSamplerName, resolveSampler, resolveScheduler, toA1111Names } from './names.js';

test('pre-1.9 combined A1111 names', () => {
  const cases: Array<[string, string, string]> = [
    ['DPM++ 2M Karras', 'dpmpp_2m', 'karras'],
    ['Euler a', 'euler_ancestral', 'normal'],
    ['DPM++ SDE Karras', 'dpmpp_sde', 'karras'],
    ['DPM2 a Karras', 'dpm_2_ancestral', 'karras'],
    ['LMS', 'lms', 'normal'],
    ['LMS Karras', 'lms', 'karras'],
    ['Heun', 'heun', 'normal'],
    ['DDIM', 'ddim', 'ddim_uniform'],
    ['PLMS', 'plms', 'ddim_uniform'],
    ['UniPC', 'uni_pc', 'normal'],
    ['LCM', 'lcm', 'normal'],
    ['Restart', 'restart', 'karras'],
    ['DPM fast', 'dpm_fast', 'normal'],
    ['DPM adaptive', 'dpm_adaptive', 'normal'],
    ['DPM++ 2M SDE Exponential', 'dpmpp_2m_sde', 'exponential'],
    ['DPM++ 2M SDE Heun Karras', 'dpmpp_2m_sde_heun', 'karras'],
    ['DPM++ 3M SDE', 'dpmpp_3m_sde', 'exponential'],
    ['DPM++ 2S a Karras', 'dpmpp_2s_ancestral', 'karras'],
  ];
  for (const [name, sampler, scheduler] of cases) assert.deepEqual(parseSamplerName(name), { sampler, scheduler }, name);
});

test('≥ 1.9 sampler + Schedule type pairs, Automatic, case-insensitive, ComfyUI ids', () => {
  assert.deepEqual(parseSamplerName('DPM++ 2M', 'Karras'), { sampler: 'dpmpp_2m', scheduler: 'karras' });
  assert.deepEqual(parseSamplerName('DPM++ 2M', 'Automatic'), { sampler: 'dpmpp_2m', scheduler: 'karras' });
  assert.deepEqual(parseSamplerName('Euler', 'Automatic'), { sampler: 'euler', scheduler: 'normal' });
  assert.deepEqual(parseSamplerName('DPM2'), { sampler: 'dpm_2', scheduler: 'karras' });
  assert.deepEqual(parseSamplerName('euler a', 'sgm uniform'), { sampler: 'euler_ancestral', scheduler: 'sgm_uniform' });
  assert.deepEqual(parseSamplerName('Euler', 'Uniform'), { sampler: 'euler', scheduler: 'normal' });
  assert.deepEqual(parseSamplerName('DPM++ 2M', 'Align Your Steps'), { sampler: 'dpmpp_2m', scheduler: 'align_your_steps' });
  assert.deepEqual(parseSamplerName('dpmpp_2m', 'karras'), { sampler: 'dpmpp_2m', scheduler: 'karras' });
  assert.deepEqual(parseSamplerName('k_euler_a'), { sampler: 'euler_ancestral', scheduler: 'normal' });
  // A scheduler suffix in the name wins over the separate field, as in A1111.
  assert.deepEqual(parseSamplerName('DPM++ 2M Karras', 'Exponential'), { sampler: 'dpmpp_2m', scheduler: 'karras' });
  assert.equal(resolveSampler('uni_pc_bh2'), 'uni_pc_bh2');
  assert.equal(resolveScheduler('DDIM'), 'ddim_uniform');
  assert.equal(automaticScheduler('dpmpp_3m_sde'), 'exponential');
});

test('back to A1111 names for PNG metadata', () => {
  assert.deepEqual(toA1111Names('dpmpp_2m', 'karras'), { sampler: 'DPM++ 2M', scheduleType: 'Karras', combined: 'DPM++ 2M Karras' });
  assert.deepEqual(a1111InfotextFields('dpmpp_2m', 'karras'), { Sampler: 'DPM++ 2M', 'Schedule type': 'Karras' });
  assert.deepEqual(a1111InfotextFields('euler', 'normal'), { Sampler: 'Euler' });
  assert.deepEqual(a1111InfotextFields('euler_ancestral', 'karras'), { Sampler: 'Euler a', 'Schedule type': 'Karras' });
  assert.deepEqual(a1111InfotextFields('dpmpp_2m', 'normal'), { Sampler: 'DPM++ 2M', 'Schedule type': 'Normal' });
  assert.deepEqual(a1111InfotextFields('ddim', 'ddim_uniform'), { Sampler: 'DDIM' });
  assert.deepEqual(a1111InfotextFields('res_multistep', 'beta'), { Sampler: 'res_multistep', 'Schedule type': 'Beta' });
  // Round trip through the infotext fields.
  for (const [s, k] of [['dpmpp_2m', 'karras'], ['dpm_2_ancestral', 'exponential'], ['heun', 'simple'], ['lms', 'normal']]) {
    const f = a1111InfotextFields(s, k);
    assert.deepEqual(parseSamplerName(f.Sampler, f['Schedule type']), { sampler: s, scheduler: k });
  }
});

test('unknown names: one error with close matches', () => {
  assert.throws(() => parseSamplerName('Eular a'), /unknown sampler "Eular a"; did you mean "Euler a"/);
  assert.throws(() => parseSamplerName('DPM++ 2M', 'Karas'), /unknown scheduler "Karas"; did you mean .*"karras"/);
  assert.throws(() => resolveSampler('zzz'), /unknown sampler "zzz"; known: euler/);
});
