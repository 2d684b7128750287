import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inpaint } from '../../src/pipelines/inpaint.js';
import { denoiseLatents, withConcat } from '../../src/pipelines/img2img.js';
import { parseParameters } from '../../src/pipelines/parameters.js';
import { blurReach } from '../../src/pipelines/masks.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { loadTinyInpaint, makeTinyInpaintCheckpoint, rectMask, testPicture, worstDiff } from './img2img-fixtures.js';
import { loadTiny, testTokenizer } from './models.js';
import { refTests, REF, CLIP_DIR } from '../ref.js';

const refTest = refTests('inpainting on tiny-sd1', [REF, CLIP_DIR]);

const W = 64;
const H = 64;
const image = testPicture(W, H);
const mask = rectMask(W, H, 20, 16, 44, 40);
const inside = (m: { data: Uint8Array }) => (i: number) => m.data[i] !== 0;
/** Pixels further than `d` (Chebyshev) from every masked pixel. */
function farFrom(m: { width: number; height: number; data: Uint8Array }, d: number) {
  return (i: number) => {
    const x = i % m.width;
    const y = Math.floor(i / m.width);
    for (let yy = Math.max(0, y - d); yy <= Math.min(m.height - 1, y + d); yy++) {
      for (let xx = Math.max(0, x - d); xx <= Math.min(m.width - 1, x + d); xx++) if (m.data[yy * m.width + xx]) return false;
    }
    return true;
  };
}

refTest('pixels outside the unblurred mask are unchanged after paste-back (every area / content / profile)', async () => {
  const model = await loadTiny('tiny-sd1');
  const tokenizer = await testTokenizer();
  const cases = [
    { inpaintArea: 'whole', maskedContent: 'original', profile: 'a1111' },
    { inpaintArea: 'whole', maskedContent: 'fill', profile: 'comfy' },
    { inpaintArea: 'masked', maskedContent: 'latent-noise', profile: 'a1111', onlyMaskedPadding: 4 },
    { inpaintArea: 'masked', maskedContent: 'latent-nothing', profile: 'comfy', onlyMaskedPadding: 0 },
  ] as const;
  for (const c of cases) {
    const r = await inpaint(model, { image, mask, prompt: 'a red fox', steps: 3, strength: 0.9, seed: 4, tokenizer, maskBlur: 0, ...c });
    const out = r.images[0];
    assert.equal(out.width, W);
    const outside = worstDiff(out.rgb, image.data, (i) => !inside(mask)(i));
    const within = worstDiff(out.rgb, image.data, inside(mask));
    console.log(`  ${c.inpaintArea}/${c.maskedContent}/${c.profile}: worst change outside the mask ${outside}, inside ${within}`);
    assert.ok(outside <= 1, `${JSON.stringify(c)}: outside changed by ${outside}`);
    assert.ok(within > 10, 'the masked area was repainted');
  }
  await model.close();
});

refTest('with mask blur, pixels beyond the blur\'s reach are unchanged and the metadata says how', async () => {
  const model = await loadTiny('tiny-sd1');
  const tokenizer = await testTokenizer();
  for (const inpaintArea of ['whole', 'masked'] as const) {
    const r = await inpaint(model, { image, mask, prompt: 'a red fox', steps: 3, strength: 0.75, seed: 8, tokenizer, maskBlur: 3, inpaintArea, onlyMaskedPadding: 8 });
    const reach = blurReach(3);
    const worst = worstDiff(r.images[0].rgb, image.data, farFrom(mask, reach));
    console.log(`  ${inpaintArea}, blur 3: worst change further than ${reach} px from the mask ${worst}`);
    assert.ok(worst <= 1);
    const f = parseParameters(r.images[0].parameters).fields;
    assert.equal(f['Mask blur'], '3');
    assert.equal(f['Denoising strength'], '0.75');
    if (inpaintArea === 'masked') {
      assert.equal(f['Inpaint area'], 'Only masked');
      assert.equal(f['Masked area padding'], '8');
      assert.deepEqual(r.cropRegion, [4, 0, 60, 56]);
    }
  }
  // inpaint not masked: the inverted mask keeps the rectangle
  const inv = await inpaint(model, { image, mask, invertMask: true, prompt: 'x', steps: 2, strength: 0.8, seed: 1, tokenizer, maskBlur: 0 });
  assert.ok(worstDiff(inv.images[0].rgb, image.data, inside(mask)) <= 1);
  assert.equal(parseParameters(inv.images[0].parameters).fields['Mask mode'], 'Inpaint not masked');
  await model.close();
});

refTest('latent blending keeps the init latent outside the latent mask; latent noise / nothing replace it inside', async () => {
  const model = await loadTiny('tiny-sd1');
  const tokenizer = await testTokenizer();
  const plane = 8 * 8;
  const lmask = Float64Array.from({ length: plane }, (_, i) => (i % 8 >= 2 && i % 8 < 6 && i >= 16 && i < 48 ? 1 : 0));
  const init = Float64Array.from({ length: 4 * plane }, (_, i) => Math.sin(i));
  const opts = { prompt: 'x', steps: 4, seed: 2, tokenizer, cfgScale: 3 };
  const r = await denoiseLatents({ model, opts, width: 64, height: 64, strength: 0.7, init, latentMask: lmask });
  for (let i = 0; i < init.length; i++) if (!lmask[i % plane]) assert.equal(r.latents[i], init[i]);
  const nothing = await denoiseLatents({ model, opts, width: 64, height: 64, strength: 0, init, latentMask: lmask, latentFill: 'nothing' });
  const noise = await denoiseLatents({ model, opts, width: 64, height: 64, strength: 0, init, latentMask: lmask, latentFill: 'noise', });
  const n = Tensor.f32([1, 4, 8, 8]);
  const withNoise = await denoiseLatents({ model, opts: { ...opts, noise: n }, width: 64, height: 64, strength: 0, init, latentMask: lmask, latentFill: 'noise' });
  for (let i = 0; i < init.length; i++) {
    const m = lmask[i % plane];
    assert.equal(nothing.latents[i], m ? 0 : init[i]);
    assert.equal(withNoise.latents[i], m ? 0 : init[i]);
    if (!m) assert.equal(noise.latents[i], init[i]);
  }
  await model.close();
});

test('the 9-channel UNet gets [x, mask, masked-image latent] in that order', async () => {
  const B = 1;
  const shape = [B, 4, 2, 2] as const;
  const concat = Float32Array.from({ length: 5 * 4 }, (_, i) => 100 + i);
  let seen: Float32Array | undefined;
  const fake = { prediction: 'eps' as const, predict: async (x: Tensor) => { seen = Float32Array.from(x.toFloat32Array()); assert.deepEqual(x.shape, [2, 9, 2, 2]); return Tensor.f32([2, 4, 2, 2]); } };
  const x = Tensor.f32([2, 4, 2, 2], Float32Array.from({ length: 32 }, (_, i) => i));
  await withConcat(fake, concat, shape).predict(x, Tensor.f32([2]), Tensor.f32([2, 1, 1]));
  // cond and uncond copies each get x's own 4 channels, then the mask (100…103), then the latent (104…119)
  for (const b of [0, 1]) {
    assert.deepEqual([...seen!.subarray(b * 36, b * 36 + 16)], [...x.toFloat32Array().subarray(b * 16, b * 16 + 16)]);
    assert.deepEqual([...seen!.subarray(b * 36 + 16, b * 36 + 36)], [...concat]);
  }
});

refTest('an inpainting checkpoint (9 input channels, made here from tiny-sd1) is detected and inpaints', async () => {
  const path = await makeTinyInpaintCheckpoint();
  const model = await loadTinyInpaint(path);
  const tokenizer = await testTokenizer();
  assert.equal(model.concatChannels, 5);
  assert.equal(model.latentChannels, 4);
  const channels: number[] = [];
  const predict = model.predict.bind(model);
  model.predict = async (x, t, c) => { channels.push(x.shape[1]); return predict(x, t, c); };
  for (const c of [{ profile: 'a1111', inpaintArea: 'whole' }, { profile: 'comfy', inpaintArea: 'masked' }] as const) {
    channels.length = 0;
    const r = await inpaint(model, { image, mask, prompt: 'a red fox', steps: 3, strength: 1, seed: 6, tokenizer, maskBlur: 0, ...c });
    assert.ok(channels.length === 3 && channels.every((n) => n === 9), `UNet inputs ${channels}`);
    const outside = worstDiff(r.images[0].rgb, image.data, (i) => !inside(mask)(i));
    console.log(`  9-channel ${c.profile}/${c.inpaintArea}: worst change outside the mask ${outside}`);
    assert.ok(outside <= 1);
    assert.equal(parseParameters(r.images[0].parameters).fields['Conditional mask weight'], '1');
  }
  await model.close();
});

refTest('bad inpainting input ends in one clear error', async () => {
  const model = await loadTiny('tiny-sd1');
  const tokenizer = await testTokenizer();
  await assert.rejects(inpaint(model, { image, mask: rectMask(32, 32, 0, 0, 8, 8), prompt: 'x', tokenizer }), /mask: the mask is 32x32 but the image is 64x64/);
  await assert.rejects(inpaint(model, { image, mask: rectMask(W, H, 0, 0, 0, 0), prompt: 'x', tokenizer }), /the mask is empty/);
  await assert.rejects(inpaint(model, { image, mask, prompt: 'x', tokenizer, strength: 2 }), /strength must be from 0 to 1, got 2/);
  await assert.rejects(inpaint(model, { image, mask, prompt: 'x', tokenizer, maskedContent: 'blue' as never }), /masked content must be one of original, fill, latent-noise, latent-nothing/);
  await model.close();
});
