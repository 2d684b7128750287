import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { readPngText } from '../../src/formats/png-text.js';
import { parseParameters } from '../../src/pipelines/parameters.js';
import { CLIP_DIR, REF, refTests } from '../ref.js';
import { rectMask, testPicture, writePng } from '../pipelines/img2img-fixtures.js';

const test = refTests('CLI img2img / inpaint / outpaint on tiny-sd1', [REF, CLIP_DIR]);

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const tiny = `${REF}/ckpt/tiny-sd1.safetensors`;
const heads = ['--unet-heads', '2', '--text-heads', '2'];

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { encoding: 'utf8', env: { ...process.env, LATENTKIT_CLIP_VOCAB: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('img2img, inpaint and outpaint write PNGs with A1111 metadata; generate takes --hires-*', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-i2i-'));
  const image = join(dir, 'in.png');
  const mask = join(dir, 'mask.png');
  await writePng(image, testPicture(48, 40));
  await writePng(mask, rectMask(48, 40, 8, 8, 24, 24));
  const common = ['-m', tiny, ...heads, '-p', 'a fox', '--steps', '3', '--seed', '5'];

  const a = cli('img2img', ...common, '--image', image, '--strength', '0.5', '-o', join(dir, 'a.png'));
  assert.equal(a.code, 0, a.err);
  assert.match(a.out, /wrote .*a\.png \(seed 5\)/);
  const fa = parseParameters(readPngText(await readFile(join(dir, 'a.png'))).parameters).fields;
  assert.deepEqual([fa.Size, fa['Denoising strength']], ['48x40', '0.5']);

  const b = cli('inpaint', ...common, '--image', image, '--mask', mask, '--mask-blur', '2', '--inpaint-area', 'masked', '--only-masked-padding', '4', '--masked-content', 'fill', '-o', join(dir, 'b.png'));
  assert.equal(b.code, 0, b.err);
  const fb = parseParameters(readPngText(await readFile(join(dir, 'b.png'))).parameters).fields;
  assert.deepEqual([fb['Mask blur'], fb['Inpaint area'], fb['Masked area padding'], fb['Masked content']], ['2', 'Only masked', '4', 'fill']);

  const c = cli('outpaint', ...common, '--image', image, '--right', '16', '--top', '4', '--feather', '8', '-o', join(dir, 'c.png'));
  assert.equal(c.code, 0, c.err);
  const meta = await sharp(join(dir, 'c.png')).metadata();
  assert.deepEqual([meta.width, meta.height], [64, 48], 'padding grown so the size is a multiple of 8');

  const d = cli('generate', ...common, '-W', '32', '-H', '32', '--hires-scale', '2', '--hires-steps', '2', '--hires-denoise', '0.6', '--hires-upscaler', 'Latent (nearest)', '-o', join(dir, 'd.png'));
  assert.equal(d.code, 0, d.err);
  const fd = parseParameters(readPngText(await readFile(join(dir, 'd.png'))).parameters).fields;
  assert.deepEqual([fd.Size, fd['Denoising strength'], fd['Hires upscale'], fd['Hires steps'], fd['Hires upscaler']], ['32x32', '0.6', '2', '2', 'Latent (nearest)']);
  assert.equal((await sharp(join(dir, 'd.png')).metadata()).width, 64);
});

test('bad image-command input ends in one clear line and a non-zero exit', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-i2i-bad-'));
  const image = join(dir, 'in.png');
  const small = join(dir, 'small.png');
  await writePng(image, testPicture(32, 32));
  await writePng(small, rectMask(16, 16, 0, 0, 8, 8));
  const common = ['-m', tiny, ...heads, '-p', 'x', '--steps', '1'];
  const cases: [string[], RegExp][] = [
    [['img2img', ...common, '--image', join(dir, 'missing.png')], /^latentkit: .*missing\.png: cannot read image \(no such file\)\n$/],
    [['img2img', ...common, '--image', tiny], /^latentkit: .*tiny-sd1\.safetensors: cannot read image \(.*\)\n$/],
    [['img2img', ...common, '--image', image, '--strength', '1.5'], /--strength must be a number from 0 to 1, got '1\.5'/],
    [['inpaint', ...common, '--image', image, '--mask', small], /^latentkit: .*small\.png: the mask is 16x16 but the image is 32x32\n$/],
    [['inpaint', ...common, '--image', image, '--mask', small, '--masked-content', 'blue'], /argument 'blue' is invalid/],
    [['outpaint', ...common, '--image', image], /^latentkit: outpainting needs padding on at least one side/],
    [['generate', ...common, '--hires-steps', '3'], /^latentkit: --hires-steps, --hires-denoise and --hires-upscaler need --hires-scale\n$/],
  ];
  for (const [args, want] of cases) {
    const r = cli(...args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.err, want, `${args.join(' ')} → ${r.err}`);
    assert.equal(r.err.trim().split('\n').length <= 2, true, r.err);
  }
});
