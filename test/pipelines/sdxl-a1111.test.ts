// A1111's SDXL rules (../shared/ref/sdxl/README.md, "How A1111 differs for SDXL"), checked against
// that description on the tiny SDXL base and refiner by watching what reaches the UNet: there are no
// A1111 vectors for SDXL.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadCheckpoint } from '../../src/models/checkpoint.js';
import type { StableDiffusionModel } from '../../src/models/sd-model.js';
import { sizeEmbedding } from '../../src/models/sdxl-vector.js';
import { encodeA1111Sdxl } from '../../src/pipelines/sdxl-conditioning.js';
import { getProfile } from '../../src/pipelines/profiles.js';
import { sigmasFor } from '../../src/sampling/schedules.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { txt2img } from '../../src/pipelines/txt2img.js';
import { CLIP_DIR, maxRelError, REF, refTests } from '../ref.js';
import { testTokenizer } from './models.js';

const SDXL = join(REF, 'sdxl');
const test = refTests('SDXL under the a1111 profile', [SDXL, CLIP_DIR]);

interface Call { model: string; t: number[]; ctx: Float32Array; y: Float32Array; rows: number }

/** Records every UNet call of a model (rows are [cond…, uncond…] under a1111). */
function spy(model: StableDiffusionModel, name: string, calls: Call[]): void {
  const predict = model.predict.bind(model);
  model.predict = async (x: Tensor, t: Tensor, ctx: Tensor, y?: Tensor) => {
    calls.push({ model: name, t: [...t.toFloat32Array()], ctx: ctx.toFloat32Array(), y: y!.toFloat32Array(), rows: x.shape[0] });
    return predict(x, t, ctx, y);
  };
}

const load = (n: string) => loadCheckpoint(join(SDXL, 'ckpt', `${n}.safetensors`));
const E = 64; // pooled width of the tiny G
const sizePart = (y: Float32Array, i: number) => y.subarray(E + i * 256, E + (i + 1) * 256);
const close = (a: ArrayLike<number>, b: ArrayLike<number>) => maxRelError(a, b) < 1e-6;

test('rules 1-3, 5: empty negative zeroed (sizes kept), sizes = image (h, w), fractional timesteps', async () => {
  const base = await load('tiny-sdxl');
  const calls: Call[] = [];
  spy(base, 'base', calls);
  await txt2img(base, { prompt: 'a red fox', negativePrompt: '', width: 64, height: 96, steps: 3, seed: 1, profile: 'a1111', tokenizer: await testTokenizer() });
  const c = calls[0];
  assert.equal(c.rows, 2);
  const half = c.ctx.length / 2;
  const yw = c.y.length / 2;
  const cond = { ctx: c.ctx.subarray(0, half), y: c.y.subarray(0, yw) };
  const uncond = { ctx: c.ctx.subarray(half), y: c.y.subarray(yw) };
  assert.ok(cond.ctx.some((v) => v !== 0));
  assert.ok(uncond.ctx.every((v) => v === 0), 'empty negative: crossattn zero');
  assert.ok(uncond.y.subarray(0, E).every((v) => v === 0), 'empty negative: pooled zero');
  // original = target = (height, width) of the image, crop (0, 0); the zeroed negative keeps them.
  for (const y of [cond.y, uncond.y]) {
    assert.ok(close(sizePart(y, 0), sizeEmbedding(96)) && close(sizePart(y, 1), sizeEmbedding(64)), 'original size (h, w)');
    assert.ok(close(sizePart(y, 2), sizeEmbedding(0)) && close(sizePart(y, 3), sizeEmbedding(0)), 'crop (0, 0)');
    assert.ok(close(sizePart(y, 4), sizeEmbedding(96)) && close(sizePart(y, 5), sizeEmbedding(64)), 'target size (h, w)');
  }
  // k-diffusion's fractional t: the first σ of a 3-step A1111 schedule is off the table's grid only after the first step.
  assert.ok(calls.slice(1).some((k) => !Number.isInteger(k.t[0])), `fractional timesteps: ${calls.map((k) => k.t[0]).join(', ')}`);

  // A non-empty negative is encoded.
  calls.length = 0;
  await txt2img(base, { prompt: 'a red fox', negativePrompt: 'blurry', width: 64, height: 64, steps: 1, seed: 1, profile: 'a1111', tokenizer: await testTokenizer() });
  assert.ok(calls[0].ctx.subarray(calls[0].ctx.length / 2).some((v) => v !== 0));
  await base.close();
});

test('rules 3, 4: the refiner takes over inside the sampler at (999 − t)/1000 ≥ switch, with aesthetic scores 6 / 2.5', async () => {
  const base = await load('tiny-sdxl');
  const refiner = await load('tiny-sdxl-refiner');
  const calls: Call[] = [];
  spy(base, 'base', calls);
  spy(refiner, 'refiner', calls);
  const steps = 8;
  const switchAt = 0.8;
  await txt2img(base, {
    prompt: 'a red fox', negativePrompt: 'blurry', width: 64, height: 64, steps, seed: 3, sampler: 'dpmpp_2m', scheduler: 'karras',
    profile: 'a1111', tokenizer: await testTokenizer(), refiner: { model: refiner, switchAt },
  });
  const schedule = getProfile('a1111').schedule();
  const sigmas = sigmasFor('a1111', 'dpmpp_2m', 'karras', steps).slice(0, -1);
  const expected = sigmas.map((s) => ((999 - schedule.sigmaToTQuantized(s)) / 1000 >= switchAt ? 'refiner' : 'base'));
  assert.deepEqual(calls.map((c) => c.model), expected);
  assert.ok(expected.includes('base') && expected.includes('refiner'));
  const r = calls.find((c) => c.model === 'refiner')!;
  const yw = r.y.length / 2;
  // Refiner y: [pooled | orig h, w | crop top, left | aesthetic score]; cond rows first.
  assert.ok(close(sizePart(r.y.subarray(0, yw), 4), sizeEmbedding(6)));
  assert.ok(close(sizePart(r.y.subarray(yw), 4), sizeEmbedding(2.5)));
  await base.close();
  await refiner.close();
});

test('rules 7, 9: pooled from the first chunk; clip skip reaches CLIP-L only with sdxl_clip_l_skip', async () => {
  const base = await load('tiny-sdxl');
  const tok = await testTokenizer();
  const long = Array.from({ length: 90 }, (_, i) => `word${i}`).join(' ');
  const opts = { emphasis: 'original' as const, clipSkip: 1, commaBacktrack: 20 };
  const a = await encodeA1111Sdxl(base, tok, [long], opts);
  assert.ok(a.conds[0].tokens >= 154, 'two chunks');
  assert.equal(a.conds[0].width, 128);
  const firstChunkIds = tok.encode(long).slice(0, 75);
  const firstText = tok.decode(firstChunkIds);
  assert.deepEqual(tok.encode(firstText), firstChunkIds);
  const b = await encodeA1111Sdxl(base, tok, [firstText], opts);
  assert.ok(close(a.pooled[0], b.pooled[0]), 'pooled = first chunk');
  // Clip skip 1 without the option: the default layer (−2) for both encoders.
  const skip2 = await encodeA1111Sdxl(base, tok, ['a red fox'], { ...opts, clipSkip: 2 });
  const skip1 = await encodeA1111Sdxl(base, tok, ['a red fox'], opts);
  assert.deepEqual(skip1.conds[0].data, skip2.conds[0].data);
  const withOption = await encodeA1111Sdxl(base, tok, ['a red fox'], { ...opts, clipLSkip: true });
  const W = 128;
  const part = (d: Float32Array, from: number, to: number) => Float32Array.from({ length: 77 * (to - from) }, (_, i) => d[Math.floor(i / (to - from)) * W + from + (i % (to - from))]);
  assert.notDeepEqual(part(withOption.conds[0].data, 0, 64), part(skip2.conds[0].data, 0, 64), 'CLIP-L changes');
  assert.deepEqual(part(withOption.conds[0].data, 64, 128), part(skip2.conds[0].data, 64, 128), 'G never does');
  await base.close();
});
