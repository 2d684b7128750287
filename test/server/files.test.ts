// files.ts and the server host: ComfyUI output naming, Python-style JSON chunks, folder-safe paths,
// image reading, model folder listings and extra_model_paths.yaml.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { readPngText } from '../../src/formats/png-text.js';
import { readExtraModelPaths } from '../../src/server/extra-model-paths.js';
import { ServerHost } from '../../src/server/host.js';
import { expandPrefix, nextCounter, PathError, pythonJson, readImageFile, resolveInside, saveImages } from '../../src/workflow/files.js';
import type { ImageBatch } from '../../src/workflow/types.js';
import { tempRoot } from './helpers.js';

function batch(n: number, w = 4, h = 2, value = 0.5): ImageBatch {
  return { data: new Float32Array(n * w * h * 3).fill(value), batch: n, width: w, height: h, channels: 3 };
}

async function folders() {
  const root = await tempRoot();
  const f = { input: join(root, 'input'), output: join(root, 'output'), temp: join(root, 'temp') };
  for (const d of Object.values(f)) await mkdir(d, { recursive: true });
  return { root, f };
}

test('pythonJson writes what json.dumps writes', () => {
  assert.equal(pythonJson({ a: 1, b: [1.5, 'x', null, true], c: { d: 'é☃😀\u007f"\\\n' } }),
    '{"a": 1, "b": [1.5, "x", null, true], "c": {"d": "\\u00e9\\u2603\\ud83d\\ude00\\u007f\\"\\\\\\n"}}');
  assert.equal(pythonJson(18446744073709551615n), '18446744073709551615');
  assert.equal(pythonJson([]), '[]');
  assert.equal(pythonJson({}), '{}');
});

test('prefix placeholders and the counter rule', () => {
  const d = new Date(2025, 0, 2, 3, 4, 5);
  assert.equal(expandPrefix('run/%year%-%month%-%day%/%hour%%minute%%second%_%width%x%height%', 512, 768, d), 'run/2025-01-02/030405_512x768');
  assert.equal(nextCounter([], ['ComfyUI']), 1);
  assert.equal(nextCounter(['ComfyUI_00001_.png', 'ComfyUI_00007_.png', 'ComfyUI_temp_00099_.png', 'Other_00050_.png', 'ComfyUI_x_.png'], ['ComfyUI']), 8);
  assert.equal(nextCounter(['ComfyUI_123456_.png'], ['ComfyUI']), 123457);
});

test('saveImages: subfolders, counters, batches, chunks, never overwriting, concurrent saves distinct', async () => {
  const { f } = await folders();
  const a = await saveImages(f, { images: batch(2), prefix: 'lk/run/img', type: 'output', pngInfo: { prompt: { 1: { class_type: 'X' } }, workflow: { n: 'é' } } });
  assert.deepEqual(a, [
    { filename: 'img_00001_.png', subfolder: 'lk/run', type: 'output' },
    { filename: 'img_00002_.png', subfolder: 'lk/run', type: 'output' },
  ]);
  const png = await readFile(join(f.output, 'lk/run/img_00002_.png'));
  assert.deepEqual(readPngText(png), { prompt: '{"1": {"class_type": "X"}}', workflow: '{"n": "\\u00e9"}' });
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  assert.equal(data[0], 127, 'ComfyUI truncates 255 × 0.5');
  // a file someone else wrote with a higher counter moves the counter on
  await writeFile(join(f.output, 'lk/run/img_00010_.png'), 'x');
  const b = await saveImages(f, { images: batch(1), prefix: 'lk/run/img', type: 'output' });
  assert.equal(b[0].filename, 'img_00011_.png');
  const batchNum = await saveImages(f, { images: batch(2), prefix: 'b%batch_num%', type: 'output' });
  assert.deepEqual(batchNum.map((x) => x.filename), ['b0_00001_.png', 'b1_00002_.png']);
  const many = await Promise.all(Array.from({ length: 8 }, () => saveImages(f, { images: batch(1), prefix: 'same', type: 'output' })));
  assert.deepEqual(many.map((m) => m[0].filename).sort(), Array.from({ length: 8 }, (_, i) => `same_${String(i + 1).padStart(5, '0')}_.png`));
  assert.ok(!(await readdir(f.output)).some((n) => n.startsWith('.lk-part')), 'no temp files left');
  for (const prefix of ['../escape', '/abs/x', 'a/../../x', 'dir/']) {
    await assert.rejects(saveImages(f, { images: batch(1), prefix, type: 'output' }), PathError, prefix);
  }
  assert.deepEqual((await saveImages(f, { images: batch(1), prefix: 'a/../x', type: 'temp' }))[0], { filename: 'x_00001_.png', subfolder: '', type: 'temp' });
});

test('resolveInside refuses escapes and symlinks out; readImageFile gives RGB and alpha', async () => {
  const { root, f } = await folders();
  await mkdir(join(root, 'outside'));
  await symlink(join(root, 'outside'), join(f.output, 'out'));
  await mkdir(join(f.output, 'real'));
  await symlink(join(f.output, 'real'), join(f.output, 'in'));
  assert.equal(resolveInside(f.output, 'in/x.png'), join(f.output, 'in/x.png'));
  for (const bad of ['out/x.png', 'out', '../x', '/etc/passwd', 'a/../../x', 'out/new/deeper']) {
    assert.throws(() => resolveInside(f.output, bad), PathError, bad);
  }
  await assert.rejects(saveImages(f, { images: batch(1), prefix: 'out/x', type: 'output' }), PathError);
  assert.deepEqual(await readdir(join(root, 'outside')), []);

  const rgba = await sharp({ create: { width: 3, height: 2, channels: 4, background: { r: 255, g: 0, b: 51, alpha: 0.2 } } }).png().toBuffer();
  await writeFile(join(f.input, 'a.png'), rgba);
  const { image, alpha } = await readImageFile(join(f.input, 'a.png'));
  assert.deepEqual([image.width, image.height, image.channels, image.batch], [3, 2, 3, 1]);
  assert.deepEqual([...image.data.subarray(0, 3)].map((v) => Math.round(v * 255)), [255, 0, 51]);
  assert.equal(Math.round(alpha![0] * 255), 51);
  const rgb = await sharp({ create: { width: 2, height: 2, channels: 3, background: 'white' } }).png().toBuffer();
  await writeFile(join(f.input, 'b.png'), rgb);
  assert.equal((await readImageFile(join(f.input, 'b.png'))).alpha, undefined);
});

test('host: model listings over ComfyUI and A1111 layouts and extra_model_paths.yaml; LoadImage names', async () => {
  const { root, f } = await folders();
  const comfy = join(root, 'ComfyUI');
  const a1111 = join(root, 'webui');
  for (const d of [join(comfy, 'models/checkpoints/sd1'), join(comfy, 'models/clip'), join(a1111, 'models/Stable-diffusion'), join(a1111, 'models/Lora'), join(root, 'extra-loras')]) await mkdir(d, { recursive: true });
  await writeFile(join(comfy, 'models/checkpoints/sd1/b.safetensors'), 'x');
  await writeFile(join(comfy, 'models/checkpoints/readme.md'), 'x');
  await writeFile(join(comfy, 'models/clip/t5.safetensors'), 'x');
  await writeFile(join(a1111, 'models/Stable-diffusion/a.ckpt'), 'x');
  await writeFile(join(a1111, 'models/Stable-diffusion/a.yaml'), 'x');
  await writeFile(join(a1111, 'models/Lora/l.safetensors'), 'x');
  await writeFile(join(root, 'extra-loras/e.pt'), 'x');
  await writeFile(join(comfy, 'extra_model_paths.yaml'), [
    'a111:',
    `  base_path: ${a1111}`,
    '  checkpoints: models/Stable-diffusion',
    '  configs: models/Stable-diffusion',
    '  loras: |',
    '    models/Lora',
    '    models/LyCORIS',
    'mine:',
    '  loras: ../extra-loras',
    'empty:',
  ].join('\n'));
  assert.deepEqual(readExtraModelPaths(join(comfy, 'extra_model_paths.yaml')).map((e) => [e.folder, e.path]), [
    ['checkpoints', join(a1111, 'models/Stable-diffusion')], ['configs', join(a1111, 'models/Stable-diffusion')],
    ['loras', join(a1111, 'models/Lora')], ['loras', join(a1111, 'models/LyCORIS')], ['loras', join(root, 'extra-loras')],
  ]);
  const host = new ServerHost({ modelRoots: [comfy], folders: f });
  assert.deepEqual(host.listFiles('checkpoints'), ['a.ckpt', 'sd1/b.safetensors']);
  assert.deepEqual(host.listFiles('configs'), ['a.yaml']);
  assert.deepEqual(host.listFiles('loras'), ['e.pt', 'l.safetensors']);
  assert.deepEqual(host.listFiles('text_encoders'), ['t5.safetensors']);
  assert.deepEqual(host.listFiles('clip'), ['t5.safetensors']);
  assert.equal(host.resolveFile('checkpoints', 'sd1/b.safetensors'), join(comfy, 'models/checkpoints/sd1/b.safetensors'));
  assert.throws(() => host.resolveFile('checkpoints', 'missing.safetensors'), /missing\.safetensors: not found in checkpoints/);
  assert.throws(() => host.resolveFile('checkpoints', '../../webui/models/Lora/l.safetensors'), PathError);

  await mkdir(join(f.input, 'sub'));
  const img = await sharp({ create: { width: 2, height: 2, channels: 3, background: 'red' } }).png().toBuffer();
  await writeFile(join(f.input, 'sub/x.png'), img);
  await writeFile(join(f.output, 'o.png'), img);
  await writeFile(join(f.input, 'top.png'), img);
  await writeFile(join(f.input, 'notes.txt'), 'x');
  assert.deepEqual(host.listFiles('input'), ['top.png']);
  assert.equal((await host.readImage('sub/x.png')).image.width, 2);
  assert.equal((await host.readImage('o.png [output]')).image.width, 2);
  await assert.rejects(host.readImage('../output/o.png'), PathError);
  await assert.rejects(host.readImage('nope.png'), /Invalid image file: nope\.png/);
});
