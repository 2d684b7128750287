// Stacking, strength 0, the session cache across LoRA sets, unmatched keys, and files that must be
// refused (wrong family, malformed tensors) without leaving anything patched.
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyLoras } from '../../src/adapters/lora.js';
import { PatchedWeights } from '../../src/adapters/patched-weights.js';
import { writeSafetensors } from '../../src/formats/safetensors.js';
import type { SessionCache } from '../../src/runtime/session.js';
import type { StableDiffusionModel } from '../../src/models/sd-model.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { loadTiny } from '../pipelines/models.js';
import { maxRelError, refTests } from '../ref.js';
import { mm, overlay, randn, rng } from './fixtures.js';

const test = refTests('LoRA stacking on tiny-sd1');

const cacheSize = (m: StableDiffusionModel) => (m as unknown as { sessions: SessionCache }).sessions.size;
const K = 'model.diffusion_model.input_blocks.3.1.transformer_blocks.0.attn2.to_v.weight';
const NAME = 'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_v';
const TE_NAME = 'lora_te_text_model_encoder_layers_0_self_attn_k_proj';

async function lora(dir: string, file: string, seed: number, extra: Record<string, Tensor> = {}) {
  const r = rng(seed);
  const t: Record<string, Tensor> = {
    [`${NAME}.lora_down.weight`]: randn(r, [2, 32], 0.5), [`${NAME}.lora_up.weight`]: randn(r, [64, 2], 0.5), [`${NAME}.alpha`]: Tensor.f32([], [1]),
    [`${TE_NAME}.lora_down.weight`]: randn(r, [2, 32], 0.5), [`${TE_NAME}.lora_up.weight`]: randn(r, [32, 2], 0.5),
    ...extra,
  };
  const path = join(dir, file);
  await writeSafetensors(path, t);
  const delta = (n: string, out: number, inn: number, scale: number) => mm(t[`${n}.lora_up.weight`].toFloat32Array(), t[`${n}.lora_down.weight`].toFloat32Array(), out, 2, inn).map((v) => v * scale);
  return { path, unet: delta(NAME, 64, 32, 0.5), text: delta(TE_NAME, 32, 32, 1) };
}

test('two LoRAs stacked add their deltas; strength 0 is the base exactly; switching back reuses sessions', async () => {
  const model = await loadTiny('tiny-sd1');
  const dir = await mkdtemp(join(tmpdir(), 'lk-stack-'));
  try {
    const a = await lora(dir, 'a.safetensors', 1);
    const b = await lora(dir, 'b.safetensors', 2);
    const r = rng(9);
    const x = randn(r, [1, 4, 8, 8]);
    const t = Tensor.f32([1], [500]);
    const c = randn(r, [1, 8, 32]);
    const base = (await model.predict(x, t, c)).toFloat32Array();
    const sessionsAfterBase = cacheSize(model);

    // Stacked: W + 0.7·ΔA + (−0.4)·ΔB, merged here.
    const stacked = await applyLoras(model, [{ path: a.path, weight: 0.7 }, { path: b.path, weight: -0.4 }]);
    const w = (await model.parts.weights.unet.read(K)).toFloat32Array();
    const merged = Tensor.f32([64, 32], w.map((v, i) => v + 0.7 * a.unet[i] - 0.4 * b.unet[i]));
    const ref = model.derive({ weights: { unet: overlay(model.parts.weights.unet, new Map([[K, merged]]), 'stack') } });
    const got = (await stacked.model.predict(x, t, c)).toFloat32Array();
    const err = maxRelError(got, (await ref.predict(x, t, c)).toFloat32Array());
    console.log(`  stacked LoRAs vs W + 0.7·ΔA − 0.4·ΔB: relative error ${err.toExponential(2)} (tolerance 1e-5)`);
    assert.ok(err < 1e-5, String(err));
    assert.ok(maxRelError(got, base) > 1e-3, 'the stack changes the output');
    // The text-encoder strength defaults to the UNet strength (A1111), so the text weights are patched too.
    assert.ok(stacked.model.parts.weights.text instanceof PatchedWeights);

    // Strength 0 everywhere: no patch at all, the very same weights and sessions.
    const zero = await applyLoras(model, [{ path: a.path, weight: 0, teWeight: 0 }]);
    assert.equal(zero.model, model);
    assert.deepEqual((await zero.model.predict(x, t, c)).toFloat32Array(), base);
    // UNet at 0 with the text encoder on: the UNet source stays the base one.
    const teOnly = await applyLoras(model, [{ path: a.path, weight: 0, teWeight: 1 }]);
    assert.equal(teOnly.model.parts.weights.unet, model.parts.weights.unet);

    // Switching: A, then B, then A again — the third is served from the cache, nothing rebuilt.
    const one = await applyLoras(model, [{ path: a.path, weight: 1 }]);
    const outA = (await one.model.predict(x, t, c)).toFloat32Array();
    const two = await applyLoras(model, [{ path: b.path, weight: 1 }]);
    await two.model.predict(x, t, c);
    const before = cacheSize(model);
    const again = await applyLoras(model, [{ path: a.path, weight: 1 }]);
    assert.equal(again.model.parts.weights.unet.id, one.model.parts.weights.unet.id);
    assert.deepEqual((await again.model.predict(x, t, c)).toFloat32Array(), outA);
    assert.equal(cacheSize(model), before, 'switching back built no new session');
    assert.ok(before > sessionsAfterBase);
    // And the base model is untouched by all of it.
    assert.deepEqual((await model.predict(x, t, c)).toFloat32Array(), base);
  } finally {
    await model.close();
  }
});

test('unmatched keys are reported once with a count; wrong-family and malformed files are refused, nothing patched', async () => {
  const model = await loadTiny('tiny-sd1');
  const dir = await mkdtemp(join(tmpdir(), 'lk-bad-'));
  try {
    const r = rng(3);
    const x = randn(r, [1, 4, 8, 8]);
    const t = Tensor.f32([1], [500]);
    const c = randn(r, [1, 8, 32]);
    const base = (await model.predict(x, t, c)).toFloat32Array();
    const sessions = cacheSize(model);

    const stray = await lora(dir, 'stray.safetensors', 4, {
      'lora_unet_down_blocks_3_attentions_0_proj_in.lora_down.weight': randn(r, [2, 32]),
      'lora_unet_down_blocks_3_attentions_0_proj_in.lora_up.weight': randn(r, [32, 2]),
      'lora_unet_down_blocks_3_attentions_0_proj_in.alpha': Tensor.f32([], [1]),
    });
    const res = await applyLoras(model, [{ path: stray.path }]);
    assert.equal(res.warnings.length, 1);
    assert.match(res.warnings[0], /stray\.safetensors: 3 keys matched nothing in this sd1 model and were skipped \('lora_unet_down_blocks_3_attentions_0_proj_in\./);
    assert.equal(res.loras[0].modules.length, 2);

    const cases: [string, Record<string, Tensor>, RegExp][] = [
      ['sd15-real.safetensors', { // to_k of a real SD1.5 LoRA reads 768-wide text
        'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight': randn(r, [4, 768]),
        'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight': randn(r, [64, 4]),
      }, /sd15-real\.safetensors: module 'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k' \(→ model\.diffusion_model\.input_blocks\.3\.1\.transformer_blocks\.0\.attn2\.to_k\.weight\): update of shape \[64, 768\] does not fit the weight \[64, 32\]; the LoRA looks made for SD 1\.x/],
      ['sdxl.safetensors', {
        'lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight': randn(r, [4, 32]),
        'lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight': randn(r, [32, 4]),
      }, /sdxl\.safetensors: this is an SDXL LoRA .* but the model is sd1 \(key 'lora_te1_text_model_encoder_layers_0_self_attn_q_proj\.(lora_down|lora_up)\.weight'\)/],
      ['other.safetensors', {
        'lora_unet_single_blocks_0_linear1.lora_down.weight': randn(r, [4, 32]),
        'lora_unet_single_blocks_0_linear1.lora_up.weight': randn(r, [32, 4]),
      }, /other\.safetensors: none of its 1 modules matches a weight of this sd1 model \(first: 'lora_unet_single_blocks_0_linear1'\)/],
      ['rank.safetensors', {
        [`${NAME}.lora_down.weight`]: randn(r, [2, 32]), [`${NAME}.lora_up.weight`]: randn(r, [64, 3]),
      }, new RegExp(`rank\\.safetensors: module '${NAME}' .*lora_up \\[64, 3\\] does not fit lora_down \\[2, 32\\]`)],
      ['half.safetensors', { [`${NAME}.lora_down.weight`]: randn(r, [2, 32]) }, new RegExp(`half\\.safetensors: module '${NAME}' .*lora module lacks up`)],
      ['nan.safetensors', {
        [`${NAME}.lora_down.weight`]: Tensor.f32([2, 32], new Float32Array(64).fill(NaN)), [`${NAME}.lora_up.weight`]: randn(r, [64, 2]),
      }, new RegExp(`nan\\.safetensors: module '${NAME}' .*down holds NaN or infinite values`)],
      ['loha.safetensors', {
        [`${NAME}.hada_w1_a`]: randn(r, [64, 2]), [`${NAME}.hada_w1_b`]: randn(r, [2, 32]), [`${NAME}.hada_w2_a`]: randn(r, [64, 2]),
      }, /loha module lacks hada_w2_b/],
    ];
    const good = stray.path;
    for (const [file, tensors, re] of cases) {
      const path = join(dir, file);
      await writeSafetensors(path, tensors);
      // Listed after a good LoRA: the good one must not be applied either.
      await assert.rejects(applyLoras(model, [{ path: good }, { path }]), re, file);
    }
    await assert.rejects(applyLoras(model, [{ path: join(dir, 'missing.safetensors') }]), /missing\.safetensors: no such LoRA file/);
    assert.equal(cacheSize(model), sessions, 'no session was built for a refused LoRA set');
    assert.deepEqual((await model.predict(x, t, c)).toFloat32Array(), base);
  } finally {
    await model.close();
  }
});
