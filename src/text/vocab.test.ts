import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ClipTokenizer } from './clip-tokenizer.js';
import {
  bytesToUnicode,
  CLIP_GZ_NAME,
  CLIP_VOCAB_ENV,
  ClipVocabError,
  ClipVocabNotFoundError,
  loadClipVocab,
  locateClipVocab,
  readGzVocab,
} from './vocab.js';
import { CLIP_DIR, refTests } from '../../test/ref.js';

const refTest = refTests('CLIP vocabulary search with the reference vocabulary files', [CLIP_DIR]);
const tmp = await fsp.mkdtemp(join(tmpdir(), 'latentkit-vocab-'));
after(() => fsp.rm(tmp, { recursive: true, force: true }));

async function folder(name: string, files: Record<string, string | Buffer>): Promise<string> {
  const dir = join(tmp, name);
  await fsp.mkdir(dir, { recursive: true });
  for (const [f, body] of Object.entries(files)) {
    await fsp.mkdir(join(dir, f, '..'), { recursive: true });
    await fsp.writeFile(join(dir, f), body);
  }
  return dir;
}
const copyFrom = async (f: string): Promise<Buffer> => fsp.readFile(join(CLIP_DIR, f));
const noEnv = {};

test('the byte table has 256 distinct printable symbols, printable bytes first', () => {
  const t = bytesToUnicode();
  assert.equal(t.length, 256);
  assert.equal(new Set(t.map(([, c]) => c)).size, 256);
  assert.deepEqual(t[0], [0x21, '!']);
  assert.deepEqual(t[188], [0, '\u0100']);
  assert.equal(t.find(([b]) => b === 0x20)![1], '\u0120');
});

refTest('search order: explicit path, env, model tokenizer/ folder, model folder, package data', async () => {
  const model = await folder('model-diffusers', {
    'tokenizer/vocab.json': await copyFrom('vocab.json'),
    'tokenizer/merges.txt': await copyFrom('merges.txt'),
    'model_index.json': '{}',
  });
  const single = await folder('model-single', { 'm.safetensors': 'x', [CLIP_GZ_NAME]: await copyFrom(CLIP_GZ_NAME) });

  assert.deepEqual(locateClipVocab({ path: CLIP_DIR, modelPath: model, env: noEnv }), {
    kind: 'hf', vocabJson: join(CLIP_DIR, 'vocab.json'), mergesTxt: join(CLIP_DIR, 'merges.txt'),
  });
  assert.deepEqual(locateClipVocab({ modelPath: model, env: { [CLIP_VOCAB_ENV]: join(single, CLIP_GZ_NAME) } }), {
    kind: 'gz', path: join(single, CLIP_GZ_NAME),
  });
  assert.equal((locateClipVocab({ modelPath: model, env: noEnv }) as { vocabJson: string }).vocabJson, join(model, 'tokenizer', 'vocab.json'));
  // A single-file checkpoint: its folder is searched.
  assert.deepEqual(locateClipVocab({ modelPath: join(single, 'm.safetensors'), env: noEnv, packageDataDir: null }), {
    kind: 'gz', path: join(single, CLIP_GZ_NAME),
  });
  // The explicit path may name a model folder, a vocab.json or merges.txt file, or the .gz.
  assert.equal(locateClipVocab({ path: model, env: noEnv }).kind, 'hf');
  assert.equal(locateClipVocab({ path: join(CLIP_DIR, 'merges.txt'), env: noEnv }).kind, 'hf');
  assert.equal(locateClipVocab({ path: join(CLIP_DIR, CLIP_GZ_NAME), env: noEnv }).kind, 'gz');
  // Last resort: the package's data folder.
  assert.equal(locateClipVocab({ env: noEnv, packageDataDir: CLIP_DIR }).kind, 'hf');
  const tok = await ClipTokenizer.load({ modelPath: model, env: noEnv });
  assert.deepEqual(tok.encode('a photo of a cat'), [320, 1125, 539, 320, 2368]);
});

test('nothing found: one error that lists every place and says how to provide it', async () => {
  const empty = await folder('empty-model', { 'model.safetensors': 'x' });
  const dataDir = join(tmp, 'no-data');
  let err: unknown;
  try {
    locateClipVocab({ modelPath: join(empty, 'model.safetensors'), env: noEnv, packageDataDir: dataDir });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ClipVocabNotFoundError);
  const msg = err.message;
  for (const place of ['clipVocab option: not given', `$${CLIP_VOCAB_ENV}: not set`, join(empty, 'tokenizer'), empty, dataDir]) {
    assert.ok(msg.includes(place), `message names ${place}:\n${msg}`);
  }
  assert.match(msg, /--clip-vocab/);
  assert.match(msg, new RegExp(`${CLIP_VOCAB_ENV}=/path/to/folder`));
  assert.match(msg, /vocab\.json and merges\.txt/);
  assert.equal(err.searched.length, 5);
  await assert.rejects(ClipTokenizer.load({ env: noEnv, packageDataDir: null }), ClipVocabNotFoundError);
});

refTest('a wrong explicit path or env value is an error, not silently replaced', async () => {
  const model = await folder('model-ok', { 'tokenizer/vocab.json': await copyFrom('vocab.json'), 'tokenizer/merges.txt': await copyFrom('merges.txt') });
  const missing = join(tmp, 'nowhere');
  assert.throws(() => locateClipVocab({ path: missing, modelPath: model, env: noEnv }), (e: Error) =>
    e instanceof ClipVocabNotFoundError && e.message.includes(`${missing} does not exist`));
  assert.throws(() => locateClipVocab({ modelPath: model, env: { [CLIP_VOCAB_ENV]: tmp } }), (e: Error) =>
    e instanceof ClipVocabNotFoundError && e.message.includes(`$${CLIP_VOCAB_ENV}: ${tmp}`));
  const lone = await folder('lone', { 'vocab.json': '{}' });
  assert.throws(() => locateClipVocab({ path: join(lone, 'vocab.json'), env: noEnv }), /not both beside it/);
  await assert.rejects(ClipTokenizer.load(missing), ClipVocabNotFoundError);
});

test('damaged vocabulary files are reported with the file name', async () => {
  const badJson = await folder('bad-json', { 'vocab.json': '{"a": 1,', 'merges.txt': '#version: 0.2\n' });
  await assert.rejects(loadClipVocab({ path: badJson, env: noEnv }), (e: Error) =>
    e instanceof ClipVocabError && e.message.startsWith(join(badJson, 'vocab.json')));
  const noSpecials = await folder('no-specials', { 'vocab.json': '{"a": 0}', 'merges.txt': '' });
  await assert.rejects(loadClipVocab({ path: noSpecials, env: noEnv }), /no <\|startoftext\|> token/);
  const badMerge = await folder('bad-merge', {
    'vocab.json': JSON.stringify({ a: 0, b: 1, '<|startoftext|>': 2, '<|endoftext|>': 3 }),
    'merges.txt': '#version: 0.2\na b c\n',
  });
  await assert.rejects(loadClipVocab({ path: badMerge, env: noEnv }), new RegExp(`merges\\.txt:2: expected "first second"`));
  const unknownMerge = await folder('unknown-merge', {
    'vocab.json': JSON.stringify({ a: 0, b: 1, '<|startoftext|>': 2, '<|endoftext|>': 3 }),
    'merges.txt': '#version: 0.2\na b\n',
  });
  await assert.rejects(loadClipVocab({ path: unknownMerge, env: noEnv }), /makes a token missing/);
  const notGz = await folder('not-gz', { [CLIP_GZ_NAME]: 'plain text' });
  await assert.rejects(readGzVocab(join(notGz, CLIP_GZ_NAME)), /cannot gunzip/);
  const shortGz = await folder('short-gz', { [CLIP_GZ_NAME]: gzipSync('header\na b\n') });
  await assert.rejects(readGzVocab(join(shortGz, CLIP_GZ_NAME)), /expected at least 48895/);
});
