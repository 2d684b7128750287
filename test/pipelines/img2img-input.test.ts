import { test } from 'node:test';
import assert from 'node:assert/strict';
import sharp from 'sharp';
import { loadMask, loadRgb, resizeImage } from '../../src/pipelines/image-input.js';
import { blurMask, cropRegion, expandCropRegion, fillMasked, invertMask, pilResizeMask } from '../../src/pipelines/masks.js';
import { rectMask, testPicture } from './img2img-fixtures.js';

test('A1111 resize modes: just, crop (centre crop of the covering resize), fill (edge rows stretched over the bars)', async () => {
  const img = testPicture(40, 20);
  const just = await resizeImage(img, 16, 16, 'just');
  assert.deepEqual([just.width, just.height], [16, 16]);
  const crop = await resizeImage(img, 16, 16, 'crop');
  assert.deepEqual([crop.width, crop.height], [16, 16]);
  // fill: a 40×20 image fitted into 16×16 is 16×8, pasted at y = 4; rows 0–3 copy its top row, 12–15 its bottom row
  const fill = await resizeImage(img, 16, 16, 'fill');
  const row = (im: typeof fill, y: number) => [...im.data.subarray(y * 16 * 3, (y + 1) * 16 * 3)];
  for (let y = 0; y < 4; y++) assert.deepEqual(row(fill, y), row(fill, 4));
  for (let y = 12; y < 16; y++) assert.deepEqual(row(fill, y), row(fill, 11));
});

test('masks: alpha masks threshold at 128, grey masks stay grey; blur, invert, crop region', async () => {
  const rgba = Buffer.alloc(4 * 4 * 4);
  for (let i = 0; i < 16; i++) rgba.writeUInt8(i < 8 ? 200 : 100, i * 4 + 3);
  const alpha = await loadMask(await sharp(rgba, { raw: { width: 4, height: 4, channels: 4 } }).png().toBuffer());
  assert.deepEqual([...alpha.data], [...new Array(8).fill(255), ...new Array(8).fill(0)]);
  const grey = await loadMask(await sharp(Buffer.alloc(16, 77), { raw: { width: 4, height: 4, channels: 1 } }).png().toBuffer());
  assert.ok(grey.data.every((v) => v === 77));
  assert.deepEqual([...invertMask(grey).data.subarray(0, 2)], [178, 178]);
  assert.ok((await loadRgb(testPicture(8, 8))).data.length === 8 * 8 * 3);

  const m = rectMask(32, 32, 10, 12, 14, 20);
  const b = blurMask(m, 2);
  // kernel 2·⌊2.5·2 + 0.5⌋ + 1 = 11 taps: reaches 5 px, symmetric about the rectangle
  assert.deepEqual(cropRegion(b, 0), [5, 7, 19, 25]);
  assert.equal(b.data[16 * 32 + 11], b.data[16 * 32 + 12]);
  assert.ok(b.data[16 * 32 + 12] < 255 && b.data[16 * 32 + 12] > 128);
  assert.deepEqual(cropRegion(m, 3), [7, 9, 17, 23]);
  // expand_crop_region: a 4×8 region grown to the 1:1 processing ratio, then shifted back inside
  assert.deepEqual(expandCropRegion([10, 12, 14, 20], 64, 64, 32, 32), [8, 12, 16, 20]);
  assert.deepEqual(expandCropRegion([0, 0, 4, 8], 64, 64, 32, 32), [0, 0, 8, 8]);
  assert.deepEqual(expandCropRegion([0, 28, 32, 32], 64, 64, 32, 32), [0, 0, 32, 32]);
  // PIL's bicubic shrink (support stretched ×8) bleeds a little; A1111's mask_round makes it a block again
  const lm = pilResizeMask(rectMask(32, 32, 8, 8, 24, 24), 4, 4);
  assert.deepEqual([...lm], [2, 20, 20, 2, 20, 216, 216, 20, 20, 216, 216, 20, 2, 20, 20, 2]);
  assert.deepEqual([...lm].map((v) => Math.round(v / 255)), [0, 0, 0, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
});

test('"fill" masked content keeps unmasked pixels and bleeds their colours into the mask', () => {
  const img = testPicture(32, 32);
  const m = rectMask(32, 32, 8, 8, 24, 24);
  const f = fillMasked(img, m);
  for (let i = 0; i < 32 * 32; i++) if (!m.data[i]) for (let c = 0; c < 3; c++) assert.ok(Math.abs(f.data[i * 3 + c] - img.data[i * 3 + c]) <= 1);
  // the centre takes a blend of the surrounding colours, not black
  const centre = (16 * 32 + 16) * 3;
  assert.ok(f.data[centre] > 60 && f.data[centre] < 200 && f.data[centre + 1] > 60 && f.data[centre + 1] < 200, `${f.data.subarray(centre, centre + 3)}`);
});
