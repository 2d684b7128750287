// The CLI on the tiny SDXL base (and refiner) reproduces the comfy-profile end-to-end cases' PNGs
// and latents of ../shared/ref/sdxl/e2e from the seed alone.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { CLIP_DIR, maxRelError, REF, refTests } from '../ref.js';

const test = refTests('CLI generate on tiny SDXL', [join(REF, 'sdxl'), CLIP_DIR]);
const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const SDXL = join(REF, 'sdxl');

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function compare(id: string, png: string, latentFile: string): Promise<void> {
  const got = await sharp(png).raw().toBuffer();
  const want = await sharp(join(SDXL, 'e2e', 'cases', id, 'image_0.png')).raw().toBuffer();
  let within = 0;
  for (let i = 0; i < want.length; i++) if (Math.abs(got[i] - want[i]) <= 2) within++;
  const lat = await openSafetensors(latentFile);
  const ref = await openSafetensors(join(SDXL, 'e2e', 'cases', id, 'tensors.safetensors'));
  const err = maxRelError((await lat.read('latent_tensor')).toFloat32Array(), (await ref.read('comfy_latent_out')).toFloat32Array());
  console.log(`  ${id} (CLI): saved latent ${err.toExponential(2)} (tolerance 1e-3), pixels within ±2 ${(100 * within / want.length).toFixed(2)}%`);
  assert.ok(err <= 1e-3);
  assert.ok(within / want.length >= 0.99);
  await lat.close();
  await ref.close();
}

test('generate --profile comfy with --original-size / --target-size / --crop reproduces sizes-cliptextencodesdxl', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-sdxl-'));
  const r = cli('generate', '-m', join(SDXL, 'ckpt', 'tiny-sdxl.safetensors'), '--clip-vocab', CLIP_DIR, '--profile', 'comfy',
    '-p', 'an isometric floating island with a tiny castle', '-n', 'low quality', '-W', '96', '-H', '64', '--steps', '6', '--cfg', '7.5',
    '--seed', '4242', '--sampler', 'euler_ancestral', '--scheduler', 'normal',
    '--original-size', '1536x1024', '--target-size', '768x1152', '--crop', '32x64', '-o', join(dir, 'a.png'), '--save-latent', join(dir, 'a.latent'));
  assert.equal(r.code, 0, r.err);
  await compare('sizes-cliptextencodesdxl', join(dir, 'a.png'), join(dir, 'a.latent'));
});

test('generate --refiner --refiner-switch-at 0.8 reproduces the KSamplerAdvanced hand-off', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-sdxl-'));
  const r = cli('generate', '-m', join(SDXL, 'ckpt', 'tiny-sdxl.safetensors'), '--clip-vocab', CLIP_DIR, '--profile', 'comfy',
    '--refiner', join(SDXL, 'ckpt', 'tiny-sdxl-refiner.safetensors'), '--refiner-switch-at', '0.8', '--aesthetic-score', '6', '--negative-aesthetic-score', '2.5',
    '-p', 'a cozy reading nook by a rainy window, warm lamp light', '-n', 'text, watermark', '-W', '64', '-H', '128', '--steps', '10', '--cfg', '7',
    '--seed', '777', '--sampler', 'dpmpp_2m', '--scheduler', 'karras', '-o', join(dir, 'h.png'), '--save-latent', join(dir, 'h.latent'));
  assert.equal(r.code, 0, r.err);
  await compare('handoff-base-refiner', join(dir, 'h.png'), join(dir, 'h.latent'));
});
