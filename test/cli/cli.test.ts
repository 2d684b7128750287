import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { readPngText } from '../../src/formats/png-text.js';
import { parseParameters } from '../../src/pipelines/parameters.js';
import { CLIP_DIR, REF, refTests } from '../ref.js';

const test = refTests('CLI generate / pnginfo / inspect on tiny-sd1', [REF, CLIP_DIR]);

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const tiny = `${REF}/ckpt/tiny-sd1.safetensors`;

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { encoding: 'utf8', env: { ...process.env, LATENTKIT_CLIP_VOCAB: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('generate writes a PNG whose metadata pnginfo prints back, and a ComfyUI latent', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-cli-'));
  const out = join(dir, 'fox.png');
  const r = cli('generate', '-m', tiny, '-p', 'a red fox, (snow:1.2)', '-n', 'blurry', '--unet-heads', '2', '--text-heads', '2',
    '-W', '64', '-H', '48', '--steps', '4', '--seed', '7', '--sampler', 'DPM++ 2M Karras', '-o', out, '--save-latent', join(dir, 'fox.latent'));
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, new RegExp(`wrote ${out.replace(/[.]/g, '\\.')} \\(seed 7\\)`));
  const params = parseParameters(readPngText(await readFile(out)).parameters);
  assert.equal(params.prompt, 'a red fox, (snow:1.2)');
  assert.equal(params.negativePrompt, 'blurry');
  assert.deepEqual({ ...params.fields, Version: undefined, 'Model hash': undefined }, {
    Steps: '4', Sampler: 'DPM++ 2M', 'Schedule type': 'Karras', 'CFG scale': '7', Seed: '7', Size: '64x48', Model: 'tiny-sd1',
    Version: undefined, 'Model hash': undefined,
  });
  assert.equal(params.fields['Model hash'], '50eb1e23c5');
  const info = cli('pnginfo', out);
  assert.equal(info.code, 0);
  assert.match(info.out, /^a red fox, \(snow:1\.2\)\nNegative prompt: blurry\nSteps: 4, Sampler: DPM\+\+ 2M, Schedule type: Karras/);
  const latent = await openSafetensors(join(dir, 'fox.latent'));
  assert.deepEqual(latent.info('latent_tensor')?.shape, [1, 4, 6, 8]);
  await latent.close();
  // the same request again never overwrites: a -1 suffix is added
  const again = cli('generate', '-m', tiny, '-p', 'x', '--unet-heads', '2', '--text-heads', '2', '-W', '64', '-H', '64', '--steps', '1', '--seed', '1', '-o', out);
  assert.equal(again.code, 0, again.err);
  assert.deepEqual((await readdir(dir)).sort(), ['fox-1.png', 'fox.latent', 'fox.png']);
});

test('bad input ends in one clear line and a non-zero exit', () => {
  const cases: [string[], RegExp][] = [
    [['generate', '-m', '/no/such.safetensors', '-p', 'x'], /^latentkit: \/no\/such\.safetensors: no such file or folder\n$/],
    [['generate', '-m', tiny, '-p', 'x', '--sampler', 'eulr'], /^latentkit: unknown sampler "eulr"; did you mean .*"euler"/],
    [['generate', '-m', tiny, '-p', 'x', '-W', '63'], /^latentkit: width must be a multiple of 8/],
    [['generate', '-m', tiny, '-p', 'x', '--steps', '0'], /--steps must be an integer from 1 to 1000, got '0'/],
    [['generate', '-m', tiny, '-p', 'x', '--rng', 'quantum'], /argument 'quantum' is invalid. Allowed choices are cpu, gpu, nv/],
    [['generate', '-m', tiny, '-p', 'x'], /^latentkit: .*tiny-sd1\.safetensors: text encoder width 32 is not a multiple of CLIP's 64-wide heads; give the head count \(--text-heads N\)\n$/],
    [['generate', '-m', tiny, '-p', 'x', '--profile', 'comfy', '--rng', 'gpu', '--unet-heads', '2', '--text-heads', '2'], /^latentkit: rng 'gpu': the comfy profile draws noise with torch's CPU generator only/],
    [['pnginfo', tiny], /^latentkit: .*tiny-sd1\.safetensors: not a PNG file\n$/],
  ];
  for (const [args, want] of cases) {
    const r = cli(...args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.err, want, `${args.join(' ')} → ${r.err}`);
  }
});

test('inspect lists tensors without loading weights', () => {
  const r = cli('inspect', tiny);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /cond_stage_model\.transformer\.text_model\.embeddings\.position_ids\ti64\t\[1, 77\]/);
  assert.match(r.out, /553 tensors/);
});
