import assert from 'node:assert/strict';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { txt2img } from '../../src/pipelines/txt2img.js';
import { CLIP_DIR, maxRelError, REF, refTests } from '../ref.js';
import { loadTiny, testTokenizer, type TinyName } from './models.js';

const test = refTests('txt2img parity on the tiny checkpoints', [REF, CLIP_DIR]);

/** Fraction of 8-bit values within ±2 levels, and the largest difference. */
function pixelAgreement(got: Uint8Array, want: Uint8Array): { within2: number; worst: number } {
  let ok = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (d <= 2) ok++;
    worst = Math.max(worst, d);
  }
  return { within2: ok / want.length, worst };
}

for (const name of ['tiny-sd1', 'tiny-sd2'] as const) {
  test(`${name}: end-to-end txt2img from the reference noise (latent 1e-3, pixels ±2 on 99%)`, async () => {
    const model = await loadTiny(name as TinyName);
    const ref = await openSafetensors(`${REF}/out/${name}/txt2img.safetensors`);
    const r = await txt2img(model, {
      prompt: 'a photo of a cat', negativePrompt: '', width: 64, height: 64, steps: 6, cfgScale: 7,
      sampler: 'euler', scheduler: 'normal', profile: 'a1111', seed: 1,
      noise: await ref.read('noise'), tokenizer: await testTokenizer(),
    });
    const sig = maxRelError(r.sigmas, (await ref.read('sigmas')).toFloat32Array());
    const lat = maxRelError(r.latents, (await ref.read('final_latent')).toFloat32Array());
    const px = pixelAgreement(r.images[0].rgb, (await ref.read('image_u8')).data as Uint8Array);
    console.log(`  ${name}: sigmas ${sig.toExponential(2)}, final latent ${lat.toExponential(2)} (tol 1e-3), pixels within ±2: ${(px.within2 * 100).toFixed(2)}% (worst ${px.worst})`);
    assert.ok(sig < 1e-6);
    assert.ok(lat < 1e-3);
    assert.ok(px.within2 >= 0.99);
    await ref.close();
    await model.close();
  });
}
