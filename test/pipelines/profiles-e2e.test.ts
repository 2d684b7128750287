import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { txt2img } from '../../src/pipelines/txt2img.js';
import { CLIP_DIR, HAS_REF, maxRelError, REF, refTests } from '../ref.js';
import { loadTiny, testTokenizer, type TinyName } from './models.js';

const test = refTests('a1111 / comfy profiles end to end against the reference', [REF, CLIP_DIR]);

interface E2ECase {
  id: string; dir: string; profile: 'a1111' | 'comfy'; model: TinyName; sampler: string; scheduler: string;
  prompt: string; negative: string; width: number; height: number; steps: number; cfg: number; seed: number; batch_size: number;
}

const index = HAS_REF ? JSON.parse(await readFile(`${REF}/e2e/cases.json`, 'utf8')) as { cases: E2ECase[] } : { cases: [] };

// Seeds only (no injected noise): the profile must reproduce the tool's noise, schedule and sampler.
for (const c of index.cases) {
  test(`e2e ${c.id}: ${c.profile} profile reproduces the tool's latent (1e-3) and image (±2 on 99%)`, async () => {
    const model = await loadTiny(c.model);
    const ref = await openSafetensors(`${REF}/e2e/${c.dir}/tensors.safetensors`);
    const r = await txt2img(model, {
      prompt: c.prompt, negativePrompt: c.negative, width: c.width, height: c.height, steps: c.steps, cfgScale: c.cfg,
      sampler: c.sampler, scheduler: c.scheduler, seed: c.seed, batchSize: c.batch_size, profile: c.profile,
      tokenizer: await testTokenizer(),
    });
    const lat = maxRelError(r.latents, (await ref.read('final_latent')).toFloat32Array());
    const want = (await ref.read('image_u8')).data as Uint8Array;
    const got = new Uint8Array(want.length);
    r.images.forEach((im, i) => got.set(im.rgb, i * im.rgb.length));
    let within = 0;
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(got[i] - want[i]);
      if (d <= 2) within++;
      worst = Math.max(worst, d);
    }
    console.log(`  ${c.id}: final latent ${lat.toExponential(2)}, pixels within ±2 ${(100 * within / want.length).toFixed(2)}% (worst ${worst})`);
    assert.ok(lat < 1e-3, `latent error ${lat}`);
    assert.ok(within / want.length >= 0.99);
    await ref.close();
    await model.close();
  });
}
