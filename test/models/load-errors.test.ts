import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSafetensors, writeSafetensors } from '../../src/formats/safetensors.js';
import { loadCheckpoint } from '../../src/models/checkpoint.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { REF, refTests } from '../ref.js';
import { TINY_OPTIONS } from '../pipelines/models.js';

const test = refTests('load errors on the tiny checkpoints');

const dir = await mkdtemp(join(tmpdir(), 'lk-load-'));

/** A copy of tiny-sd1 with some tensors dropped or replaced. */
async function variant(name: string, edit: (tensors: Map<string, Tensor>) => void): Promise<string> {
  const src = await openSafetensors(`${REF}/ckpt/tiny-sd1.safetensors`);
  const tensors = new Map<string, Tensor>();
  for (const k of src.keys()) tensors.set(k, await src.read(k));
  await src.close();
  edit(tensors);
  const path = join(dir, name);
  await writeSafetensors(path, tensors);
  return path;
}

test('a file that is not a checkpoint: one clear error naming the file', async () => {
  const junk = join(dir, 'notes.ckpt');
  await writeFile(junk, 'these are not weights');
  await assert.rejects(loadCheckpoint(junk), new RegExp(`^Error: ${junk}: not a checkpoint`));
  await assert.rejects(loadCheckpoint(`${REF}/out/tiny-sd1/unet.safetensors`), /unet\.safetensors: not a Stable Diffusion checkpoint/);
  await assert.rejects(loadCheckpoint(join(dir, 'missing.safetensors')), /missing\.safetensors: no such file/);
  const lora = join(dir, 'lora.safetensors');
  await writeSafetensors(lora, { 'lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight': Tensor.f32([4, 32]) });
  await assert.rejects(loadCheckpoint(lora), /lora\.safetensors: this is a LoRA, not a checkpoint/);
});

test('a checkpoint with a missing or misshapen tensor names the key, the shapes and the file', async () => {
  const key = 'model.diffusion_model.middle_block.1.transformer_blocks.0.attn2.to_k.weight';
  const missing = await variant('missing.safetensors', (t) => t.delete(key));
  await assert.rejects(loadCheckpoint(missing, TINY_OPTIONS['tiny-sd1']), (err: Error) => {
    assert.match(err.message, new RegExp(`missing weight '${key.replace(/\./g, '\\.')}'`));
    assert.ok(err.message.includes(missing), err.message);
    return true;
  });
  const vaeKey = 'first_stage_model.decoder.mid.block_1.conv1.weight';
  const wrong = await variant('wrong.safetensors', (t) => t.set(vaeKey, Tensor.f32([64, 64, 1, 1])));
  await assert.rejects(loadCheckpoint(wrong, TINY_OPTIONS['tiny-sd1']), /weight 'first_stage_model\.decoder\.mid\.block_1\.conv1\.weight' has shape \[64, 64, 1, 1\] but the model expects/);
});

test('an unsupported family (Flux, SD3) is named', async () => {
  const strip = (t: Map<string, Tensor>) => { for (const k of [...t.keys()]) if (k.startsWith('model.diffusion_model.')) t.delete(k); };
  const flux = await variant('flux.safetensors', (t) => { strip(t); t.set('model.diffusion_model.double_blocks.0.img_attn.norm.key_norm.scale', Tensor.f32([8])); });
  await assert.rejects(loadCheckpoint(flux, TINY_OPTIONS['tiny-sd1']), /flux\.safetensors: a Flux checkpoint; Flux is not supported yet/);
  const sd3 = await variant('sd3.safetensors', (t) => { strip(t); t.set('model.diffusion_model.joint_blocks.0.x_block.attn.qkv.weight', Tensor.f32([8, 8])); });
  await assert.rejects(loadCheckpoint(sd3, TINY_OPTIONS['tiny-sd1']), /sd3\.safetensors: an SD3 checkpoint; SD3 is not supported yet/);
});

test('SD2 prediction type: metadata, then the output norm-bias spread (ComfyUI heuristic), then v', async () => {
  const key = 'model.diffusion_model.output_blocks.11.1.transformer_blocks.0.norm1.bias';
  const sd2 = async (name: string, edit: (t: Map<string, Tensor>) => void, metadata?: Record<string, string>) => {
    const src = await openSafetensors(`${REF}/ckpt/tiny-sd2.safetensors`);
    const tensors = new Map<string, Tensor>();
    for (const k of src.keys()) tensors.set(k, await src.read(k));
    await src.close();
    edit(tensors);
    const path = join(dir, name);
    await writeSafetensors(path, tensors, metadata);
    return loadCheckpoint(path, TINY_OPTIONS['tiny-sd2']);
  };
  // Only the prediction is read here; the extra key does not belong to the tiny UNet's graph.
  const flat = Tensor.f32([64], Float32Array.from({ length: 64 }, (_, i) => (i % 2 ? 0.01 : -0.01)));
  const spread = Tensor.f32([64], Float32Array.from({ length: 64 }, (_, i) => (i % 2 ? 0.2 : -0.2)));
  const plain = await sd2('sd2-plain.safetensors', () => {});
  assert.equal(plain.prediction, 'v');
  const eps = await sd2('sd2-eps.safetensors', (t) => t.set(key, flat));
  assert.equal(eps.prediction, 'eps');
  const v = await sd2('sd2-v.safetensors', (t) => t.set(key, spread));
  assert.equal(v.prediction, 'v');
  const meta = await sd2('sd2-meta.safetensors', (t) => t.set(key, spread), { 'modelspec.prediction_type': 'epsilon' });
  assert.equal(meta.prediction, 'eps');
  await Promise.all([plain.close(), eps.close(), v.close(), meta.close()]);
});
