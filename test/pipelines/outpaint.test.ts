import { test } from 'node:test';
import assert from 'node:assert/strict';
import { outpaint, padForOutpaint } from '../../src/pipelines/outpaint.js';
import { testPicture } from './img2img-fixtures.js';
import { loadTiny, testTokenizer } from './models.js';
import { refTests, REF, CLIP_DIR } from '../ref.js';

const refTest = refTests('outpainting on tiny-sd1', [REF, CLIP_DIR]);

test('padForOutpaint is ComfyUI ImagePadForOutpaint: grey border, mask 1 there, quadratic feather inside', () => {
  const img = testPicture(16, 16);
  const { image, mask } = padForOutpaint(img, 4, 0, 0, 0, 4);
  assert.deepEqual([image.width, image.height], [20, 16]);
  assert.deepEqual([...image.data.subarray(0, 3)], [128, 128, 128]);
  assert.deepEqual([...image.data.subarray(4 * 3, 4 * 3 + 3)], [...img.data.subarray(0, 3)]);
  // row 8: border 255, then ((4 − d) / 4)² for d = 0…3 from the padded (left) edge, then 0
  const row = [...mask.data.subarray(8 * 20, 8 * 20 + 10)];
  assert.deepEqual(row, [255, 255, 255, 255, 255, 143, 64, 16, 0, 0]);
  // feathering is skipped when 2·feather does not fit (ComfyUI's condition)
  assert.equal(padForOutpaint(img, 4, 0, 0, 0, 8).mask.data[8 * 20 + 4], 0);
});

refTest('outpaint extends the image and keeps the original away from the feathered edge', async () => {
  const model = await loadTiny('tiny-sd1');
  const tokenizer = await testTokenizer();
  const img = testPicture(40, 32);
  const r = await outpaint(model, { image: img, left: 8, bottom: 4, feather: 4, prompt: 'sky', steps: 3, seed: 2, tokenizer });
  const out = r.images[0];
  // 40 + 8 = 48; 32 + 4 = 36 → bottom grown to 8 so the height is 40
  assert.deepEqual([out.width, out.height], [48, 40]);
  let worst = 0;
  for (let y = 0; y < 32 - 4; y++) {
    for (let x = 4; x < 40; x++) {
      for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(out.rgb[(y * 48 + x + 8) * 3 + c] - img.data[(y * 40 + x) * 3 + c]));
    }
  }
  console.log(`  outpaint: worst change of the original away from the feather ${worst}`);
  assert.ok(worst <= 1);
  await model.close();
});
