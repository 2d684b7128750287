// The official `openai` package, unchanged, against latentkit serve on the tiny SD1 checkpoint:
// images.generate (b64_json and url), images.edit with a mask (transparent = edited),
// images.createVariation, models.list, and its error classes for our error bodies.
import assert from 'node:assert/strict';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import OpenAI, { toFile } from 'openai';
import sharp from 'sharp';
import { readPngText } from '../../src/formats/png-text.js';
import { WorkflowEngine } from '../../src/workflow/engine.js';
import { startServer, tempRoot } from './helpers.js';
import { CKPT_NAME, refTest, TINY_SD1 } from './real-engine.js';

const test = refTest('OpenAI Images API with the openai package');
/** Any WxH: the package's types list only OpenAI's own sizes. */
const size = (v: string) => v as '256x256';

test('openai package: generate (b64_json, url), edit with a mask, variation, models, errors', async () => {
  const root = await tempRoot();
  await mkdir(join(root, 'models', 'checkpoints'), { recursive: true });
  await symlink(TINY_SD1, join(root, 'models', 'checkpoints', CKPT_NAME));
  const s = await startServer({ root, authToken: 'sk-test', engine: (host) => new WorkflowEngine({ host }) });
  try {
    const client = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sk-test', maxRetries: 0 });

    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => [m.id, m.owned_by]), [['tiny-sd1', 'latentkit']]);

    const gen = await client.images.generate({ model: 'dall-e-2', prompt: 'a watercolor fox', n: 2, size: '256x256', response_format: 'b64_json', quality: 'standard', user: 'u1', stream: false });
    assert.equal(gen.data?.length, 2);
    const png = Buffer.from(gen.data![0].b64_json!, 'base64');
    assert.deepEqual([(await sharp(png).metadata()).width, (await sharp(png).metadata()).height], [256, 256]);
    assert.match(readPngText(png).parameters, /^a watercolor fox\nSteps: 20, Sampler: DPM\+\+ 2M, Schedule type: Karras/);

    const byUrl = await client.images.generate({ model: 'tiny-sd1', prompt: 'a fox', size: size('64x64') });
    const url = byUrl.data![0].url!;
    assert.match(url, /\/view\?filename=.+&subfolder=openai&type=output$/);
    const fetched = await fetch(url, { headers: { authorization: 'Bearer sk-test' } });
    assert.equal(fetched.status, 200);
    assert.equal((await sharp(Buffer.from(await fetched.arrayBuffer())).metadata()).width, 64);

    // image: a grey square; mask: opaque except a transparent right half (the part to edit)
    const image = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } }).png().toBuffer();
    const alpha = Buffer.alloc(64 * 64 * 4);
    for (let i = 0; i < 64 * 64; i++) alpha[i * 4 + 3] = i % 64 >= 32 ? 0 : 255;
    const mask = await sharp(alpha, { raw: { width: 64, height: 64, channels: 4 } }).png().toBuffer();
    const edit = await client.images.edit({
      image: await toFile(image, 'image.png', { type: 'image/png' }), mask: await toFile(mask, 'mask.png', { type: 'image/png' }),
      prompt: 'a red ball', size: size('64x64'), response_format: 'b64_json', stream: false,
    });
    const edited = await sharp(Buffer.from(edit.data![0].b64_json!, 'base64')).removeAlpha().raw().toBuffer();
    // the opaque (kept) left half stays the grey it was, as A1111 pastes the original back outside the mask blur
    let leftDiff = 0;
    for (let y = 0; y < 64; y++) for (let x = 0; x < 20; x++) for (let c = 0; c < 3; c++) leftDiff = Math.max(leftDiff, Math.abs(edited[(y * 64 + x) * 3 + c] - 128));
    let rightDiff = 0;
    for (let y = 0; y < 64; y++) for (let x = 44; x < 64; x++) for (let c = 0; c < 3; c++) rightDiff = Math.max(rightDiff, Math.abs(edited[(y * 64 + x) * 3 + c] - 128));
    assert.ok(leftDiff <= 2, `kept half changed by ${leftDiff}`);
    assert.ok(rightDiff > 2, 'edited half repainted');

    const variation = await client.images.createVariation({ image: await toFile(image, 'image.png', { type: 'image/png' }), n: 1, size: size('64x64'), response_format: 'b64_json' });
    assert.equal(variation.data?.length, 1);

    await assert.rejects(client.images.generate({ prompt: 'x', size: size('100x7') }), (e: unknown) => e instanceof OpenAI.BadRequestError && e.param === 'size');
    await assert.rejects(client.images.generate({ prompt: 'x', model: 'nope' }), (e: unknown) => e instanceof OpenAI.NotFoundError && e.code === 'model_not_found');
    const wrongKey = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sk-wrong', maxRetries: 0 });
    await assert.rejects(wrongKey.models.list(), (e: unknown) => e instanceof OpenAI.AuthenticationError && e.code === 'invalid_api_key');
  } finally {
    await s.close();
  }
});
