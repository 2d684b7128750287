import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { txt2img } from '../../src/pipelines/txt2img.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { OP, stateDictPickle, torchZipEntries, writeZipFile, type TensorSpec } from '../fixtures/pickle/builders.js';
import { CLIP_DIR, REF, refTests } from '../ref.js';
import { TINY_OPTIONS, loadTiny, testTokenizer } from '../pipelines/models.js';
import { loadCheckpoint } from '../../src/models/checkpoint.js';

const test = refTests('.ckpt loading of tiny-sd1', [REF, CLIP_DIR]);

const STORAGE: Record<string, string> = { f16: 'HalfStorage', f32: 'FloatStorage', i64: 'LongStorage' };

/** tiny-sd1 re-saved as torch.save would write a Lightning checkpoint: {'state_dict': …, 'global_step': 1000} in a zip. */
async function tinyAsCkpt(path: string): Promise<void> {
  const src = await openSafetensors(`${REF}/ckpt/tiny-sd1.safetensors`);
  const entries: [string, TensorSpec][] = [];
  const storages: Record<string, Uint8Array> = {};
  for (const [i, key] of src.keys().entries()) {
    const t = await src.read(key);
    storages[String(i)] = t.bytes().slice();
    entries.push([key, { storage: String(i), type: STORAGE[t.dtype], numel: t.size, shape: t.shape }]);
  }
  await src.close();
  const pkl = stateDictPickle(entries, (w, body) => {
    w.op(OP.EMPTY_DICT).mark().str('state_dict');
    body();
    w.str('global_step').int(1000).op(OP.SETITEMS);
  });
  await writeZipFile(path, torchZipEntries('archive', pkl, storages));
}

test('a .ckpt (PyTorch zip, Lightning state_dict) loads and generates the same image as the .safetensors', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-ckpt-'));
  const ckptPath = join(dir, 'tiny-sd1.ckpt');
  await tinyAsCkpt(ckptPath);
  const fromCkpt = await loadCheckpoint(ckptPath, TINY_OPTIONS['tiny-sd1']);
  const fromSt = await loadTiny('tiny-sd1');
  assert.equal(fromCkpt.family, 'sd1');
  assert.equal(fromCkpt.prediction, 'eps');
  const opts = { prompt: 'a lantern in the fog', width: 64, height: 64, steps: 4, seed: 5, tokenizer: await testTokenizer() };
  const a = await txt2img(fromCkpt, opts);
  const b = await txt2img(fromSt, opts);
  assert.deepEqual(a.latents, b.latents);
  assert.deepEqual(a.images[0].rgb, b.images[0].rgb);
  const ids = new Tensor('i64', [1, 77], BigInt64Array.from({ length: 77 }, (_, i) => BigInt(i === 0 ? 49406 : 49407)));
  assert.deepEqual((await fromCkpt.encodeText(ids)).toFloat32Array(), (await fromSt.encodeText(ids)).toFloat32Array());
  await fromCkpt.close();
  await fromSt.close();
});
