import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { rrdbWeights, saveSafetensors, srvggWeights, testImage } from '../models/esrgan-fixtures.js';

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('latentkit upscale: resamplers and model files, tiled; bad input gives one clear line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-up-'));
  try {
    const img = testImage(30, 40, 3);
    const raw = Buffer.alloc(30 * 40 * 3);
    for (let i = 0; i < 30 * 40; i++) for (let c = 0; c < 3; c++) raw[i * 3 + c] = Math.round(img.data[c * 1200 + i] * 255);
    const input = join(dir, 'in.png');
    await sharp(raw, { raw: { width: 40, height: 30, channels: 3 } }).png().toFile(input);
    const model = join(dir, '4x_test.safetensors');
    await saveSafetensors(model, rrdbWeights({ layout: 'esrgan-old', nf: 8, gc: 4, nb: 1, ups: 2 }));
    const compact = join(dir, 'realesr-compact-2x.safetensors');
    await saveSafetensors(compact, srvggWeights({ nf: 8, convs: 2, scale: 2 }));

    let r = cli('upscale', '--image', input, '--scale', '2.5', '--upscaler', 'lanczos', '--out', join(dir, 'l.png'));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /wrote .*l\.png \(100×75, lanczos\)/);
    assert.deepEqual(await sharp(join(dir, 'l.png')).metadata().then((m) => [m.width, m.height]), [100, 75]);

    r = cli('upscale', '-i', input, '-s', '4', '--upscaler-model', model, '--tile', '16', '--overlap', '4', '-o', join(dir, 'm.png'));
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /\(160×120, RRDBNet 4× \(esrgan-old keys, 1 blocks, 8 features, growth 4\)\)/);
    // A 2× model asked for 3×: two passes (2× then 4×), then Lanczos down to 3×, as A1111 does.
    r = cli('upscale', '-i', input, '-s', '3', '--upscaler-model', compact, '-o', join(dir, 'c.webp'));
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(await sharp(join(dir, 'c.webp')).metadata().then((m) => [m.format, m.width, m.height]), ['webp', 120, 90]);

    const bad: [string[], RegExp][] = [
      [['upscale', '-i', input, '-s', '2', '-o', join(dir, 'x.png')], /^latentkit: give exactly one of --upscaler \(lanczos, nearest\) or --upscaler-model FILE\n$/],
      [['upscale', '-i', input, '-s', '2', '--upscaler', 'bicubic', '-o', join(dir, 'x.png')], /argument 'bicubic' is invalid. Allowed choices are lanczos, nearest/],
      [['upscale', '-i', join(dir, 'none.png'), '-s', '2', '--upscaler', 'nearest', '-o', join(dir, 'x.png')], /^latentkit: .*none\.png: no such file\n$/],
      [['upscale', '-i', input, '-s', '2', '--upscaler-model', input, '-o', join(dir, 'x.png')], /^latentkit: .*in\.png: not a checkpoint/],
      [['upscale', '-i', input, '-s', '2', '--upscaler', 'nearest', '-o', join(dir, 'l.png')], /^latentkit: .*l\.png already exists; choose another --out\n$/],
      [['upscale', '-i', input, '-s', '0', '--upscaler', 'nearest', '-o', join(dir, 'x.png')], /--scale must be a number from 0\.01 to 16, got '0'/],
      [['upscale', '-i', input, '-s', '2', '--upscaler', 'nearest', '-o', join(dir, 'x.gif')], /^latentkit: --out .*x\.gif: unknown image type/],
    ];
    for (const [args, want] of bad) {
      const b = cli(...args);
      assert.notEqual(b.code, 0, args.join(' '));
      assert.match(b.err, want, args.join(' '));
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
