import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readPngText } from '../../src/formats/png-text.js';
import { modelFolders, resolveModel } from '../../src/models/model-folders.js';
import { parseParameters } from '../../src/pipelines/parameters.js';
import { CLIP_DIR, REF, refTests } from '../ref.js';
import { writeTinyLora } from '../pipelines/models.js';

const test = refTests('CLI models by name from ComfyUI / A1111 installs', [REF, CLIP_DIR]);

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));

test('models are found by name in ComfyUI and A1111 installs', async () => {
  const comfy = await mkdtemp(join(tmpdir(), 'lk-comfy-'));
  await mkdir(join(comfy, 'models/checkpoints/sd15'), { recursive: true });
  await mkdir(join(comfy, 'models/loras'), { recursive: true });
  await copyFile(`${REF}/ckpt/tiny-sd1.safetensors`, join(comfy, 'models/checkpoints/sd15/tiny.safetensors'));
  await writeTinyLora(join(comfy, 'models/loras/paperfold.safetensors'));
  const a1111 = await mkdtemp(join(tmpdir(), 'lk-a1111-'));
  await mkdir(join(a1111, 'models/Stable-diffusion'), { recursive: true });
  await mkdir(join(a1111, 'embeddings'), { recursive: true });
  await copyFile(`${REF}/ckpt/tiny-sd2.safetensors`, join(a1111, 'models/Stable-diffusion/tiny2.safetensors'));

  assert.equal(resolveModel('tiny', [comfy], 'checkpoints'), join(comfy, 'models/checkpoints/sd15/tiny.safetensors'));
  assert.equal(resolveModel('sd15/tiny.safetensors', [comfy], 'checkpoints'), join(comfy, 'models/checkpoints/sd15/tiny.safetensors'));
  assert.equal(resolveModel('tiny2.safetensors', [a1111], 'checkpoints'), join(a1111, 'models/Stable-diffusion/tiny2.safetensors'));
  assert.deepEqual(modelFolders([a1111], 'embeddings'), [join(a1111, 'embeddings')]);
  assert.deepEqual(modelFolders([join(comfy, 'models')], 'loras'), [join(comfy, 'models/loras')]);
  assert.throws(() => resolveModel('nope', [comfy], 'checkpoints'), /^Error: nope: no such file, and no checkpoint of that name in .*models\/checkpoints$/);

  const out = join(comfy, 'out.png');
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry, 'generate', '--models', comfy, '-m', 'tiny', '-p', 'a crane <lora:paperfold:0.7>',
    '--unet-heads', '2', '--text-heads', '2', '-W', '64', '-H', '64', '--steps', '2', '--seed', '3', '-o', out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const fields = parseParameters(readPngText(await readFile(out)).parameters).fields;
  assert.equal(fields.Model, 'tiny');
  assert.match(fields['Lora hashes'], /^paperfold: [0-9a-f]{12}$/);
});
