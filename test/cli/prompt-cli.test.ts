// `latentkit prompt --json` against the reference vectors (a representative subset: one process per
// prompt), and `generate` with long prompts, embeddings (one of them hostile) and wildcards.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readPngText } from '../../src/formats/png-text.js';
import { parseParameters } from '../../src/pipelines/parameters.js';
import { main } from '../../src/cli/main.js';
import { CLIP_DIR, HAS_REF, REF, refTests } from '../ref.js';
import type { A1111Case, ComfyCase, RefChunks, TokenizerCase } from '../text/ref-types.js';
import { copyHostile, tempDir, writePt } from '../text/ti-fixtures.js';

const test = refTests('CLI prompt against the reference prompt vectors', [REF, CLIP_DIR]);

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const vocab = CLIP_DIR;
const tiny = `${REF}/ckpt/tiny-sd1.safetensors`;

function cli(...args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { env: { ...process.env, LATENTKIT_CLIP_VOCAB: '' } });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('close', (code) => resolve({ code, out, err }));
  });
}

async function pool<T, R>(items: readonly T[], n: number, f: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await f(items[i]);
    }
  }));
  return out;
}

/**
 * Runs the CLI entry (`main`, the same code `latentkit` runs) in this process and captures what
 * it prints, so every reference case goes through the command without a process per prompt.
 */
async function inProcess(...args: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  const before = process.exitCode;
  console.log = (...a: unknown[]) => { lines.push(a.join(' ')); };
  try {
    process.exitCode = 0;
    await main(['node', 'latentkit', ...args]);
    return { code: Number(process.exitCode ?? 0), out: lines.join('\n') };
  } finally {
    console.log = log;
    process.exitCode = before;
  }
}

const num = (v: number | string) => (typeof v === 'number' ? v : Number(v));
const parseOut = (out: string) => JSON.parse(out, (_k, v) => (v === 'Infinity' || v === '-Infinity' || v === 'NaN' ? Number(v) : v));

function checkA1111(c: A1111Case, r: { code: number | null; out: string }): void {
  const got = JSON.parse(r.out);
  const chunksWant = c.chunks.backtrack20;
  assert.deepEqual(got.attention, c.attention, c.prompt);
  assert.deepEqual(got.schedule, c.schedules['20'], c.prompt);
  if ('error' in chunksWant) {
    assert.deepEqual(got.chunks, chunksWant, c.prompt);
    assert.equal(r.code, 1);
  } else {
    assert.deepEqual(got.chunks, (chunksWant as RefChunks).chunks, c.prompt);
    assert.equal(got.tokenCount, (chunksWant as RefChunks).token_count, c.prompt);
    assert.equal(r.code, 0);
  }
}

function checkComfy(c: ComfyCase, r: { code: number | null; out: string }): void {
  assert.equal(r.code, 0);
  const got = parseOut(r.out);
  assert.deepEqual(got.weights.map(([t, w]: [string, number]) => [t, w]), c.token_weights.map(([t, w]) => [t, num(w)]), c.prompt);
  const want = c.tokenize_with_weights.map((b) => ({ tokens: b.map(([t]) => t), multipliers: b.map(([, w]) => num(w)) }));
  assert.deepEqual(got.chunks, want, c.prompt);
}

const readRef = async <T>(rel: string, empty: T): Promise<T> => (HAS_REF ? JSON.parse(await readFile(`${REF}/${rel}`, 'utf8')) as T : empty);
const a1111 = await readRef<{ cases: A1111Case[] }>('text/a1111_public.json', { cases: [] });
const comfy = await readRef<{ cases: ComfyCase[] }>('text/comfy_public.json', { cases: [] });
const tokCases = (await readRef<{ cases: TokenizerCase[] }>('text/tokenizer_public.json', { cases: [] })).cases;

test(`latentkit prompt --json: all ${a1111.cases.length} A1111, ${comfy.cases.length} ComfyUI and ${tokCases.length} raw public cases through the command`, async () => {
  for (const c of a1111.cases) checkA1111(c, await inProcess('prompt', '--vocab', vocab, '--json', '--steps', '20', '--', c.prompt));
  for (const c of comfy.cases) checkComfy(c, await inProcess('prompt', '--vocab', vocab, '--json', '--syntax', 'comfy', '--', c.prompt));
  for (const c of tokCases) assert.deepEqual(JSON.parse((await inProcess('prompt', '--vocab', vocab, '--raw', '--json', '--', c.text)).out), { ids: c.ids }, c.text);
});

test('latentkit prompt --json as a separate process, on a representative subset', async () => {
  const pick = <C extends { prompt: string }>(cases: C[], re: RegExp) => cases.filter((c) => re.test(c.prompt));
  const aCases = pick(a1111.cases, /^\(word:1\.2\.3\)$|^a photo BREAK a painting$|^\[a\|\[b:c:4\]\]$|^cat : 2 AND dog : -1$|^\(masterpiece:1\.2\), best|^word word/).slice(0, 8);
  const cCases = pick(comfy.cases, /^\(word:(inf|nan|1_000|-0\.0)\)$|^\(tag0|^\\\(escaped/);
  const [ra, rc] = await Promise.all([
    pool(aCases, 3, (c) => cli('prompt', '--vocab', vocab, '--json', '--', c.prompt)),
    pool(cCases, 3, (c) => cli('prompt', '--vocab', vocab, '--json', '--syntax', 'comfy', '--', c.prompt)),
  ]);
  ra.forEach((r, i) => checkA1111(aCases[i], r));
  rc.forEach((r, i) => checkComfy(cCases[i], r));
  assert.ok(aCases.length >= 6 && cCases.length >= 5, `${aCases.length} + ${cCases.length}`);
  console.log(`  ${aCases.length} A1111 and ${cCases.length} ComfyUI cases in their own processes`);
});

test('latentkit prompt prints the token counter, weights and schedule', async () => {
  const r = await cli('prompt', '--vocab', vocab, '--steps', '10', 'a (red:1.2) [cat:dog:0.5]');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^tokens: 3\/75\n/);
  assert.match(r.out, /steps 1-5: "a \(red:1\.2\) cat"\n {2}steps 6-10: "a \(red:1\.2\) dog"/);
  assert.match(r.out, /chunk 1: 3 tokens: a red\(1\.2\) dog/);
});

test('generate: a long prompt, an embedding trigger, a hostile embedding file and a wildcard', async () => {
  const dir = await tempDir('lk-gen-ti-');
  const emb = join(dir, 'emb');
  const wild = join(dir, 'wild');
  await mkdir(emb);
  await mkdir(wild);
  await writePt(emb, 'shinyfox.pt', Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)), 2, 32);
  const hostile = await copyHostile(emb, 'trap.pt');
  await writeFile(join(wild, 'place.txt'), 'forest\n');
  const out = join(dir, 'x.png');
  const long = `${Array.from({ length: 90 }, (_, i) => `tag${i % 9}`).join(' ')}, shinyfox in a __place__, trap`;
  const r = await cli('generate', '-m', tiny, '-p', long, '-n', '(blurry:1.3)', '--unet-heads', '2', '--text-heads', '2', '-W', '32', '-H', '32',
    '--steps', '2', '--seed', '3', '--clip-vocab', vocab, '--embeddings', emb, '--wildcards', wild, '--emphasis', 'none', '-o', out);
  assert.equal(r.code, 0, r.err);
  assert.ok(r.err.includes(hostile) && /posix\.system/.test(r.err), r.err);
  const params = parseParameters(readPngText(await readFile(out)).parameters);
  assert.ok(params.prompt.endsWith('shinyfox in a forest, trap'), params.prompt);
  assert.match(params.fields['TI hashes'], /^shinyfox: [0-9a-f]{12}$/);
  assert.equal(params.fields.Emphasis, 'No norm');
});
