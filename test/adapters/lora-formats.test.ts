// Every LoRA-family format × layer type (linear, 1×1 conv, 3×3 conv, text encoder) on tiny-sd1 and
// tiny-sd2: the UNet and text-encoder outputs of the patched model equal those of the base checkpoint
// whose weights this test merges itself with the format's published formula (1e-5 relative).
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyLoras } from '../../src/adapters/lora.js';
import { writeSafetensors } from '../../src/formats/safetensors.js';
import type { StableDiffusionModel } from '../../src/models/sd-model.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { loadTiny, type TinyName } from '../pipelines/models.js';
import { maxRelError, refTests } from '../ref.js';
import { kronRef, midRef, mm, numel, overlay, randn, rng, targetsFor, tuckerRef, type Target } from './fixtures.js';

const test = refTests('LoRA formats on the tiny checkpoints');

const flat = (s: string) => s.replace(/\./g, '_');
const kohya = (t: Target) => `${t.part === 'unet' ? 'lora_unet_' : 'lora_te_'}${flat(t.module)}`;
const dotted = (t: Target) => `${t.part === 'unet' ? 'unet' : 'text_encoder'}.${t.module}`;
const scalar = (x: number) => Tensor.f32([], [x]);
const half = (t: Tensor) => t.to('f16');

/** What one module contributes: its tensors, and the weight after it at strength s (test's own formula). */
interface Made {
  tensors: Record<string, Tensor>;
  apply: (w: Float64Array, s: number) => Float64Array;
  applyBias?: (b: Float64Array, s: number) => Float64Array;
}
type Format = (t: Target, r: () => number) => Made;

const RANK = 4;
const dims = (t: Target) => ({ out: t.shape[0], inn: t.shape[1], kk: numel(t.shape) / (t.shape[0] * t.shape[1]), conv: t.shape.length === 4 });
const addScaled = (w: Float64Array, d: ArrayLike<number>, f: number) => w.map((v, i) => v + f * d[i]);

function upDown(t: Target, r: () => number, spell: (t: Target) => [string, string], alpha?: number, dtype: 'f16' | 'f32' = 'f16'): Made & { prod: Float64Array; scale: number } {
  const { out, inn, kk, conv } = dims(t);
  const cast = (x: Tensor) => (dtype === 'f16' ? half(x) : x);
  const down = cast(randn(r, conv ? [RANK, inn, ...t.shape.slice(2)] : [RANK, inn], 0.4));
  const up = cast(randn(r, conv ? [out, RANK, 1, 1] : [out, RANK], 0.4));
  const prod = mm(up.toFloat32Array(), down.toFloat32Array(), out, RANK, inn * kk);
  const scale = alpha === undefined ? 1 : alpha / RANK;
  const [dn, un] = spell(t);
  const tensors: Record<string, Tensor> = { [dn]: down, [un]: up };
  if (alpha !== undefined) tensors[`${kohya(t)}.alpha`] = scalar(alpha);
  return { tensors, prod, scale, apply: (w, s) => addScaled(w, prod, s * scale) };
}

const FORMATS: Record<string, Format> = {
  // kohya-ss: lora_down / lora_up / alpha, diffusers module names flattened with '_'.
  kohya: (t, r) => upDown(t, r, (x) => [`${kohya(x)}.lora_down.weight`, `${kohya(x)}.lora_up.weight`], 2),
  // PEFT as diffusers saves it: lora_A / lora_B under unet. / text_encoder., no alpha (scale 1).
  peft: (t, r) => upDown(t, r, (x) => [`${dotted(x)}.lora_A.weight`, `${dotted(x)}.lora_B.weight`], undefined, 'f32'),
  // Older diffusers: .lora.down / .lora.up, and attention-processor names for the attention layers.
  diffusers: (t, r) => upDown(t, r, (x) => {
    const m = /^(.*)\.(to_[qkv]|to_out\.0)$/.exec(dotted(x));
    if (m) {
      const p = `${m[1]}.processor.${m[2].replace('.0', '')}_lora`;
      return [`${p}.down.weight`, `${p}.up.weight`];
    }
    return [`${dotted(x)}.lora.down.weight`, `${dotted(x)}.lora.up.weight`];
  }, undefined, 'f32'),
  // LoCon with the Tucker middle (lora_mid) on 3×3 convolutions, plain LoRA elsewhere.
  'locon-tucker': (t, r) => {
    if (t.layer !== 'conv3x3') return FORMATS.kohya(t, r);
    const { out, inn } = dims(t);
    const down = half(randn(r, [RANK, inn, 1, 1], 0.4));
    const up = half(randn(r, [out, RANK, 1, 1], 0.4));
    const mid = half(randn(r, [RANK, RANK, 3, 3], 0.4));
    const n = kohya(t);
    const d = midRef(mid, up.reshape([out, RANK]), down.reshape([RANK, inn]));
    return {
      tensors: { [`${n}.lora_down.weight`]: down, [`${n}.lora_up.weight`]: up, [`${n}.lora_mid.weight`]: mid, [`${n}.alpha`]: scalar(3) },
      apply: (w, s) => addScaled(w, d, (s * 3) / RANK),
    };
  },
  // LoHa: (w1a·w1b) ⊙ (w2a·w2b) · α/r; Tucker cores on the upsampler's 3×3 conv.
  loha: (t, r) => {
    const { out, inn, kk } = dims(t);
    const n = kohya(t);
    const alpha = 2;
    if (t.module.includes('upsamplers')) {
      const f = (i: number) => ({ [`${n}.hada_t${i}`]: half(randn(r, [RANK, RANK, 3, 3], 0.5)), [`${n}.hada_w${i}_a`]: half(randn(r, [RANK, out], 0.5)), [`${n}.hada_w${i}_b`]: half(randn(r, [RANK, inn], 0.5)) });
      const tensors = { ...f(1), ...f(2), [`${n}.alpha`]: scalar(alpha) };
      const p1 = tuckerRef(tensors[`${n}.hada_t1`], tensors[`${n}.hada_w1_a`], tensors[`${n}.hada_w1_b`]);
      const p2 = tuckerRef(tensors[`${n}.hada_t2`], tensors[`${n}.hada_w2_a`], tensors[`${n}.hada_w2_b`]);
      return { tensors, apply: (w, s) => w.map((v, i) => v + (s * alpha / RANK) * p1[i] * p2[i]) };
    }
    const w1a = half(randn(r, [out, RANK], 0.5)); const w1b = half(randn(r, [RANK, inn * kk], 0.5));
    const w2a = half(randn(r, [out, RANK], 0.5)); const w2b = half(randn(r, [RANK, inn * kk], 0.5));
    const p1 = mm(w1a.toFloat32Array(), w1b.toFloat32Array(), out, RANK, inn * kk);
    const p2 = mm(w2a.toFloat32Array(), w2b.toFloat32Array(), out, RANK, inn * kk);
    return {
      tensors: { [`${n}.hada_w1_a`]: w1a, [`${n}.hada_w1_b`]: w1b, [`${n}.hada_w2_a`]: w2a, [`${n}.hada_w2_b`]: w2b, [`${n}.alpha`]: scalar(alpha) },
      apply: (w, s) => w.map((v, i) => v + (s * alpha / RANK) * p1[i] * p2[i]),
    };
  },
  // LoKr: w1 ⊗ w2, each factor whole or as a·b, w2 with a Tucker core on the upsampler.
  lokr: (t, r) => {
    const { out, inn, kk } = dims(t);
    const n = kohya(t);
    const alpha = 3;
    const a = out / 16 >= 2 ? out / 16 : 2;
    const b = inn % 4 === 0 ? 4 : 2;
    const [c, d] = [out / a, inn / b];
    let w1: Tensor; let w2: Tensor;
    const tensors: Record<string, Tensor> = { [`${n}.alpha`]: scalar(alpha) };
    let dim: number | undefined;
    if (t.layer === 'linear' || t.layer === 'text') {
      w1 = tensors[`${n}.lokr_w1`] = randn(r, [a, b], 0.5);
      const w2a = tensors[`${n}.lokr_w2_a`] = randn(r, [c, RANK], 0.5);
      const w2b = tensors[`${n}.lokr_w2_b`] = randn(r, [RANK, d], 0.5);
      w2 = Tensor.f32([c, d], Float32Array.from(mm(w2a.toFloat32Array(), w2b.toFloat32Array(), c, RANK, d)));
      dim = RANK;
    } else if (t.layer === 'conv1x1') {
      const w1a = tensors[`${n}.lokr_w1_a`] = randn(r, [a, 2], 0.5);
      const w1b = tensors[`${n}.lokr_w1_b`] = randn(r, [2, b], 0.5);
      w1 = Tensor.f32([a, b], Float32Array.from(mm(w1a.toFloat32Array(), w1b.toFloat32Array(), a, 2, b)));
      w2 = tensors[`${n}.lokr_w2`] = randn(r, [c, d], 0.5);
      dim = 2;
    } else if (t.module.includes('upsamplers')) {
      w1 = tensors[`${n}.lokr_w1`] = randn(r, [a, b], 0.5);
      const core = tensors[`${n}.lokr_t2`] = randn(r, [RANK, RANK, 3, 3], 0.5);
      const w2a = tensors[`${n}.lokr_w2_a`] = randn(r, [RANK, c], 0.5);
      const w2b = tensors[`${n}.lokr_w2_b`] = randn(r, [RANK, d], 0.5);
      w2 = Tensor.f32([c, d, 3, 3], Float32Array.from(tuckerRef(core, w2a, w2b)));
      dim = RANK;
    } else {
      w1 = tensors[`${n}.lokr_w1`] = randn(r, [a, b], 0.5);
      w2 = tensors[`${n}.lokr_w2`] = randn(r, [c, d, 3, 3], 0.5);
      dim = undefined; // neither factor is a·b: no rank, so alpha is ignored (scale 1)
    }
    const prod = kronRef(w1, w2);
    assert.equal(prod.length, out * inn * kk);
    const scale = dim === undefined ? 1 : alpha / dim;
    return { tensors, apply: (w, s) => addScaled(w, prod, s * scale) };
  },
  // (IA)³: W ⊙ w, per output row, or per input column where on_input is set.
  ia3: (t, r) => {
    const { out, inn, kk } = dims(t);
    const n = kohya(t);
    const onInput = t.module.endsWith('ff.net.2') || t.module.endsWith('fc1');
    const vec = randn(r, [onInput ? inn : out], 0.5);
    const v = vec.toFloat32Array();
    return {
      tensors: { [`${n}.weight`]: vec, [`${n}.on_input`]: new Tensor('bool', [], Uint8Array.of(onInput ? 1 : 0)) },
      apply: (w, s) => w.map((x, i) => {
        const o = Math.floor(i / (inn * kk));
        const c = Math.floor(i / kk) % inn;
        return x + s * x * v[onInput ? c : o];
      }),
    };
  },
  // DoRA: kohya LoRA + dora_scale; V = W + (α/r)ΔW, W' = W + s·(V·m/(‖V‖+eps) − W), column norms
  // (LyCORIS [1, in, …]) except on the 1×1 conv, which gets per-row magnitudes ([out, 1, …]).
  dora: (t, r) => {
    const base = upDown(t, r, (x) => [`${kohya(x)}.lora_down.weight`, `${kohya(x)}.lora_up.weight`], 2, 'f32');
    const { out, inn, kk } = dims(t);
    const rows = t.layer === 'conv1x1';
    const mShape = rows ? [out, 1, ...t.shape.slice(2).map(() => 1)] : [1, inn, ...t.shape.slice(2).map(() => 1)];
    const m = randn(r, mShape, 1).toFloat32Array().map((x) => 0.5 + Math.abs(x));
    const eps = 1.1920928955078125e-7;
    return {
      tensors: { ...base.tensors, [`${kohya(t)}.dora_scale`]: Tensor.f32(mShape, m) },
      apply: (w, s) => {
        const v = w.map((x, i) => x + base.scale * base.prod[i]);
        const norm = new Float64Array(rows ? out : inn);
        v.forEach((x, i) => { norm[rows ? Math.floor(i / (inn * kk)) : Math.floor(i / kk) % inn] += x * x; });
        return w.map((x, i) => {
          const j = rows ? Math.floor(i / (inn * kk)) : Math.floor(i / kk) % inn;
          return x + s * ((v[i] * m[j]) / (Math.sqrt(norm[j]) + eps) - x);
        });
      },
    };
  },
  // Full difference: W + s·diff, b + s·diff_b.
  full: (t, r) => {
    const n = kohya(t);
    const diff = randn(r, t.shape, 0.05);
    const d = diff.toFloat32Array();
    const tensors: Record<string, Tensor> = { [`${n}.diff`]: diff };
    let db: Float32Array | undefined;
    if (t.biasKey) {
      const bias = randn(r, [t.shape[0]], 0.05);
      tensors[`${n}.diff_b`] = bias;
      db = bias.toFloat32Array();
    }
    return { tensors, apply: (w, s) => addScaled(w, d, s), applyBias: db && ((b, s) => addScaled(b, db!, s)) };
  },
};

const S_UNET = 0.8;
const S_TE = 0.6;

/** The base weights with each target replaced by the test's merge. */
async function referenceModel(model: StableDiffusionModel, targets: Target[], made: Made[], tag: string): Promise<StableDiffusionModel> {
  const repl = { unet: new Map<string, Tensor>(), text: new Map<string, Tensor>() };
  const getFull = async (part: 'unet' | 'text', key: string) => {
    const m = repl[part];
    const t = m.get(key) ?? Tensor.f32(model.parts.weights[part].info(key)!.shape, new Float32Array((await model.parts.weights[part].read(key)).toFloat32Array()));
    m.set(key, t);
    return t.data as Float32Array;
  };
  for (const [i, t] of targets.entries()) {
    const s = t.part === 'unet' ? S_UNET : S_TE;
    const full = await getFull(t.part, t.key);
    const rowLen = full.length / model.parts.weights[t.part].info(t.key)!.shape[0];
    const [r0, r1] = t.rows ?? [0, t.shape[0]];
    const block = Float64Array.from(full.subarray(r0 * rowLen, r1 * rowLen));
    full.set(Float32Array.from(made[i].apply(block, s)), r0 * rowLen);
    if (made[i].applyBias && t.biasKey) {
      const b = await getFull(t.part, t.biasKey);
      const [b0, b1] = t.rows ?? [0, b.length];
      b.set(Float32Array.from(made[i].applyBias!(Float64Array.from(b.subarray(b0, b1)), s)), b0);
    }
  }
  return model.derive({
    weights: { unet: overlay(model.parts.weights.unet, repl.unet, `${tag}-u`), text: overlay(model.parts.weights.text, repl.text, `${tag}-t`) },
  });
}

export async function unetInputs(seed: number, ctxDim: number) {
  const r = rng(seed);
  return { x: randn(r, [2, 4, 8, 8]), t: Tensor.f32([2], [999, 251.5]), c: randn(r, [2, 8, ctxDim]) };
}

export function tokenIds(): Tensor {
  const ids = new BigInt64Array(77);
  for (let i = 0; i < 77; i++) ids[i] = BigInt(i < 12 ? 300 + i * 37 : 49407);
  ids[0] = 49406n;
  return new Tensor('i64', [1, 77], ids);
}

for (const name of ['tiny-sd1', 'tiny-sd2'] as TinyName[]) {
  test(`${name}: each LoRA format × layer type equals the checkpoint merged with the published formula (1e-5)`, async () => {
    const model = await loadTiny(name);
    const dir = await mkdtemp(join(tmpdir(), 'lk-lora-'));
    const targets = targetsFor(model);
    const inputs = await unetInputs(1, model.parts.unet.contextDim);
    const ids = tokenIds();
    const baseU = (await model.predict(inputs.x, inputs.t, inputs.c)).toFloat32Array();
    const baseT = (await model.encodeText(ids)).toFloat32Array();
    const report: string[] = [];
    let worst = 0;
    try {
      for (const [fi, [fmt, make]] of Object.entries(FORMATS).entries()) {
        const r = rng(100 + fi);
        const made = targets.map((t) => make(t, r));
        const file = join(dir, `${fmt}.safetensors`);
        await writeSafetensors(file, Object.assign({}, ...made.map((m) => m.tensors)));
        const { model: patched, warnings, loras } = await applyLoras(model, [{ path: file, weight: S_UNET, teWeight: S_TE }]);
        assert.deepEqual(warnings, [], `${fmt}: ${warnings.join('; ')}`);
        assert.equal(loras[0].modules.length, targets.length, `${fmt}: every module matched`);
        const ref = await referenceModel(model, targets, made, fmt);
        const u = (await patched.predict(inputs.x, inputs.t, inputs.c)).toFloat32Array();
        const uRef = (await ref.predict(inputs.x, inputs.t, inputs.c)).toFloat32Array();
        const te = (await patched.encodeText(ids)).toFloat32Array();
        const teRef = (await ref.encodeText(ids)).toFloat32Array();
        const eu = maxRelError(u, uRef);
        const et = maxRelError(te, teRef);
        // The patch must matter, or the comparison proves nothing.
        const moved = Math.min(maxRelError(uRef, baseU), maxRelError(teRef, baseT));
        assert.ok(moved > 1e-4, `${fmt}: the LoRA hardly changes the outputs (${moved})`);
        assert.ok(eu < 1e-5 && et < 1e-5, `${fmt}: UNet ${eu}, text ${et}`);
        worst = Math.max(worst, eu, et);
        report.push(`${fmt} unet ${eu.toExponential(1)} te ${et.toExponential(1)} (moved ${moved.toExponential(1)})`);
      }
    } finally {
      await model.close();
    }
    console.log(`  ${name}: ${report.join('; ')}\n  ${name}: worst relative error ${worst.toExponential(2)} (tolerance 1e-5)`);
  });
}
