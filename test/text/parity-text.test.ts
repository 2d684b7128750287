// Parity of the prompt syntaxes with the reference vectors produced by A1111 v1.10.1 and ComfyUI
// (../shared/ref/text/): every public case, compared exactly (floats included).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { chunkA1111, chunkComfy } from '../../src/text/chunking.js';
import { parseExtraNetworks } from '../../src/text/extra-networks.js';
import { parseAttention, promptSchedule, splitAnd, type AttentionSegment } from '../../src/text/prompt-a1111.js';
import { escapeImportant, parseParentheses, tokenWeights, unescapeImportant } from '../../src/text/prompt-comfy.js';
import { applyComfyWeights, applyEmphasis, type EmphasisMode } from '../../src/pipelines/conditioning.js';
import { testTokenizer } from '../pipelines/models.js';
import { HAS_REF, REF, refTests } from '../ref.js';
import type { A1111Case, ComfyCase, ComfyWeightingCase, EmphasisCase, RefChunks } from './ref-types.js';

const test = refTests('prompt syntax parity against the reference vectors');

type Err = { error: string; message: string };
const isErr = (v: unknown): v is Err => typeof v === 'object' && v !== null && 'error' in v;
/** The reference writes non-finite floats as strings. */
const num = (v: number | string): number => (typeof v === 'number' ? v : v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : -Infinity);
const pairs = (xs: [string, number | string][]): AttentionSegment[] => xs.map(([t, w]) => [t, num(w)]);

function outcome<T>(f: () => T): T | Err {
  try {
    return f();
  } catch (e) {
    return { error: (e as Error).name, message: (e as Error).message };
  }
}

const a1111 = HAS_REF ? JSON.parse(await readFile(`${REF}/text/a1111_public.json`, 'utf8')) as { cases: A1111Case[] } : { cases: [] };
const comfy = HAS_REF ? JSON.parse(await readFile(`${REF}/text/comfy_public.json`, 'utf8')) as { cases: ComfyCase[] } : { cases: [] };

test(`A1111 parse_prompt_attention: ${a1111.cases.length} public cases`, () => {
  for (const c of a1111.cases) {
    const got = outcome(() => parseAttention(c.prompt));
    if (isErr(c.attention)) assert.deepEqual(got, c.attention, c.prompt);
    else assert.deepEqual(got, pairs(c.attention as [string, number | string][]), c.prompt);
  }
});

test('A1111 prompt schedules at 10/20/30 steps, hires (20+10) and old timelines', () => {
  let n = 0;
  for (const c of a1111.cases) {
    for (const steps of ['10', '20', '30']) {
      assert.deepEqual(promptSchedule(c.prompt, Number(steps)), c.schedules[steps], `${JSON.stringify(c.prompt)} @${steps}`);
      n++;
    }
    assert.deepEqual(promptSchedule(c.prompt, 20, { hiresSteps: 10 }), c.schedules_hires.base20_hires10, `${c.prompt} hires`);
    assert.deepEqual(promptSchedule(c.prompt, 20, { hiresSteps: undefined, useOldScheduling: true }), c.schedules_hires.old_scheduling_20, `${c.prompt} old`);
    n += 2;
  }
  console.log(`  ${n} schedules identical`);
});

test('A1111 AND split (multicond) and extra networks', () => {
  for (const c of a1111.cases) {
    const m = splitAnd(c.prompt);
    assert.deepEqual({ indexes: m.indexes, flat: m.flat }, c.multicond, c.prompt);
    const x = parseExtraNetworks(c.prompt);
    const networks = Object.fromEntries(Object.entries(x.networks).map(([k, v]) => [k, v.map((p) => p.items)]));
    assert.deepEqual({ prompt: x.prompt, networks }, c.extra_networks, c.prompt);
  }
});

test('A1111 tokenize_line chunks, comma backtrack 20 and 0, and the 20-step pipeline', async () => {
  const tok = await testTokenizer();
  let chunks = 0;
  for (const c of a1111.cases) {
    for (const [key, backtrack] of [['backtrack20', 20], ['backtrack0', 0]] as const) {
      const want = c.chunks[key];
      const got = outcome(() => {
        const r = chunkA1111(tok, c.prompt, { commaBacktrack: backtrack });
        return { token_count: r.tokenCount, chunks: r.chunks.map((k) => ({ tokens: k.tokens, multipliers: k.multipliers })) };
      });
      assert.deepEqual(got, want, `${JSON.stringify(c.prompt)} ${key}`);
      if (!isErr(want)) chunks += (want as RefChunks).chunks.length;
    }
    const pipeline = outcome(() => {
      const { indexes, flat } = splitAnd(parseExtraNetworks(c.prompt).prompt);
      return indexes.map(([i, weight]) => ({
        subprompt: flat[i], weight,
        schedule: promptSchedule(flat[i], 20).map(([end, text]) => ({
          end_at_step: end, text, chunks: chunkA1111(tok, text).chunks.map((k) => ({ tokens: k.tokens, multipliers: k.multipliers })),
        })),
      }));
    });
    assert.deepEqual(pipeline, c.pipeline_steps20, `${JSON.stringify(c.prompt)} pipeline`);
  }
  console.log(`  ${chunks} chunks identical`);
});

test(`ComfyUI weights and tokenize_with_weights: ${comfy.cases.length} public cases`, async () => {
  const tok = await testTokenizer();
  for (const c of comfy.cases) {
    const escaped = escapeImportant(c.prompt);
    assert.equal(escaped, c.escaped, c.prompt);
    assert.deepEqual(parseParentheses(escaped), c.parse_parentheses, c.prompt);
    const tw = tokenWeights(escaped, 1.0);
    assert.deepEqual(tw, pairs(c.token_weights), c.prompt);
    assert.deepEqual(tw.map(([t, w]) => [unescapeImportant(t), w]), pairs(c.segments), c.prompt);
    const batches = chunkComfy(tok, c.prompt);
    assert.deepEqual(batches.map((b) => b.map(([t, w, id]) => [t, w, id])), c.tokenize_with_weights.map((b) => b.map(([t, w, id]) => [t, num(w), id])), c.prompt);
  }
});

test('A1111 emphasis Original / No norm / Ignore on the synthetic hidden states (float64 exact to 1e-12, float32 to 1 ulp)', async () => {
  const ref = JSON.parse(await readFile(`${REF}/text/a1111_emphasis_public.json`, 'utf8')) as { cases: EmphasisCase[] };
  let worst32 = 0;
  let worst64 = 0;
  for (const c of ref.cases) {
    const z0 = (c.z as number[][][]).flat(2);
    const W = c.z[0][0].length;
    for (const [name, mode] of [['Original', 'original'], ['No norm', 'no-norm'], ['Ignore', 'ignore'], ['None', 'off']] as [string, EmphasisMode][]) {
      const want = (c.outputs[name] as number[][][]).flat(2);
      const f32 = c.dtype === 'float32';
      const z = f32 ? Float32Array.from(z0) : Float64Array.from(z0);
      applyEmphasis(z, [c.multipliers], W, mode, f32);
      for (let i = 0; i < z.length; i++) {
        const d = Math.abs(z[i] - want[i]) / Math.max(1e-30, Math.abs(want[i]));
        if (f32) worst32 = Math.max(worst32, d);
        else worst64 = Math.max(worst64, d);
      }
    }
  }
  console.log(`  worst relative error: float64 ${worst64.toExponential(2)}, float32 ${worst32.toExponential(2)}`);
  assert.ok(worst64 < 1e-12, `float64 ${worst64}`);
  assert.ok(worst32 < 2.4e-7, `float32 ${worst32}`);
});

test('ComfyUI encode_token_weights interpolation towards the empty prompt (exact, float64)', async () => {
  const ref = JSON.parse(await readFile(`${REF}/text/comfy_weighting_public.json`, 'utf8')) as { cases: ComfyWeightingCase[] };
  const E = (tokens: number[]) => tokens.map((tk, p) => Array.from({ length: 4 }, (_, ch) => Math.sin(0.001 * tk + 0.37 * p + 1.3 * ch)));
  for (const c of ref.cases) {
    const sections = c.token_weight_pairs as [number, number][][];
    const empty = Float64Array.from(E(c.empty_tokens).flat());
    const hasWeights = sections.some((s) => s.some(([, w]) => w !== 1));
    const out: number[] = [];
    for (const s of sections) {
      const z = Float64Array.from(E(s.map(([t]) => t)).flat());
      if (hasWeights) applyComfyWeights(z, empty, s.map(([, w]) => w), 4, false);
      out.push(...z);
    }
    assert.deepEqual(out, (c.output as number[][][]).flat(2));
  }
});
