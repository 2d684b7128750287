// `NAME.yaml` beside a checkpoint (A1111's convention, ComfyUI's CheckpointLoader config) supplies
// what the weights cannot say: the UNet's heads or head width and the prediction type.
import assert from 'node:assert/strict';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCheckpoint } from '../../src/models/checkpoint.js';
import { readLdmConfig } from '../../src/models/ldm-config.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { REF, refTests } from '../ref.js';

const SD1 = join(REF, 'ckpt', 'tiny-sd1.safetensors');
const refTest = refTests('LDM config beside a checkpoint on tiny-sd1');

const CONFIG = (heads: string, extra = '') => `model:
  target: ldm.models.diffusion.ddpm.LatentDiffusion
  params:
${extra}    unet_config:
      target: ldm.modules.diffusionmodules.openaimodel.UNetModel
      params:
${heads}
`;

refTest('an LDM config beside the checkpoint sets the UNet heads exactly as --unet-heads does', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lk-yaml-'));
  symlinkSync(SD1, join(dir, 'custom.safetensors'));
  writeFileSync(join(dir, 'custom.yaml'), CONFIG('        num_heads: 2'));
  const byFile = await loadCheckpoint(join(dir, 'custom.safetensors'), { textHeads: 2 });
  const byFlag = await loadCheckpoint(SD1, { unetHeads: 2, textHeads: 2 });
  const plain = await loadCheckpoint(join(dir, 'custom.safetensors'), { textHeads: 2, unetHeads: 4 });
  assert.deepEqual(byFile.parts.unet.heads, { count: 2 });
  const [x, t, c] = [Tensor.f32([1, 4, 8, 8], Float32Array.from({ length: 256 }, (_, i) => Math.sin(i))), Tensor.f32([1], [500]),
    Tensor.f32([1, 77, byFile.parts.unet.contextDim], Float32Array.from({ length: 77 * byFile.parts.unet.contextDim }, (_, i) => Math.cos(i) * 0.1))];
  const a = (await byFile.predict(x, t, c)).toFloat32Array();
  const b = (await byFlag.predict(x, t, c)).toFloat32Array();
  assert.deepEqual(a, b, 'the same UNet output as --unet-heads 2');
  assert.deepEqual(plain.parts.unet.heads, { count: 4 }, 'an explicit option wins over the file');
  await Promise.all([byFile.close(), byFlag.close(), plain.close()]);
});

test('head width and v-prediction are read; a file that is not an LDM config is named', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'lk-yaml-'));
  writeFileSync(join(dir, 'v.yaml'), CONFIG('        num_heads: -1\n        num_head_channels: 64', '    parameterization: "v"\n'));
  assert.deepEqual(await readLdmConfig(join(dir, 'v.yaml')), { unetHeadWidth: 64, prediction: 'v' });
  writeFileSync(join(dir, 'bad.yaml'), 'just: [text');
  await assert.rejects(readLdmConfig(join(dir, 'bad.yaml')), /bad\.yaml: not a readable YAML file/);
  writeFileSync(join(dir, 'other.yaml'), 'foo: 1\n');
  await assert.rejects(readLdmConfig(join(dir, 'other.yaml')), /other\.yaml: not an LDM inference config/);
});
