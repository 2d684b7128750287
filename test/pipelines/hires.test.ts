import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hiresSize } from '../../src/pipelines/hires.js';
import { interpolate } from '../../src/pipelines/masks.js';
import { parseParameters } from '../../src/pipelines/parameters.js';
import { txt2img } from '../../src/pipelines/txt2img.js';
import { loadTiny, testTokenizer } from './models.js';
import { refTests, REF, CLIP_DIR } from '../ref.js';

const refTest = refTests('hires fix on tiny-sd1', [REF, CLIP_DIR]);

const close = (a: ArrayLike<number>, b: number[], tol = 1e-6) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `[${i}] ${a[i]} ≠ ${b[i]}`);
};

test('latent upscale modes follow torch.nn.functional.interpolate (align_corners=False)', () => {
  const src = [0, 1, 2, 3];
  // F.interpolate(torch.tensor([[[[0., 1.], [2., 3.]]]]), size=(4, 4), mode=…)
  close(interpolate(src, 1, 2, 2, 4, 4, 'nearest'), [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3]);
  close(interpolate(src, 1, 2, 2, 4, 4, 'bilinear'), [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3]);
  // bicubic: torch's kernel (A = −0.75, taps clamped at the border), first row worked out by hand
  close(interpolate(src, 1, 2, 2, 4, 4, 'bicubic').subarray(0, 4), [-0.31640625, 0.015625, 0.5625, 0.89453125]);
  // upsampling: antialiased bilinear is plain bilinear
  close(interpolate(src, 1, 2, 2, 4, 4, 'bilinear', true), [...interpolate(src, 1, 2, 2, 4, 4, 'bilinear')]);
  // downsampling 4 → 2 with antialias: PIL's triangle stretched to ±2 px, weights (0.75, 0.75, 0.25) / 1.75 at the border
  close(interpolate([0, 1, 2, 3], 1, 1, 4, 1, 2, 'bilinear', true), [5 / 7, 16 / 7]);
  // nearest picks ⌊o·2⌋, nearest-exact the pixel under the output's centre ⌊(o + 0.5)·2⌋
  close(interpolate([0, 1, 2, 3, 4, 5], 1, 1, 6, 1, 3, 'nearest'), [0, 2, 4]);
  close(interpolate([0, 1, 2, 3, 4, 5], 1, 1, 6, 1, 3, 'nearest-exact'), [1, 3, 5]);
});

refTest('hires fix: base pass, latent or pixel upscale, second pass at the target size with A1111 metadata', async () => {
  const model = await loadTiny('tiny-sd1');
  const tokenizer = await testTokenizer();
  assert.deepEqual(hiresSize(512, 512, 1.5), { width: 768, height: 768 });
  assert.deepEqual(hiresSize(40, 32, 1.3), { width: 48, height: 40 });
  const common = { prompt: 'a fox', steps: 4, seed: 12, tokenizer, width: 32, height: 32 };
  for (const upscaler of ['Latent', 'Latent (bicubic antialiased)', 'Lanczos']) {
    let evals = 0;
    const r = await txt2img(model, { ...common, hires: { scale: 2, steps: 3, denoise: 0.5, upscaler }, onProgress: () => { evals++; } });
    assert.equal(r.images[0].width, 64);
    assert.deepEqual(r.latentShape, [1, 4, 8, 8]);
    assert.equal(evals, 4 + 3, `${upscaler}: 4 base steps, then exactly the 3 hires steps`);
    assert.equal(r.sigmas.length, 4, 'the hires pass walks the last 3 steps of a 6-step schedule');
    const f = parseParameters(r.images[0].parameters).fields;
    assert.deepEqual([f.Size, f.Steps, f['Denoising strength'], f['Hires upscale'], f['Hires steps'], f['Hires upscaler']], ['32x32', '4', '0.5', '2', '3', upscaler]);
  }
  await assert.rejects(txt2img(model, { ...common, hires: { scale: 2, upscaler: '/no/such/4x.pth' } }), /hires upscaler '\/no\/such\/4x\.pth' is neither an upscaler name/);
  await assert.rejects(txt2img(model, { ...common, hires: { scale: 0.5 } }), /hires scale must be from 1 to 8/);
  await model.close();
});
