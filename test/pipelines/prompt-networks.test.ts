import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeSafetensors } from '../../src/formats/safetensors.js';
import { parseParameters } from '../../src/pipelines/parameters.js';
import { txt2img } from '../../src/pipelines/txt2img.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { loadTiny, testTokenizer } from './models.js';

/** A kohya LoRA on one UNet projection of tiny-sd1 (proj_in of the first attention: [64, 64, 1, 1]). */
async function writeLora(path: string): Promise<void> {
  const k = 'lora_unet_down_blocks_1_attentions_0_proj_in';
  const rank = 2;
  const down = Tensor.f32([rank, 64, 1, 1], Float32Array.from({ length: rank * 64 }, (_, i) => Math.sin(i) * 0.3));
  const up = Tensor.f32([64, rank, 1, 1], Float32Array.from({ length: 64 * rank }, (_, i) => Math.cos(i) * 0.3));
  await writeSafetensors(path, { [`${k}.lora_down.weight`]: down, [`${k}.lora_up.weight`]: up, [`${k}.alpha`]: Tensor.f32([], [rank]) });
}

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
