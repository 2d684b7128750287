// Checkpoint merging, tensor by tensor against the formulas, block weights on the right keys, VAE
// baking, the recipe metadata, and refusals naming the key.
import assert from 'node:assert/strict';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockIndex, mergeCheckpoints } from '../../src/adapters/merge.js';
import { openSafetensors, writeSafetensors } from '../../src/formats/safetensors.js';
import { isFloatDType } from '../../src/tensor/dtype.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { REF, refTests } from '../ref.js';
import { rng } from './fixtures.js';

const test = refTests('checkpoint merging of tiny-sd1');

const A = `${REF}/ckpt/tiny-sd1.safetensors`;

/** tiny-sd1 with every float tensor perturbed: a second "fine-tune" of the same architecture. */
async function variant(path: string, seed: number): Promise<void> {
  const src = await openSafetensors(A);
  const r = rng(seed);
  const out = new Map<string, Tensor>();
  for (const k of src.keys()) {
    const t = await src.read(k);
    if (!isFloatDType(t.dtype)) { out.set(k, t); continue; }
    const v = t.toFloat32Array().map((x) => x + (r() - 0.5) * 0.2);
    out.set(k, Tensor.f32(t.shape, v).to(t.dtype === 'f32' ? 'f32' : 'f16'));
  }
  await src.close();
  await writeSafetensors(path, out);
}

/** Compares every tensor of `out` with `expect(key, a, b, c)` computed here in float64. */
async function check(out: string, files: string[], expect: (key: string, v: number[]) => number): Promise<{ worst: number; n: number }> {
  const o = await openSafetensors(out);
  const ins = await Promise.all(files.map((f) => openSafetensors(f)));
  let worst = 0;
  let n = 0;
  try {
    assert.deepEqual(o.keys().sort(), ins[0].keys().sort());
    for (const k of o.keys()) {
      const got = await o.read(k);
      const a = await ins[0].read(k);
      assert.equal(got.dtype, a.dtype, k);
      assert.deepEqual(got.shape, a.shape, k);
      if (!isFloatDType(a.dtype) || k.endsWith('position_ids')) { assert.deepEqual(got.bytes(), a.bytes(), k); continue; }
      const vals = await Promise.all(ins.map(async (f) => (await f.read(k)).toFloat32Array()));
      const want = Float32Array.from(vals[0], (_, i) => expect(k, vals.map((v) => v[i])));
      const rounded = Tensor.f32(a.shape, want).to(a.dtype === 'f32' ? 'f32' : 'f16').toFloat32Array();
      const g = got.toFloat32Array();
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(g[i] - rounded[i]));
      n++;
    }
  } finally {
    await o.close();
    for (const f of ins) await f.close();
  }
  return { worst, n };
}

test('weighted sum at 0.3 is 0.7·A + 0.3·B and add difference A + α(B − C), tensor by tensor; block weights hit their blocks', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-merge-'));
  const B = join(dir, 'b.safetensors');
  const C = join(dir, 'c.safetensors');
  await variant(B, 1);
  await variant(C, 2);

  const ws = join(dir, 'ws.safetensors');
  const r1 = await mergeCheckpoints({ a: A, b: B, mode: 'weighted-sum', alpha: 0.3, out: ws });
  const c1 = await check(ws, [A, B], (_k, [a, b]) => (1 - 0.3) * a + 0.3 * b);
  console.log(`  weighted sum 0.3: ${c1.n} float tensors, worst |merged − (0.7·A + 0.3·B)| ${c1.worst} (after rounding to the stored dtype)`);
  assert.equal(c1.worst, 0);
  assert.equal(r1.merged, c1.n);
  const wsFile = await openSafetensors(ws);
  const meta = wsFile.metadata;
  await wsFile.close();
  const recipe = JSON.parse(meta.sd_merge_recipe);
  assert.equal(recipe.interp_method, 'Weighted sum');
  assert.equal(recipe.multiplier, 0.3);
  assert.match(recipe.primary_model_hash, /^[0-9a-f]{64}$/);
  assert.equal(Object.keys(JSON.parse(meta.sd_merge_models)).length, 2);

  const ad = join(dir, 'ad.safetensors');
  await mergeCheckpoints({ a: A, b: B, c: C, mode: 'add-difference', alpha: 0.6, out: ad });
  const c2 = await check(ad, [A, B, C], (_k, [a, b, c]) => a + 0.6 * (b - c));
  console.log(`  add difference 0.6: ${c2.n} float tensors, worst |merged − (A + 0.6·(B − C))| ${c2.worst}`);
  assert.equal(c2.worst, 0);

  // Block weights: 0.01·(i+1) for block i, so each key's α says which block it was counted in.
  const bw = Array.from({ length: 25 }, (_, i) => 0.01 * (i + 1));
  const bwOut = join(dir, 'bw.safetensors');
  await mergeCheckpoints({ a: A, b: B, mode: 'weighted-sum', alpha: 0.5, blockWeights: bw, out: bwOut });
  const expected: Record<string, number> = {
    'model.diffusion_model.time_embed.0.weight': bw[0],
    'model.diffusion_model.input_blocks.0.0.weight': bw[0],
    'model.diffusion_model.input_blocks.4.0.op.weight': bw[4],
    'model.diffusion_model.middle_block.1.proj_in.weight': bw[12],
    'model.diffusion_model.output_blocks.2.1.transformer_blocks.0.attn2.to_out.0.weight': bw[15],
    'model.diffusion_model.output_blocks.8.0.out_layers.3.weight': bw[21],
    'model.diffusion_model.out.2.weight': bw[24],
    'cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1.weight': 0.5,
    'first_stage_model.decoder.conv_in.weight': 0.5,
  };
  for (const [k, alpha] of Object.entries(expected)) {
    assert.equal(blockIndex(k) >= 0 ? bw[blockIndex(k)] : 0.5, alpha, k);
  }
  const c3 = await check(bwOut, [A, B], (k, [a, b]) => {
    const i = blockIndex(k);
    const al = i >= 0 ? bw[i] : 0.5;
    return (1 - al) * a + al * b;
  });
  console.log(`  block-weighted (25 weights): worst error ${c3.worst}`);
  assert.equal(c3.worst, 0);
  const bwFile = await openSafetensors(bwOut);
  assert.equal(JSON.parse(bwFile.metadata.sd_merge_recipe).block_weights, bw.join(','));
  await bwFile.close();

  // Baking a VAE: first_stage_model.* comes from the VAE file (prefix-less, as VAE files are).
  const vae = join(dir, 'vae.safetensors');
  const src = await openSafetensors(`${REF}/ckpt/tiny-sd2.safetensors`);
  const vt = new Map<string, Tensor>();
  for (const k of src.keys()) if (k.startsWith('first_stage_model.')) vt.set(k.slice('first_stage_model.'.length), await src.read(k));
  await src.close();
  await writeSafetensors(vae, vt);
  const baked = join(dir, 'baked.safetensors');
  const r4 = await mergeCheckpoints({ a: A, b: B, mode: 'weighted-sum', alpha: 0.3, vae, out: baked });
  assert.equal(r4.vaeReplaced, vt.size);
  const o = await openSafetensors(baked);
  for (const [k, t] of vt) assert.deepEqual((await o.read(`first_stage_model.${k}`)).bytes(), t.bytes(), k);
  await o.close();

  // Refusals name the key and the files; nothing is left behind.
  await assert.rejects(mergeCheckpoints({ a: A, b: `${REF}/ckpt/tiny-sd2.safetensors`, mode: 'weighted-sum', alpha: 0.5, out: join(dir, 'x.safetensors') }),
    /tiny-sd2\.safetensors: has no tensor 'cond_stage_model\.transformer\.text_model\.[^']+' \(which .*tiny-sd1\.safetensors has\)/);
  await assert.rejects(mergeCheckpoints({ a: A, b: B, mode: 'add-difference', alpha: 0.5, out: join(dir, 'x.safetensors') }), /add-difference needs a third model/);
  await assert.rejects(mergeCheckpoints({ a: A, b: B, mode: 'weighted-sum', alpha: 0.5, blockWeights: [1, 2], out: join(dir, 'x.safetensors') }), /block weights must be 25 numbers/);
  assert.deepEqual((await readdir(dir)).sort(), ['ad.safetensors', 'b.safetensors', 'baked.safetensors', 'bw.safetensors', 'c.safetensors', 'vae.safetensors', 'ws.safetensors']);
});
