import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeLatents } from '../../src/pipelines/image-output.js';
import { rgbToTensor } from '../../src/pipelines/image-input.js';
import { encodeImage, img2img, img2imgSigmas } from '../../src/pipelines/img2img.js';
import { getProfile, type ProfileName } from '../../src/pipelines/profiles.js';
import { checkTxt2ImgOptions, txt2img } from '../../src/pipelines/txt2img.js';
import { parseParameters } from '../../src/pipelines/parameters.js';
import { sigmasFor } from '../../src/sampling/schedules.js';
import { torchRandn } from '../../src/sampling/rng-torch-cpu.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { CLIP_DIR, maxRelError, REF, refTests } from '../ref.js';
import { testPicture } from './img2img-fixtures.js';
import { loadTiny, testTokenizer } from './models.js';

const refTest = refTests('img2img on tiny-sd1', [REF, CLIP_DIR]);

function resolved(profile: ProfileName, sampler: string, scheduler = 'automatic') {
  const c = checkTxt2ImgOptions({ profile, sampler, scheduler });
  return { sampler: c.sampler, scheduler: c.scheduler };
}

test('A1111 rule: a steps-long schedule, of which the last ⌊min(s, 0.999)·steps⌋ + 1 steps run', () => {
  const { sampler, scheduler } = resolved('a1111', 'euler');
  const full = sigmasFor('a1111', sampler, scheduler, 20);
  // strength → sampler steps run with 20 steps (setup_img2img_steps, img2img_fix_steps off)
  const table: [number, number][] = [[0.05, 2], [0.1, 3], [0.3, 7], [0.5, 11], [0.75, 16], [0.999, 20], [1, 20]];
  for (const [s, runs] of table) {
    const r = img2imgSigmas('a1111', sampler, scheduler, 20, s);
    assert.equal(r.sigmas.length - 1, runs, `strength ${s}`);
    assert.equal(r.scheduleSteps, 20);
    assert.deepEqual(r.sigmas, full.slice(20 - (runs - 1) - 1), `strength ${s}: the tail of the 20-step schedule`);
  }
  assert.deepEqual(img2imgSigmas('a1111', sampler, scheduler, 20, 1).sigmas, full, 'strength 1 walks the txt2img schedule');
  assert.deepEqual(img2imgSigmas('a1111', sampler, scheduler, 20, 0).sigmas, [], 'strength 0 samples nothing');
});

test('A1111 fix-steps rule (img2img_fix_steps, and every hires pass): exactly `steps` steps of a ⌊steps ÷ s⌋-step schedule', () => {
  const { sampler, scheduler } = resolved('a1111', 'DPM++ 2M Karras');
  for (const [s, total] of [[0.5, 40], [0.3, 66], [0.7, 28], [1, 20]] as const) {
    const r = img2imgSigmas('a1111', sampler, scheduler, 20, s, true);
    assert.equal(r.scheduleSteps, total, `strength ${s}`);
    assert.equal(r.sigmas.length - 1, 20);
    assert.deepEqual(r.sigmas, sigmasFor('a1111', sampler, scheduler, total).slice(total - 20));
  }
});

test('ComfyUI rule (KSampler.set_steps): always `steps` steps, the tail of a ⌊steps ÷ denoise⌋-step schedule', () => {
  for (const samplerName of ['euler', 'dpm_2', 'uni_pc']) {
    const { sampler, scheduler } = resolved('comfy', samplerName, 'karras');
    const table: [number, number][] = [[0.1, 200], [0.3, 66], [0.5, 40], [0.75, 26], [0.9999, 20], [1, 20]];
    for (const [d, total] of table) {
      const r = img2imgSigmas('comfy', sampler, scheduler, 20, d);
      assert.equal(r.sigmas.length - 1, 20, `${samplerName} denoise ${d}`);
      assert.equal(r.scheduleSteps, d > 0.9999 ? 20 : total);
      assert.deepEqual(r.sigmas, d > 0.9999 ? sigmasFor('comfy', sampler, scheduler, 20) : sigmasFor('comfy', sampler, scheduler, total).slice(-21));
    }
    assert.deepEqual(img2imgSigmas('comfy', sampler, scheduler, 20, 0).sigmas, []);
  }
  assert.throws(() => img2imgSigmas('comfy', 'euler', 'normal', 20, 1.5), /strength must be from 0 to 1, got 1.5/);
});

refTest('the sampler runs as many model evaluations as each rule says', async () => {
  const model = await loadTiny('tiny-sd1');
  const tokenizer = await testTokenizer();
  const image = testPicture(32, 32);
  for (const [profile, steps, strength, want] of [['a1111', 10, 0.45, 5], ['a1111', 10, 0.8, 9], ['comfy', 10, 0.45, 10], ['comfy', 4, 0.3, 4]] as const) {
    let evals = 0;
    let total = 0;
    const r = await img2img(model, { image, prompt: 'x', steps, strength, seed: 3, profile, tokenizer, cfgScale: 5, onProgress: (p) => { evals++; total = p.total; } });
    assert.equal(evals, want, `${profile} steps ${steps} strength ${strength}`);
    assert.equal(total, want);
    assert.equal(r.sigmas.length - 1, want);
  }
  await model.close();
});

refTest('strength 0 returns the input\'s VAE round trip (both profiles)', async () => {
  const model = await loadTiny('tiny-sd1');
  const tokenizer = await testTokenizer();
  const image = testPicture(64, 48);
  for (const profile of ['a1111', 'comfy'] as const) {
    const r = await img2img(model, { image, prompt: 'a fox', steps: 8, strength: 0, seed: 11, profile, tokenizer });
    const mode = profile === 'a1111' ? 'sample' : 'mean';
    const latent = await encodeImage(model, rgbToTensor(image), mode, 11);
    const [want] = await decodeLatents(model, latent, [1, 4, 6, 8]);
    assert.deepEqual(r.sigmas, []);
    assert.deepEqual([...r.images[0].rgb], [...want], `${profile}: decode(encode(image))`);
    let changed = 0;
    for (let i = 0; i < want.length; i++) if (want[i] !== image.data[i]) changed++;
    assert.ok(changed > want.length / 2, 'the round trip is not the identity (random-weight VAE), so the test has teeth');
    assert.equal(parseParameters(r.images[0].parameters).fields['Denoising strength'], '0');
  }
  await model.close();
});

refTest('strength 1 is txt2img over the same σ list from the same noise (plus the init latent both tools add)', async () => {
  const model = await loadTiny('tiny-sd1');
  const tokenizer = await testTokenizer();
  const image = testPicture(64, 64);
  const shape = [1, 4, 8, 8];
  const noise = Tensor.f32(shape, torchRandn(5, shape));
  for (const [profile, sampler] of [['a1111', 'euler'], ['comfy', 'dpmpp_2m'], ['a1111', 'Euler a']] as const) {
    const common = { prompt: 'a fox', negativePrompt: 'blur', steps: 6, seed: 5, profile, sampler, tokenizer, cfgScale: 4, width: 64, height: 64 };
    const r = await img2img(model, { ...common, image, strength: 1, noise });
    const t2i = await txt2img(model, { ...common, noise: Tensor.f32(shape, noise.toFloat32Array()) });
    assert.deepEqual(r.sigmas, t2i.sigmas, `${profile}: the full txt2img schedule`);
    // A1111 starts from init + noise·σ0, ComfyUI from init + noise·√(1+σ0²): that is txt2img whose
    // unit noise is noise + init ÷ scale. That noise is rounded to float32 on the way in, and the
    // random-weight tiny UNet amplifies a 1e-7 change of the start ~10× (tolerance 1e-5).
    const scale = getProfile(profile).startScale(t2i.sigmas[0], getProfile(profile).schedule().sigmaMax);
    const shifted = Float32Array.from(noise.toFloat32Array(), (v, i) => v + r.initLatent[i] / scale);
    const same = await txt2img(model, { ...common, noise: Tensor.f32(shape, shifted) });
    const err = maxRelError(r.latents, same.latents);
    console.log(`  ${profile} ${sampler}: img2img(strength 1) vs txt2img(noise + init/scale) latent error ${err.toExponential(2)}`);
    assert.ok(err < 1e-5, `${err}`);
  }
  await model.close();
});

refTest('img2img metadata and bad input', async () => {
  const model = await loadTiny('tiny-sd1');
  const tokenizer = await testTokenizer();
  const r = await img2img(model, { image: testPicture(40, 24), prompt: 'p', steps: 2, strength: 0.6, seed: 9, tokenizer, resizeMode: 'crop', width: 32, height: 32 });
  assert.equal(r.images[0].width, 32);
  const f = parseParameters(r.images[0].parameters).fields;
  assert.equal(f['Denoising strength'], '0.6');
  assert.equal(f.Size, '32x32');
  await assert.rejects(img2img(model, { image: '/no/such.png', prompt: 'p', tokenizer }), /^Error: \/no\/such\.png: cannot read image \(no such file\)$/);
  await assert.rejects(img2img(model, { image: testPicture(8, 8), prompt: 'p', strength: -0.1, tokenizer }), /strength must be from 0 to 1, got -0.1/);
  await assert.rejects(img2img(model, { image: Buffer.from('not an image'), prompt: 'p', tokenizer }), /image: cannot read image/);
  await model.close();
});
