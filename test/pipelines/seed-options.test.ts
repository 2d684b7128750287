import assert from 'node:assert/strict';
import { parseParameters } from '../../src/pipelines/parameters.js';
import { txt2img } from '../../src/pipelines/txt2img.js';
import { loadTiny, testTokenizer } from './models.js';
import { refTests, REF, CLIP_DIR } from '../ref.js';

const test = refTests('A1111 seed options on tiny-sd1', [REF, CLIP_DIR]);

test('A1111 seed options: resize-from, variation seed and ENSD change the image as documented and are recorded', async () => {
  const model = await loadTiny('tiny-sd1');
  const base = { prompt: 'a kite', width: 64, height: 64, steps: 3, seed: 99, sampler: 'Euler a', tokenizer: await testTokenizer() } as const;
  const plain = await txt2img(model, base);
  const sameSize = await txt2img(model, { ...base, seedResizeFrom: { width: 64, height: 64 } });
  assert.deepEqual(sameSize.latents, plain.latents, 'resizing from the same size is a no-op');
  const resized = await txt2img(model, { ...base, seedResizeFrom: { width: 128, height: 96 } });
  assert.notDeepEqual(resized.latents, plain.latents);
  assert.equal(parseParameters(resized.images[0].parameters).fields['Seed resize from'], '128x96');
  const varied = await txt2img(model, { ...base, variationSeed: 5, variationStrength: 0.3 });
  assert.notDeepEqual(varied.latents, plain.latents);
  const f = parseParameters(varied.images[0].parameters).fields;
  assert.equal(f['Variation seed'], '5');
  assert.equal(f['Variation seed strength'], '0.3');
  const full = await txt2img(model, { ...base, variationSeed: 5, variationStrength: 1 });
  const other = await txt2img(model, { ...base, seed: 5 });
  // strength 1 draws the first noise from the variation seed; the ancestral steps still follow the seed
  assert.notDeepEqual(full.latents, plain.latents);
  assert.notDeepEqual(other.latents, plain.latents);
  const ensd = await txt2img(model, { ...base, etaNoiseSeedDelta: 31337 });
  assert.notDeepEqual(ensd.latents, plain.latents, 'ENSD reseeds the ancestral noise');
  assert.equal(parseParameters(ensd.images[0].parameters).fields.ENSD, '31337');
  await model.close();
});
