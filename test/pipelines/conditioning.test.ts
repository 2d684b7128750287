// Conditioning on the tiny SD1 checkpoint: long prompts, weights, textual inversion, broken
// embedding files. Equalities here are exact (same ONNX graph, same inputs).
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EmbeddingLibrary, loadTextualInversion } from '../../src/adapters/textual-inversion.js';
import { encodeConditioning, encodePrompt, type CondTensor } from '../../src/pipelines/conditioning.js';
import { chunkA1111 } from '../../src/text/chunking.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { copyHostile, copyNarrow, diffusersBin, tempDir, writeEmbParams, writePt } from '../text/ti-fixtures.js';
import { loadTiny, testTokenizer } from './models.js';
import { CLIP_DIR, missingRef, REF, refTests } from '../ref.js';
import type { StableDiffusionModel } from '../../src/models/sd-model.js';
import type { ClipTokenizer } from '../../src/text/clip-tokenizer.js';

const test = refTests('conditioning on tiny-sd1', [REF, CLIP_DIR]);

// Placeholders without the reference data: no test that uses them is registered then.
const present = missingRef([REF, CLIP_DIR]) === undefined;
const model = present ? await loadTiny('tiny-sd1') : (undefined as unknown as StableDiffusionModel);
const tok = present ? await testTokenizer() : (undefined as unknown as ClipTokenizer);
const W = model?.textWidth ?? 0;

async function a1111(prompt: string, opts: Partial<Parameters<typeof encodeConditioning>[4]> = {}): Promise<CondTensor> {
  const r = await encodeConditioning(model, tok, prompt, '', { steps: 20, ...opts });
  return r.cond[0].schedule[r.cond[0].schedule.length - 1].cond;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('a 2-chunk prompt is the concatenation of its chunks encoded one by one', async () => {
  const long = Array.from({ length: 40 }, (_, i) => `word${i % 7}`).join(', ');
  const { chunks } = chunkA1111(tok, long);
  assert.equal(chunks.length, 2);
  const got = await a1111(long);
  assert.equal(got.tokens, 154);
  const parts: number[] = [];
  for (const c of chunks) {
    const z = await model.encodeText(new Tensor('i64', [1, 77], BigInt64Array.from(c.tokens, BigInt)));
    parts.push(...z.toFloat32Array());
  }
  assert.deepEqual(Array.from(got.data), parts);
  // BREAK gives two chunks the same way
  const br = await a1111('a red fox BREAK in the snow');
  const one = await encodePrompt(model, tok, 'a red fox', 1);
  const two = await encodePrompt(model, tok, 'in the snow', 1);
  assert.deepEqual(Array.from(br.data), [...one.toFloat32Array(), ...two.toFloat32Array()]);
});

test('weights of 1.0 everywhere give exactly the unweighted conditioning (A1111 and ComfyUI syntax)', async () => {
  const plain = (await encodePrompt(model, tok, 'a red fox in the snow', 1)).toFloat32Array();
  for (const emphasis of ['original', 'no-norm'] as const) {
    const w = await a1111('(a:1.0) (red:1) fox ((in:1.0):1.0) the snow', { emphasis });
    assert.deepEqual(Array.from(w.data), Array.from(plain), emphasis);
  }
  const r = await encodeConditioning(model, tok, '(a red:1.0) fox in (the snow:1)', '', { steps: 20, syntax: 'comfy' });
  assert.deepEqual(Array.from(r.cond[0].schedule[0].cond.data), Array.from(plain));
});

test('emphasis changes the weighted tokens; Original keeps the chunk mean, No norm does not', async () => {
  const plain = (await encodePrompt(model, tok, 'a red fox', 1)).toFloat32Array();
  const orig = (await a1111('a (red:1.5) fox')).data;
  const nonorm = (await a1111('a (red:1.5) fox', { emphasis: 'no-norm' })).data;
  const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
  assert.ok(Math.abs(mean(orig) - mean(plain)) < 1e-6 * Math.max(1, Math.abs(mean(plain))));
  assert.ok(Math.abs(mean(nonorm) - mean(plain)) > 1e-6);
  // "No norm" is z·w on the token's own row and z elsewhere
  for (let c = 0; c < W; c++) assert.equal(nonorm[2 * W + c], Math.fround(plain[2 * W + c] * 1.5));
  assert.deepEqual(Array.from(nonorm.subarray(0, 2 * W)), Array.from(plain.subarray(0, 2 * W)));
});

test('ComfyUI weighting interpolates towards the empty prompt', async () => {
  const r = await encodeConditioning(model, tok, 'a (red:1.5) fox', '', { steps: 20, syntax: 'comfy' });
  const z = r.cond[0].schedule[0].cond.data;
  const plain = (await encodePrompt(model, tok, 'a red fox', 1)).toFloat32Array();
  const empty = (await encodePrompt(model, tok, '', 1)).toFloat32Array();
  for (let c = 0; c < W; c++) {
    const o = 2 * W + c;
    assert.equal(z[o], Math.fround(Math.fround(Math.fround(plain[o] - empty[o]) * 1.5) + empty[o]));
  }
  assert.deepEqual(Array.from(z.subarray(0, 2 * W)), Array.from(plain.subarray(0, 2 * W)));
});

test('prompt editing: each schedule entry is the conditioning of its text', async () => {
  const r = await encodeConditioning(model, tok, 'a [cat:dog:0.5] on a sofa', '[ugly:3]', { steps: 10 });
  assert.deepEqual(r.cond[0].schedule.map((s) => s.endAtStep), [5, 10]);
  assert.deepEqual(r.uncond.map((s) => s.endAtStep), [3, 10]);
  const cat = (await encodePrompt(model, tok, 'a cat on a sofa', 1)).toFloat32Array();
  const dog = (await encodePrompt(model, tok, 'a dog on a sofa', 1)).toFloat32Array();
  assert.ok(maxDiff(r.cond[0].schedule[0].cond.data, cat) < 1e-6);
  assert.ok(maxDiff(r.cond[0].schedule[1].cond.data, dog) < 1e-6);
  const and = await encodeConditioning(model, tok, 'a cat :1.2 AND a dog:0.5 <lora:detail:0.8>', '', { steps: 10 });
  assert.deepEqual(and.cond.map((c) => c.weight), [1.2, 0.5]);
  assert.deepEqual(and.extraNetworks.lora.map((p) => p.items), [['detail', '0.8']]);
});

test('an embedding holding existing token vectors conditions exactly like those tokens (.pt, emb_params, diffusers .bin, ComfyUI embedding:)', async () => {
  const dir = await tempDir();
  const [red, fox] = [tok.tokenId('red</w>')!, tok.tokenId('fox</w>')!];
  const redRow = await model.tokenEmbeddings([red]);
  const both = await model.tokenEmbeddings([red, fox]);
  await writePt(dir, 'crimson.pt', redRow, 1, W);
  await writeEmbParams(dir, 'redfox.safetensors', both, 2, W);
  await writeFile(join(dir, 'learned_embeds.bin'), diffusersBin('<vermilion>', redRow));
  const lib = await EmbeddingLibrary.open([dir], { width: W });
  const want = (await encodePrompt(model, tok, 'a red fox', 1)).toFloat32Array();
  const viaPt = await encodeConditioning(model, tok, 'a crimson fox', '', { steps: 20, embeddings: lib });
  assert.deepEqual(Array.from(viaPt.cond[0].schedule[0].cond.data), Array.from(want));
  assert.match(String(viaPt.infotext.find(([k]) => k === 'TI hashes')?.[1]), /^crimson: [0-9a-f]{12}$/);
  const viaSt = await encodeConditioning(model, tok, 'a redfox', '', { steps: 20, embeddings: lib });
  assert.deepEqual(Array.from(viaSt.cond[0].schedule[0].cond.data), Array.from(want));
  const viaBin = await encodeConditioning(model, tok, 'a learned_embeds fox', '', { steps: 20, embeddings: lib });
  assert.deepEqual(Array.from(viaBin.cond[0].schedule[0].cond.data), Array.from(want));
  const comfy = await encodeConditioning(model, tok, 'a embedding:crimson fox', '', { steps: 20, embeddings: lib, syntax: 'comfy' });
  assert.deepEqual(Array.from(comfy.cond[0].schedule[0].cond.data), Array.from(want));
  const ti = await loadTextualInversion(join(dir, 'crimson.pt'));
  assert.deepEqual({ name: ti.name, count: ti.count, width: ti.width, format: ti.format, step: ti.step }, { name: 'crimson', count: 1, width: W, format: 'string_to_param', step: 1500 });
});

test('hostile and misshapen embedding files are skipped with a warning naming them; the prompt still encodes', async () => {
  const dir = await tempDir();
  const hostile = await copyHostile(dir, 'evil.pt');
  const narrow = await copyNarrow(dir, 'narrow.pt');
  await writeFile(join(dir, 'garbage.safetensors'), 'not a tensor file at all');
  const warnings: string[] = [];
  const lib = await EmbeddingLibrary.open([dir], { width: W, warn: (m) => warnings.push(m) });
  const r = await encodeConditioning(model, tok, 'an evil narrow garbage fox', 'narrow', { steps: 20, embeddings: lib, warn: (m) => warnings.push(m) });
  const plain = (await encodePrompt(model, tok, 'an evil narrow garbage fox', 1)).toFloat32Array();
  assert.deepEqual(Array.from(r.cond[0].schedule[0].cond.data), Array.from(plain));
  assert.equal(warnings.length, 3, warnings.join('\n'));
  assert.ok(warnings.some((w) => w.includes(hostile) && /posix\.system/.test(w)), warnings.join('\n'));
  assert.ok(warnings.some((w) => w.includes(narrow) && /4-wide vectors .* 32 wide; skipped/.test(w)), warnings.join('\n'));
  assert.ok(warnings.some((w) => w.includes('garbage.safetensors')), warnings.join('\n'));
  assert.equal(r.infotext.find(([k]) => k === 'TI hashes')?.[1], undefined);
  const comfy = await encodeConditioning(model, tok, 'embedding:evil fox', '', { steps: 20, embeddings: lib, syntax: 'comfy', warn: (m) => warnings.push(m) });
  assert.equal(comfy.cond[0].schedule[0].cond.tokens, 77);
  assert.ok(warnings.some((w) => /embedding:evil does not exist/.test(w)));
  // ComfyUI keeps a misfitting embedding's place while chunking, then drops it and pads the end
  const narrowComfy = await encodeConditioning(model, tok, 'embedding:narrow fox', '', { steps: 20, embeddings: lib, syntax: 'comfy', warn: (m) => warnings.push(m) });
  assert.deepEqual(Array.from(narrowComfy.cond[0].schedule[0].cond.data), Array.from((await encodePrompt(model, tok, 'fox', 1)).toFloat32Array()));
  assert.ok(warnings.some((w) => /embedding 'narrow' has 4-wide vectors, the text encoder 32; ignored/.test(w)), warnings.join('\n'));
  assert.equal(narrowComfy.infotext.find(([k]) => k === 'TI hashes')?.[1], undefined);
});
