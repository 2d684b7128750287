// `latentkit models …` as a user runs it, against the local stand-in hubs (offline): pull, list, info,
// Ctrl-C during a download, bad input in one line, and `generate` with no -m.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startHub, tinyCheckpointBytes, tinyLoraBytes, type Hub } from '../models/hub-fixture.js';
import { CLIP_DIR, REF, refTests } from '../ref.js';

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
let hub: Hub;
before(async () => {
  hub = await startHub();
  hub.hf.set('acme/tiny/tiny-sd1.safetensors', { bytes: tinyCheckpointBytes() });
  hub.civitai.set('4242', { bytes: tinyLoraBytes(), name: 'tinyfox.safetensors' });
});
after(() => hub.close());

interface Run { code: number | null; signal: NodeJS.Signals | null; out: string; err: string }

/** Runs the CLI with a clean model environment: nothing from the user's own folders leaks in. */
function start(args: string[], home: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, HF_ENDPOINT: hub.hubUrl, LATENTKIT_CIVITAI_ENDPOINT: hub.hubUrl, XDG_DATA_HOME: join(home, 'data'), LATENTKIT_CACHE_DIR: '' };
  delete env.LATENTKIT_MODELS;
  delete env.HF_TOKEN;
  delete env.CIVITAI_API_KEY;
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const done = new Promise<Run>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out, err })));
  return { child, done };
}
const cli = (home: string, ...args: string[]) => start(args, home).done;

test('models pull / list / info: files land in the default folder by kind and describe themselves', async () => {
  const home = await mkdtemp(join(tmpdir(), 'lk-models-'));
  const models = join(home, 'data', 'latentkit', 'models');
  const a = await cli(home, 'models', 'pull', 'hf:acme/tiny/tiny-sd1.safetensors');
  assert.equal(a.code, 0, a.err);
  assert.match(a.out, new RegExp(`^saved ${join(models, 'checkpoints', 'tiny-sd1.safetensors').replace(/[.]/g, '\\.')} \\(SD1 checkpoint eps-prediction; received \\d+ bytes; sha256 verified [0-9a-f]{64}\\)\n$`));
  const b = await cli(home, 'models', 'pull', 'civitai:4242');
  assert.equal(b.code, 0, b.err);

  const list = await cli(home, 'models', 'list');
  assert.equal(list.code, 0, list.err);
  assert.match(list.out, /^checkpoints:\n {2}tiny-sd1\.safetensors {2}SD1 {2}checkpoint {2}eps {2}\d+\.\d+ KB {2}[0-9a-f]{10}\nloras:\n {2}tinyfox\.safetensors {2}SD1 {2}LoRA {2}— {2}/m);
  const json = JSON.parse((await cli(home, 'models', 'list', '--json')).out) as Array<{ name: string; kind: string; family: string; autoV2: string }>;
  assert.deepEqual(json.map((e) => [e.name, e.kind, e.family]), [['tiny-sd1.safetensors', 'checkpoints', 'SD1'], ['tinyfox.safetensors', 'loras', 'SD1']]);

  const info = await cli(home, 'models', 'info', 'tinyfox');
  assert.equal(info.code, 0, info.err);
  assert.match(info.out, /^kind: loras \(LoRA\)$/m);
  assert.match(info.out, /^family: SD1$/m);
  assert.match(info.out, /^components: unet, text encoder$/m);
  assert.match(info.out, /^trigger words: tinyfox, red fur, snow$/m);
  assert.match(info.out, /^ {2}ss_network_dim: 2$/m);
  assert.match(info.out, /^AutoV2: [0-9a-f]{10} {3}legacy: [0-9a-f]{8} {3}addnet: [0-9a-f]{12}$/m);
  const ckInfo = JSON.parse((await cli(home, 'models', 'info', join(models, 'checkpoints', 'tiny-sd1.safetensors'), '--json')).out) as Record<string, unknown>;
  assert.equal(ckInfo.family, 'SD1');
  assert.deepEqual(ckInfo.modelspec, { 'modelspec.architecture': 'stable-diffusion-v1', 'modelspec.title': 'tiny test checkpoint' });
});

test('Ctrl-C during a download keeps the .part, says so in one line and exits 130', async () => {
  const home = await mkdtemp(join(tmpdir(), 'lk-models-int-'));
  hub.hf.set('acme/tiny/slow.safetensors', { bytes: tinyCheckpointBytes(9) });
  hub.stall.add('hf/acme/tiny/main/slow.safetensors');
  const part = join(home, 'data', 'latentkit', 'models', '.downloads', 'slow.safetensors.part');
  const { child, done } = start(['models', 'pull', 'hf:acme/tiny/slow.safetensors'], home);
  for (let i = 0; i < 200 && !(existsSync(part) && (await stat(part)).size > 0); i++) await sleep(50);
  const size = (await stat(part)).size;
  assert.ok(size > 0);
  child.kill('SIGINT');
  const r = await done;
  hub.stall.clear();
  assert.equal(r.code, 130, r.err);
  assert.equal(r.err.trim().split('\n').length, 1, r.err);
  assert.match(r.err, new RegExp(`^latentkit: interrupted: ${size} bytes kept in ${part.replace(/[.]/g, '\\.')}; run the same command to resume`));
  assert.equal((await stat(part)).size, size);
  assert.ok(!existsSync(join(home, 'data', 'latentkit', 'models', 'checkpoints', 'slow.safetensors')));
  const again = await cli(home, 'models', 'pull', 'hf:acme/tiny/slow.safetensors');
  assert.equal(again.code, 0, again.err);
  assert.match(again.out, new RegExp(`resumed from ${size}; sha256 verified`));
});

test('bad input: one line, exit 1, nothing written', async () => {
  const home = await mkdtemp(join(tmpdir(), 'lk-models-bad-'));
  const cases: Array<[string[], RegExp]> = [
    [['models', 'pull', 'dropbox:abc'], /^latentkit: unknown source 'dropbox:abc': use hf:OWNER\/REPO\/FILE\[@REVISION\], civitai:MODEL_VERSION_ID, an http\(s\):\/\/ URL, or one of sd15, sd21, sd21-base, sdxl, sdxl-refiner, sdxl-vae, taesd\n$/],
    [['models', 'pull', 'hf:acme/tiny/nope.safetensors'], /^latentkit: .*HTTP 404.*no such file/],
    [['models', 'info', 'nothing-here'], /^latentkit: nothing-here: no such file, and no model of that name in /],
    [['models', 'pull', 'sd15', '--kind', 'shoes'], /error: option '--kind <kind>' argument 'shoes' is invalid/],
  ];
  for (const [args, want] of cases) {
    const r = await cli(home, ...args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.err, want, args.join(' '));
  }
  const list = await cli(home, 'models', 'list');
  assert.match(list.out, /^no models in .*; fetch one with: latentkit models pull sd15\n$/);
});

test('generate without -m: one line naming the command that fetches a checkpoint', async () => {
  const home = await mkdtemp(join(tmpdir(), 'lk-models-gen-'));
  const r = await cli(home, 'generate', '-p', 'a fox');
  assert.equal(r.code, 1);
  assert.equal(r.err, `latentkit: no -m given and no checkpoint in ${join(home, 'data', 'latentkit', 'models')}; fetch one with: latentkit models pull sd15\n`);
});

const refTest = refTests('generate with the only checkpoint of the models folder (tiny-sd1)', [REF, CLIP_DIR]);
refTest('generate without -m uses the only checkpoint there; with two it asks for -m', async () => {
  const home = await mkdtemp(join(tmpdir(), 'lk-models-gen1-'));
  const ckpts = join(home, 'data', 'latentkit', 'models', 'checkpoints');
  await mkdir(ckpts, { recursive: true });
  await copyFile(join(REF, 'ckpt', 'tiny-sd1.safetensors'), join(ckpts, 'tiny-sd1.safetensors'));
  const out = join(home, 'fox.png');
  const r = await cli(home, 'generate', '-p', 'a fox', '--unet-heads', '2', '--text-heads', '2', '--clip-vocab', CLIP_DIR, '-W', '32', '-H', '32', '--steps', '1', '--seed', '1', '-o', out);
  assert.equal(r.code, 0, r.err);
  assert.ok(existsSync(out));
  await copyFile(join(REF, 'ckpt', 'tiny-sd1.safetensors'), join(ckpts, 'copy.safetensors'));
  const two = await cli(home, 'generate', '-p', 'a fox');
  assert.match(two.err, /^latentkit: no -m given and 2 checkpoints in .*; choose one with -m NAME/);
});
