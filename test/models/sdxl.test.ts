// SDXL base and refiner through the library against Stability's sgm code (../shared/ref/sdxl): the
// tokenizer rows of both encoders, each encoder's hidden state and pooled output, the 256-per-number
// size embeddings and the vector `y`, the UNet, the denoiser table and calls, and the VAE.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { loadCheckpoint } from '../../src/models/checkpoint.js';
import type { StableDiffusionModel } from '../../src/models/sd-model.js';
import { sdxlVector, sizeEmbedding } from '../../src/models/sdxl-vector.js';
import { promptChunks } from '../../src/pipelines/conditioning.js';
import { getProfile } from '../../src/pipelines/profiles.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { CLIP_DIR, maxRelError, REF, refTests } from '../ref.js';
import { testTokenizer } from '../pipelines/models.js';

const SDXL = join(REF, 'sdxl');
const test = refTests('SDXL parity on the tiny base and refiner', [SDXL, CLIP_DIR]);
const TOL = 1e-4;

const NAMES = ['tiny-sdxl', 'tiny-sdxl-refiner'] as const;
const models = new Map<string, Promise<StableDiffusionModel>>();
const load = (name: string) => {
  if (!models.has(name)) models.set(name, loadCheckpoint(join(SDXL, 'ckpt', `${name}.safetensors`)));
  return models.get(name)!;
};
const out = (name: string, file: string) => openSafetensors(join(SDXL, 'out', name, `${file}.safetensors`));
const f32 = async (sd: Awaited<ReturnType<typeof openSafetensors>>, key: string) => (await sd.read(key)).toFloat32Array();
const report = (what: string, err: number) => {
  console.log(`  ${what}: worst relative error ${err.toExponential(2)} (tolerance ${TOL})`);
  assert.ok(err <= TOL, `${what}: ${err}`);
};

/** Rows of a [B, …] array. */
const rows = (a: Float32Array, B: number) => Array.from({ length: B }, (_, b) => a.subarray((b * a.length) / B, ((b + 1) * a.length) / B));

for (const name of NAMES) {
  const refiner = name.endsWith('refiner');

  test(`${name}: detected as SDXL ${refiner ? 'refiner' : 'base'} with its encoders, label_emb and scale factor`, async () => {
    const m = await load(name);
    assert.equal(m.family, refiner ? 'sdxl-refiner' : 'sdxl');
    assert.deepEqual(m.textEncoders.map((e) => [e.name, e.padTokenId, e.textWidth]), refiner ? [['clip_g', 0, 64]] : [['clip_l', 49407, 64], ['clip_g', 0, 64]]);
    assert.equal(m.parts.unet.admInChannels, refiner ? 1344 : 1600);
    assert.equal(m.scaleFactor, 0.13025);
  });

  test(`${name}: tokenizer rows and both text encoders (hidden state without final norm, pooled)`, async () => {
    const m = await load(name);
    const tok = await testTokenizer();
    const ref = JSON.parse(await readFile(join(SDXL, 'out', name, 'tokenizer.json'), 'utf8')) as { prompts: { prompt: string; clip_l?: number[]; clip_g: number[] }[] };
    const te = await out(name, 'text_encoders');
    for (const enc of m.textEncoders) {
      const ids = ref.prompts.map((p) => {
        const row = promptChunks(tok, p.prompt, enc.padTokenId)[0];
        assert.deepEqual(row, enc.name === 'clip_l' ? p.clip_l : p.clip_g, `${enc.name} row of ${JSON.stringify(p.prompt)}`);
        return row;
      });
      const idsT = new Tensor('i64', [ids.length, 77], BigInt64Array.from(ids.flat(), (v) => BigInt(v)));
      const key = enc.name === 'clip_l' ? 'e0_clip_l.crossattn_part' : `${refiner ? 'e0' : 'e1'}_clip_g.penultimate`;
      const eos = ids.map((row) => row.indexOf(49407));
      const r = enc.pooledWidth ? await enc.encodeWithPooled!(idsT, eos) : { hidden: await enc.encodeText(idsT), pooled: undefined };
      report(`${name} ${enc.name} hidden state`, maxRelError(r.hidden.toFloat32Array(), await f32(te, key)));
      if (enc.name === 'clip_g') report(`${name} clip_g pooled`, maxRelError(r.pooled!.toFloat32Array(), await f32(te, `${refiner ? 'e0' : 'e1'}_clip_g.pooled`)));
      else {
        // clip skip 1 on SDXL: the last block's output, still without final LN (HF hidden_states[-1]).
        const all = await f32(te, 'e0_clip_l.hidden_states');
        const last = all.subarray(3 * ids.length * 77 * 64);
        report(`${name} clip_l hidden_states[-1] (clip skip 1)`, maxRelError((await enc.encodeText(idsT, 1)).toFloat32Array(), last));
      }
    }
    await te.close();
  });

  test(`${name}: size embeddings and the vector y from the library's pooled output`, async () => {
    const m = await load(name);
    const tok = await testTokenizer();
    const c = await out(name, 'conditioning');
    const ref = JSON.parse(await readFile(join(SDXL, 'out', name, 'cases.json'), 'utf8')) as { conditioning: { batch: Record<string, unknown> } };
    const batch = ref.conditioning.batch;
    const texts = batch.txt as string[];
    const orig = batch['original_size_as_tuple (h,w)'] as number[][];
    const crop = batch['crop_coords_top_left (top,left)'] as number[][];
    const target = batch['target_size_as_tuple (h,w)'] as number[][] | undefined;
    const score = refiner ? await f32(c, 'cond.aesthetic_score') : undefined;
    const B = texts.length;
    const emb = (pairs: number[][]) => Float32Array.from(pairs.flatMap((p) => p.flatMap((v) => [...sizeEmbedding(v)])));
    report(`${name} original size embedding`, maxRelError(emb(orig), await f32(c, refiner ? 'cond.emb1_original_size_as_tuple' : 'cond.emb2_original_size_as_tuple')));
    report(`${name} crop embedding`, maxRelError(emb(crop), await f32(c, refiner ? 'cond.emb2_crop_coords_top_left' : 'cond.emb3_crop_coords_top_left')));
    if (target) report(`${name} target size embedding`, maxRelError(emb(target), await f32(c, 'cond.emb4_target_size_as_tuple')));
    else report(`${name} aesthetic score embedding`, maxRelError(emb([...score!].map((s) => [s])), await f32(c, 'cond.emb3_aesthetic_score')));

    const g = m.textEncoders[m.textEncoders.length - 1];
    const ids = texts.map((t) => promptChunks(tok, t, g.padTokenId)[0]);
    const { pooled } = await g.encodeWithPooled!(new Tensor('i64', [B, 77], BigInt64Array.from(ids.flat(), (v) => BigInt(v))), ids.map((r) => r.indexOf(49407)));
    const params = (b: number) => ({
      originalHeight: orig[b][0], originalWidth: orig[b][1], cropTop: crop[b][0], cropLeft: crop[b][1],
      targetHeight: target?.[b][0] ?? 0, targetWidth: target?.[b][1] ?? 0, aestheticScore: score?.[b] ?? 0,
    });
    const kind = m.admKind!;
    const ys = rows(pooled.toFloat32Array(), B).map((p, b) => sdxlVector(kind, p, params(b)));
    const flat = new Float32Array(ys.reduce((a, y) => a + y.length, 0));
    ys.forEach((y, b) => flat.set(y, b * y.length));
    report(`${name} vector y`, maxRelError(flat, await f32(c, 'cond.vector')));
    // force_zero_embeddings=['txt']: the pooled part zero, the sizes kept (A1111's empty negative).
    const zeros = ys.map((_, b) => sdxlVector(kind, new Float32Array(g.pooledWidth!), params(b)));
    const zflat = new Float32Array(flat.length);
    zeros.forEach((y, b) => zflat.set(y, b * y.length));
    report(`${name} zeroed-text vector y`, maxRelError(zflat, await f32(c, 'cond.zero_txt.vector')));
    await c.close();
  });

  test(`${name}: UNet(x, t, context, y) and the denoiser table and calls`, async () => {
    const m = await load(name);
    const u = await out(name, 'unet');
    for (const id of ['u1_t999', 'u2_b2_t500_17', 'u3_t0_prompt3']) {
      const r = await m.predict(await u.read(`${id}.x`), await u.read(`${id}.timesteps`), await u.read(`${id}.context`), await u.read(`${id}.y`));
      report(`${name} UNet ${id}`, maxRelError(r.toFloat32Array(), await f32(u, `${id}.out`)));
    }
    await u.close();
    const d = await out(name, 'denoiser');
    const schedule = getProfile('comfy').schedule();
    report(`${name} σ table`, maxRelError(Float32Array.from(schedule.sigmas), await f32(d, 'sigma_table')));
    // The sgm denoiser quantises σ to the table and scales with σ_q; ComfyUI's nearest index gives the same t.
    const u2 = await out(name, 'unet');
    const cond = await openSafetensors(join(SDXL, 'out', name, 'conditioning.safetensors'));
    const ctxAll = await f32(cond, 'cond.crossattn');
    const yAll = await f32(cond, 'cond.vector');
    const cases = JSON.parse(await readFile(join(SDXL, 'out', name, 'cases.json'), 'utf8')).denoiser.cases as { id: string; rows: number[] }[];
    for (const cs of cases) {
      const x = await f32(d, `${cs.id}.x`);
      const sig = [...await f32(d, `${cs.id}.sigma`)];
      const B = sig.length;
      const per = x.length / B;
      const tIdx = sig.map((s) => schedule.sigmaToTQuantized(s));
      const sq = tIdx.map((t) => Math.fround(schedule.sigmas[t]));
      assert.deepEqual(tIdx, [...await f32(d, `${cs.id}.c_noise_idx`)]);
      const xin = Float32Array.from(x, (v, i) => v / Math.sqrt(sq[Math.floor(i / per)] ** 2 + 1));
      const ctxW = ctxAll.length / 4;
      const yW = yAll.length / 4;
      const ctx = new Float32Array(B * ctxW);
      const y = new Float32Array(B * yW);
      cs.rows.forEach((r, b) => { ctx.set(ctxAll.subarray(r * ctxW, (r + 1) * ctxW), b * ctxW); y.set(yAll.subarray(r * yW, (r + 1) * yW), b * yW); });
      const [, C, H, W] = (await d.read(`${cs.id}.x`)).shape;
      const eps = (await m.predict(Tensor.f32([B, C, H, W], xin), Tensor.f32([B], tIdx), Tensor.f32([B, 77, ctxW / 77], ctx), Tensor.f32([B, yW], y))).toFloat32Array();
      const den = Float32Array.from(x, (v, i) => v - sq[Math.floor(i / per)] * eps[i]);
      report(`${name} denoiser ${cs.id}`, maxRelError(den, await f32(d, `${cs.id}.denoised`)));
    }
    await Promise.all([d.close(), u2.close(), cond.close()]);
  });

  test(`${name}: VAE decode and encode (scale factor 0.13025)`, async () => {
    const m = await load(name);
    const v = await out(name, 'vae');
    report(`${name} VAE decode`, maxRelError((await m.decode(await v.read('z'))).toFloat32Array(), await f32(v, 'decoded')));
    const { mean, logvar } = await m.encode(await v.read('image'));
    report(`${name} VAE encode mean`, maxRelError(mean.toFloat32Array(), await f32(v, 'posterior_mean')));
    report(`${name} VAE encode logvar`, maxRelError(logvar.toFloat32Array(), await f32(v, 'posterior_logvar')));
    report(`${name} VAE scaled latent`, maxRelError(mean.toFloat32Array().map((x) => x * m.scaleFactor), await f32(v, 'scaled_latent')));
    await v.close();
  });
}

test('SDXL models close', async () => {
  for (const p of models.values()) await (await p).close();
});
