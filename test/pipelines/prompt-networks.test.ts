import assert from 'node:assert/strict';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseParameters } from '../../src/pipelines/parameters.js';
import { txt2img } from '../../src/pipelines/txt2img.js';
import { loadTiny, testTokenizer, writeTinyLora as writeLora } from './models.js';
import { refTests, REF, CLIP_DIR } from '../ref.js';

const test = refTests('prompt <lora:> tags on tiny-sd1', [REF, CLIP_DIR]);

test('<lora:name:w> in the prompt applies the file found in the LoRA folders, as the loras option does', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-loras-'));
  await mkdir(join(dir, 'styles'));
  await writeLora(join(dir, 'styles', 'paperfold.safetensors'));
  const model = await loadTiny('tiny-sd1');
  const base = { width: 64, height: 64, steps: 3, seed: 11, tokenizer: await testTokenizer() };
  const plain = await txt2img(model, { ...base, prompt: 'a paper crane' });
  const viaOption = await txt2img(model, { ...base, prompt: 'a paper crane', loras: [{ path: join(dir, 'styles', 'paperfold.safetensors'), weight: 0.8 }] });
  const viaPrompt = await txt2img(model, { ...base, prompt: 'a paper crane <lora:paperfold:0.8>', loraDirs: [dir] });
  assert.notDeepEqual(viaOption.latents, plain.latents, 'the LoRA changes the image');
  assert.deepEqual(viaPrompt.latents, viaOption.latents, 'the tag applies the same patch as the option');
  const fields = parseParameters(viaPrompt.images[0].parameters);
  assert.equal(fields.prompt, 'a paper crane <lora:paperfold:0.8>', 'the infotext keeps the tag as A1111 does');
  assert.match(fields.fields['Lora hashes'], /^paperfold: [0-9a-f]{12}$/);
  const missing = await txt2img(model, { ...base, prompt: 'a paper crane <lora:nowhere:1>', loraDirs: [dir] });
  assert.deepEqual(missing.latents, plain.latents, 'an unknown LoRA leaves the model as it is');
  assert.match((missing.warnings ?? []).join('\n'), /LoRA 'nowhere' named in the prompt was not found/);
  await model.close();
});
