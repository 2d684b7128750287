import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryWeights } from '../../src/graph/weights.js';
import { rgbToTensor, sdUpscale, tensorToRgb, upscaleImage, UpscalerModel, type RgbImage } from '../../src/pipelines/upscale.js';
import { srvggWeights, toTensors } from '../models/esrgan-fixtures.js';
import { refTests, REF, CLIP_DIR } from '../ref.js';

const refTest = refTests('SD upscale on tiny-sd1', [REF, CLIP_DIR]);

function image(w: number, h: number): RgbImage {
  const rgb = new Uint8Array(w * h * 3);
  for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 37 + (i >> 5) * 11) & 255;
  return { width: w, height: h, rgb };
}

test('resampling upscalers: nearest duplicates pixels exactly, Lanczos hits the rounded size; bad scales are refused', async () => {
  const img = image(7, 5);
  const n = await upscaleImage(img, { scale: 2, upscaler: 'nearest' });
  assert.deepEqual([n.width, n.height], [14, 10]);
  for (let y = 0; y < 10; y++) for (let x = 0; x < 14; x++) for (let c = 0; c < 3; c++) {
    assert.equal(n.rgb[(y * 14 + x) * 3 + c], img.rgb[((y >> 1) * 7 + (x >> 1)) * 3 + c]);
  }
  const l = await upscaleImage(img, { scale: 1.5, upscaler: 'lanczos' });
  assert.deepEqual([l.width, l.height], [11, 8]);
  await assert.rejects(upscaleImage(img, { scale: 0, upscaler: 'lanczos' }), /scale must be a number above 0/);
  await assert.rejects(upscaleImage(img, { scale: 2, upscaler: 'bicubic' as 'lanczos' }), /unknown upscaler 'bicubic'/);
  assert.deepEqual(tensorToRgb(rgbToTensor(img)), img);
});

test('model upscalers: passes until the target is reached (at most 3), then Lanczos to the exact size; tiles reported', async () => {
  const w = srvggWeights({ nf: 4, convs: 1, scale: 2, seed: 9 });
  const mem = new MemoryWeights(toTensors(w));
  const model = await UpscalerModel.fromWeights('2x.pth', Object.keys(w), mem);
  try {
    const img = image(20, 12);
    let tiles = 0;
    let calls = 0;
    const out = await upscaleImage(img, { scale: 3, upscaler: model, tile: 16, overlap: 4, onTile: (d, t) => { calls++; tiles = t; } });
    assert.deepEqual([out.width, out.height], [60, 36]);
    // pass 1 on 20×12 (2 tiles), pass 2 on 40×24 (3×2 tiles)
    assert.equal(calls, 2 + 6);
    assert.equal(tiles, 6);
    const same = await upscaleImage(img, { scale: 2, upscaler: model, tile: 0 });
    const direct = tensorToRgb(await model.run(rgbToTensor(img)));
    assert.deepEqual(same, direct);
  } finally {
    await model.close();
  }
});

refTest('SD upscale: upscale, img2img every tile of an overlapping grid at one seed, blend; A1111 metadata', async () => {
  const { loadTiny, testTokenizer } = await import('./models.js');
  const model = await loadTiny('tiny-sd1');
  try {
    const img = image(50, 36);
    const opts = { prompt: 'a castle', image: img, scale: 2, upscaler: 'lanczos' as const, tileSize: 64, tileOverlap: 16, steps: 2, strength: 0.3, seed: 5, tokenizer: await testTokenizer() };
    const r = await sdUpscale(model, opts);
    assert.deepEqual([r.width, r.height, r.rgb.length], [100, 72, 100 * 72 * 3]);
    assert.equal(r.tiles, 4); // 104×72 padded: 2 columns × 2 rows of 64 with ≥16 overlap
    assert.match(r.parameters, /Denoising strength: 0\.3/);
    assert.match(r.parameters, /Size: 64x64/);
    assert.match(r.parameters, /, SD upscale overlap: 16, SD upscale upscaler: Lanczos$/);
    const again = await sdUpscale(model, opts);
    assert.deepEqual(again.rgb, r.rgb, 'same seed, same image');
    await assert.rejects(sdUpscale(model, { ...opts, tileSize: 60 }), /tile size must be a multiple of 8/);
  } finally {
    await model.close();
  }
});
