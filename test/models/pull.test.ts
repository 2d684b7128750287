// The model manager's downloads against a local stand-in for Hugging Face and Civitai (offline):
// redirects to another host, resume by Range after a dropped connection, hash checks, credentials,
// and every way a pull can go wrong without losing or half-writing anything.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { openStateDict } from '../../src/formats/open.js';
import { pullModel, type PullOptions } from '../../src/models/manager/pull.js';
import { resolveSource } from '../../src/models/manager/sources.js';
import { startHub, sha256Hex, tinyCheckpointBytes, tinyLoraBytes, type Hub } from './hub-fixture.js';

let hub: Hub;
before(async () => { hub = await startHub(); });
after(() => hub.close());

const env = () => ({ HF_ENDPOINT: hub.hubUrl, LATENTKIT_CIVITAI_ENDPOINT: hub.hubUrl });
const newDir = () => mkdtemp(join(tmpdir(), 'lk-pull-'));
const pull = (modelsDir: string, source: string, o: Partial<PullOptions> = {}) => pullModel({ source, modelsDir, env: env(), ...o });
const ls = async (dir: string) => (await readdir(dir, { recursive: true })).sort();

test('short names and sources resolve to the URLs the hubs use', async () => {
  const e = { HF_ENDPOINT: 'https://hf.example', HF_TOKEN: 't0k' };
  const sd15 = await resolveSource('sd15', e);
  assert.equal(sd15.url, 'https://hf.example/stable-diffusion-v1-5/stable-diffusion-v1-5/resolve/main/v1-5-pruned-emaonly.safetensors');
  assert.equal(sd15.kind, 'checkpoints');
  assert.deepEqual(sd15.headers, { authorization: 'Bearer t0k' });
  const rev = await resolveSource('hf:o/r/sub dir/x.safetensors@v1.0', {});
  assert.equal(rev.url, 'https://huggingface.co/o/r/resolve/v1.0/sub%20dir/x.safetensors');
  assert.equal(rev.fileName, 'x.safetensors');
  assert.equal((await resolveSource('sdxl-vae', {})).kind, 'vae');
  assert.equal((await resolveSource('taesd', {})).fileName, 'taesd.safetensors');
  await assert.rejects(resolveSource('ftp://x/y.ckpt', {}), /^Error: unknown source 'ftp:\/\/x\/y\.ckpt': use hf:OWNER\/REPO\/FILE\[@REVISION\], civitai:MODEL_VERSION_ID, an http\(s\):\/\/ URL, or one of sd15, /);
  await assert.rejects(resolveSource('hf:only/two', {}), /hf:OWNER\/REPO\/PATH\/TO\/FILE/);
  await assert.rejects(resolveSource('civitai:abc', {}), /civitai:MODEL_VERSION_ID/);
});

test('hf: the redirect to the CDN (another origin) is followed without the token; X-Linked-Etag is checked; the kind is told from the tensors', async () => {
  const bytes = tinyCheckpointBytes();
  hub.hf.set('acme/tiny/tiny-sd1.safetensors', { bytes, token: 'hf_secret' });
  const dir = await newDir();
  const r = await pull(dir, 'hf:acme/tiny/tiny-sd1.safetensors', { env: { ...env(), HF_TOKEN: 'hf_secret' } });
  assert.equal(r.path, join(dir, 'checkpoints', 'tiny-sd1.safetensors'));
  assert.equal(r.kind, 'checkpoints');
  assert.equal(r.description.family, 'SD1');
  assert.equal(r.sha256, sha256Hex(bytes));
  assert.equal(r.verified, true);
  assert.deepEqual(await readFile(r.path), Buffer.from(bytes));
  const h = hub.hubHits.at(-1)!;
  const c = hub.cdnHits.at(-1)!;
  assert.equal(h.authorization, 'Bearer hf_secret', 'the hub gets the token');
  assert.equal(c.authorization, undefined, 'the CDN on another origin does not');
  assert.notEqual(new URL(hub.hubUrl).host, new URL(hub.cdnUrl).host);
  assert.deepEqual(await ls(dir), ['.downloads', 'checkpoints', 'checkpoints/tiny-sd1.safetensors']);
});

test('a connection dropped mid-file keeps the .part; the next pull asks for the rest with Range and gets only that', async () => {
  const bytes = tinyCheckpointBytes(2);
  hub.hf.set('acme/tiny/drop.safetensors', { bytes });
  const dir = await newDir();
  const cut = 100_000;
  hub.dropAfter.set('hf/acme/tiny/main/drop.safetensors', cut);
  await assert.rejects(pull(dir, 'hf:acme/tiny/drop.safetensors'), /the connection (broke|closed) after \d+ (bytes|of)/);
  const part = join(dir, '.downloads', 'drop.safetensors.part');
  const kept = (await stat(part)).size;
  assert.ok(kept > 0 && kept <= cut, `kept ${kept}`);
  assert.ok(!existsSync(join(dir, 'checkpoints', 'drop.safetensors')), 'nothing under the final name');

  const r = await pull(dir, 'hf:acme/tiny/drop.safetensors');
  const last = hub.cdnHits.at(-1)!;
  assert.equal(last.range, `bytes=${kept}-`);
  assert.equal(last.sent, bytes.byteLength - kept);
  assert.equal(r.resumedFrom, kept);
  assert.equal(r.received, bytes.byteLength - kept);
  assert.equal(r.sha256, sha256Hex(bytes));
  console.log(`resumed download: ${kept} bytes kept from the broken attempt, ${r.received} of ${bytes.byteLength} fetched on resume, sha256 ${r.sha256.slice(0, 12)}… verified`);
  assert.ok(!existsSync(part));
});

test('a wrong hash deletes the bytes, leaves nothing under the final name, and names both hashes', async () => {
  const bytes = tinyCheckpointBytes(3);
  const lie = 'ab'.repeat(32);
  hub.hf.set('acme/tiny/bad.safetensors', { bytes, stated: lie });
  const dir = await newDir();
  await assert.rejects(pull(dir, 'hf:acme/tiny/bad.safetensors'),
    new RegExp(`sha256 mismatch .*states ${lie}, the download is ${sha256Hex(bytes)}; the download was deleted`));
  assert.deepEqual(await ls(dir), ['.downloads']);
});

test('401 names the variable to set; 404 says no such file; both leave nothing', async () => {
  hub.hf.set('acme/gated/g.safetensors', { bytes: tinyCheckpointBytes(4), token: 'tok' });
  const dir = await newDir();
  await assert.rejects(pull(dir, 'hf:acme/gated/g.safetensors'), /HTTP 401.*set HF_TOKEN to a Hugging Face access token/);
  await assert.rejects(pull(dir, 'hf:acme/gated/missing.safetensors'), /HTTP 404.*no such file/);
  hub.civitai.set('77', { bytes: tinyLoraBytes(), name: 'locked.safetensors', token: 'ck' });
  await assert.rejects(pull(dir, 'civitai:77'), /HTTP 401.*set CIVITAI_API_KEY/);
  await assert.rejects(pull(dir, 'civitai:404404'), /civitai:404404: no such model version/);
  assert.deepEqual(await ls(dir), ['.downloads']);
  const ok = await pull(dir, 'civitai:77', { env: { ...env(), CIVITAI_API_KEY: 'ck' } });
  assert.equal(ok.kind, 'loras');
});

test('civitai: the primary file\'s name and SHA256 from the API; a LoRA lands in loras/', async () => {
  const bytes = tinyLoraBytes();
  hub.civitai.set('12345', { bytes, name: 'tinyfox_v1.safetensors' });
  const dir = await newDir();
  const r = await pull(dir, 'civitai:12345');
  assert.equal(r.path, join(dir, 'loras', 'tinyfox_v1.safetensors'));
  assert.equal(r.description.format, 'LoRA');
  assert.equal(r.description.family, 'SD1');
  assert.equal(r.verified, true);
  hub.civitai.set('999', { bytes, name: 'liar.safetensors', stated: '00'.repeat(32) });
  await assert.rejects(pull(dir, 'civitai:999'), /sha256 mismatch .*states 0{64}/);
  assert.ok(!existsSync(join(dir, 'loras', 'liar.safetensors')));
});

test('a name that exists is refused unless --force; an A1111 install gets its own folder names', async () => {
  hub.plain.set('/files/style.safetensors', { bytes: tinyLoraBytes() });
  const dir = await newDir();
  await writeFile(join(dir, 'placeholder'), '');
  const first = await pull(dir, `${hub.hubUrl}/files/style.safetensors`);
  assert.equal(first.path, join(dir, 'loras', 'style.safetensors'));
  await writeFile(first.path, 'keep me');
  await assert.rejects(pull(dir, `${hub.hubUrl}/files/style.safetensors`), new RegExp(`${first.path.replace(/[.]/g, '\\.')} already exists; pass --force`));
  assert.equal(await readFile(first.path, 'utf8'), 'keep me');
  await pull(dir, `${hub.hubUrl}/files/style.safetensors`, { force: true });
  assert.deepEqual(await readFile(first.path), Buffer.from(tinyLoraBytes()));

  const a1111 = await newDir();
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(a1111, 'models', 'Lora'), { recursive: true });
  const r = await pull(a1111, `${hub.hubUrl}/files/style.safetensors`, { name: 'renamed.safetensors' });
  assert.equal(r.path, join(a1111, 'models', 'Lora', 'renamed.safetensors'));
});

test('a URL that is not a model: an HTML page is refused before anything is written; other bytes are deleted', async () => {
  hub.plain.set('/model-page.safetensors', { bytes: Buffer.from('<html><body>Download</body></html>'), contentType: 'text/html; charset=utf-8' });
  hub.plain.set('/junk.safetensors', { bytes: Buffer.from('this is not a tensor file at all') });
  const dir = await newDir();
  await assert.rejects(pull(dir, `${hub.hubUrl}/model-page.safetensors`), /sent a web page, not a model file/);
  await assert.rejects(pull(dir, `${hub.hubUrl}/junk.safetensors`), /the download is not a model file .*it was deleted/);
  await assert.rejects(pull(dir, `${hub.hubUrl}/files/`), /files: not a model file name .*pass --name FILE/);
  await assert.rejects(pull(dir, `${hub.hubUrl}/files/style.safetensors`, { name: '../evil.safetensors' }), /a file name, not a path/);
  assert.deepEqual(await ls(dir), ['.downloads']);
});

test('a full disk keeps the .part and says so; the next pull resumes from it', async () => {
  const bytes = tinyCheckpointBytes(5);
  hub.hf.set('acme/tiny/full.safetensors', { bytes });
  const dir = await newDir();
  // Like a real disk: what fits is written, then the write fails.
  const room = 50_000;
  let written = 0;
  const write = async (fh: import('node:fs/promises').FileHandle, chunk: Uint8Array) => {
    const fits = Math.min(chunk.byteLength, room - written);
    if (fits > 0) await fh.write(chunk, 0, fits);
    written += fits;
    if (fits < chunk.byteLength) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  };
  await assert.rejects(pull(dir, 'hf:acme/tiny/full.safetensors', { write }), /disk full writing .*full\.safetensors\.part: \d+ bytes kept; free some space/);
  const kept = (await stat(join(dir, '.downloads', 'full.safetensors.part'))).size;
  assert.equal(kept, room);
  const r = await pull(dir, 'hf:acme/tiny/full.safetensors');
  assert.equal(r.resumedFrom, kept);
  assert.equal(r.sha256, sha256Hex(bytes));
});

test('.pt files go through the safe reader; --to-safetensors converts and keeps only the safetensors', async () => {
  const pt = await readFile(fileURLToPath(new URL('../fixtures/pickle/embedding_p5.pt', import.meta.url)));
  hub.plain.set('/emb/crimson.pt', { bytes: pt });
  hub.plain.set('/emb/hostile.ckpt', { bytes: await readFile(fileURLToPath(new URL('../fixtures/pickle/hostile_posix_system.ckpt', import.meta.url))) });
  const dir = await newDir();
  const r = await pull(dir, `${hub.hubUrl}/emb/crimson.pt`, { toSafetensors: true });
  assert.equal(r.kind, 'embeddings');
  assert.equal(r.path, join(dir, 'embeddings', 'crimson.safetensors'));
  assert.equal(r.converted, true);
  const conv = await openSafetensors(r.path);
  const src = await pullModel({ source: `${hub.hubUrl}/emb/crimson.pt`, modelsDir: await newDir(), env: env() });
  const srcSd = await openStateDict(src.path);
  assert.deepEqual(conv.keys().sort(), srcSd.keys().sort());
  for (const k of conv.keys()) assert.deepEqual((await conv.read(k)).toFloat32Array(), (await srcSd.read(k)).toFloat32Array(), k);
  await conv.close();
  await srcSd.close();
  assert.deepEqual(await ls(join(dir, 'embeddings')), ['crimson.safetensors']);
  await assert.rejects(pull(dir, `${hub.hubUrl}/emb/hostile.ckpt`), /not a model file .*it was deleted/);
  assert.ok(!existsSync(join(dir, '.downloads', 'hostile.ckpt.part')));
});
