import assert from 'node:assert/strict';
import { MemoryWeights } from '../../src/graph/weights.js';
import { TinyAutoencoder } from '../../src/models/taesd.js';
import { latentRgbPreviewer, previewPng, taesdPreviewer, withPreview, type PreviewImage } from '../../src/pipelines/preview.js';
import type { Progress } from '../../src/pipelines/sample.js';
import { txt2img } from '../../src/pipelines/txt2img.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as R from '../graph/reference.js';
import { loadTiny, testTokenizer } from './models.js';
import { refTests, REF, CLIP_DIR } from '../ref.js';

const test = refTests('previews on tiny-sd1', [REF, CLIP_DIR]);

/** A TAESD decoder with the real key layout (taesd_decoder.pth) and random weights, width 8. */
function tinyTaesd(): TinyAutoencoder {
  const plan = ['clamp', 'conv4', 'relu', 'block', 'block', 'block', 'up', 'convnb', 'block', 'block', 'block', 'up', 'convnb', 'block', 'block', 'block', 'up', 'convnb', 'block', 'conv3'];
  const w: Record<string, Tensor> = {};
  let seed = 1;
  const conv = (name: string, o: number, i: number, bias: boolean) => {
    w[`${name}.weight`] = Tensor.f32([o, i, 3, 3], Float32Array.from(R.random([o, i, 3, 3], seed++, 0.3).data));
    if (bias) w[`${name}.bias`] = Tensor.f32([o], Float32Array.from(R.random([o], seed++, 0.1).data).map((v) => v + 0.5));
  };
  plan.forEach((m, i) => {
    if (m === 'conv4') conv(`${i}`, 8, 4, true);
    else if (m === 'convnb') conv(`${i}`, 8, 8, false);
    else if (m === 'conv3') conv(`${i}`, 3, 8, true);
    else if (m === 'block') for (const j of [0, 2, 4]) conv(`${i}.conv.${j}`, 8, 8, true);
  });
  return TinyAutoencoder.fromWeights('taesd_decoder.safetensors', Object.keys(w), new MemoryWeights(w));
}

test('txt2img delivers a preview every N steps (latent2rgb and TAESD) without changing the image', async () => {
  const model = await loadTiny('tiny-sd1');
  const tokenizer = await testTokenizer();
  const taesd = tinyTaesd();
  try {
    const base = { prompt: 'a red fox', width: 64, height: 48, steps: 5, seed: 3, sampler: 'euler', tokenizer };
    const plain = await txt2img(model, base);
    const cheap: PreviewImage[] = [];
    const steps: number[] = [];
    const withCheap = await txt2img(model, {
      ...base,
      onProgress: withPreview({ every: 2, decoder: latentRgbPreviewer(), onPreview: (p) => { cheap.push(p); }, onProgress: (p: Progress) => { steps.push(p.step); } }),
    });
    assert.deepEqual(steps, [1, 2, 3, 4, 5]);
    assert.deepEqual(cheap.map((p) => p.step), [2, 4, 5]); // every 2nd step and always the last
    assert.deepEqual([cheap[0].width, cheap[0].height, cheap[0].rgb.length], [8, 6, 8 * 6 * 3]);
    assert.deepEqual(withCheap.latents, plain.latents);

    const full: PreviewImage[] = [];
    const withTaesd = await txt2img(model, { ...base, batchSize: 2, onProgress: withPreview({ every: 3, decoder: taesdPreviewer(taesd), onPreview: (p) => { full.push(p); } }) });
    assert.deepEqual(full.map((p) => [p.step, p.index, p.width, p.height]), [[3, 0, 64, 48], [5, 0, 64, 48]]);
    assert.ok(full[1].rgb.some((v) => v !== full[1].rgb[0]), 'the preview is not flat');
    const png = await previewPng(full[1]);
    assert.equal(png.subarray(1, 4).toString(), 'PNG');
    assert.equal(withTaesd.images.length, 2);
    assert.throws(() => withPreview({ every: 0, decoder: latentRgbPreviewer(), onPreview: () => {} }), /positive integer/);
  } finally {
    await taesd.close();
    await model.close();
  }
});
