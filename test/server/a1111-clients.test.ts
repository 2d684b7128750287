// The npm clients of the A1111 API, unchanged, against latentkit serve on the tiny SD1 checkpoint:
// a1111-webui-api (txt2img, img2img, png-info, setModel, progress polling, HTTP Basic) and
// node-sd-webui (txt2img, img2img, png-info by position).
import assert from 'node:assert/strict';
import { StableDiffusionApi } from 'a1111-webui-api';
import sdwebui from 'node-sd-webui';
import sharp from 'sharp';
import { startServer } from './helpers.js';
import { refTest, startRealServer, TINY_SD1 } from './real-engine.js';
import { mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkflowEngine } from '../../src/workflow/engine.js';

const test = refTest('A1111 npm clients');

function portOf(url: string): number {
  return Number(new URL(url).port);
}

test('a1111-webui-api: txt2img, img2img, png-info round trip, setModel, progress polling during a job', async () => {
  const s = await startRealServer();
  try {
    const api = new StableDiffusionApi({ host: '127.0.0.1', port: portOf(s.url) });
    const r = await api.txt2img({ prompt: 'a lighthouse', negative_prompt: 'fog', seed: 77, steps: 3, width: 64, height: 64, batch_size: 2 });
    assert.equal(r.images.length, 2);
    assert.deepEqual([(await r.image.metadata()).width, (await r.image.metadata()).format], [64, 'png']);
    // the client hands `info` over as the string A1111 sends
    const info = JSON.parse(r.info);
    assert.deepEqual(info.all_seeds, [77, 78]);
    assert.equal(info.sampler_name, 'Euler a', 'the client sends sampler_name "Euler a"');

    const i2i = await api.img2img({ init_images: [r.image], prompt: 'a lighthouse at night', seed: 5, steps: 3, width: 64, height: 64, denoising_strength: 0.5 });
    assert.equal(i2i.images.length, 1);

    // the client re-encodes what it sends with sharp, which drops PNG text unless told to keep metadata
    const bytes = Buffer.from(JSON.parse(JSON.stringify(r.response.data)).images[1], 'base64');
    assert.deepEqual((await api.pngInfo(sharp(bytes))).info, {}, 'no text left: info "", which the client turns into {} (as against A1111)');
    const png = await api.pngInfo(sharp(bytes).keepMetadata());
    assert.match(png.info, /^a lighthouse\nNegative prompt: fog\nSteps: 3, Sampler: Euler a, CFG scale: 7.0, Seed: 78, Size: 64x64/);

    await api.setModel('tiny-sd1');
    assert.equal(await api.getCurrentModel(), 'tiny-sd1.safetensors [96c25ad794]');

    const job = api.txt2img({ prompt: 'slow', seed: 1, steps: 40, width: 128, height: 128 });
    let sawRunning = false;
    for (let i = 0; i < 600 && !sawRunning; i++) {
      const p = await api.getProgress();
      sawRunning = p.state.job_count > 0 && p.state.sampling_step > 0 && p.progress > 0;
      if (!sawRunning) await new Promise((res) => setTimeout(res, 25));
    }
    assert.ok(sawRunning, 'progress polling saw the job run');
    // the client has no interrupt call: what its users do instead
    await fetch(`${s.url}/sdapi/v1/interrupt`, { method: 'POST' });
    await job;
    const idle = await api.getProgress();
    assert.deepEqual([idle.progress, idle.state.job_count], [0, 0]);
    assert.ok((await api.getSamplers()).some((x: { name: string }) => x.name === 'Euler a'));
    assert.equal((await api.getSdModels())[0].model_name, 'tiny-sd1');
  } finally {
    await s.close();
  }
});

test('a1111-webui-api setAuth against --api-auth', async () => {
  const root = (await import('./helpers.js')).tempRoot;
  const dir = await root();
  await mkdir(join(dir, 'models', 'checkpoints'), { recursive: true });
  await symlink(TINY_SD1, join(dir, 'models', 'checkpoints', 'tiny-sd1.safetensors'));
  const s = await startServer({ root: dir, apiAuth: 'me:pw', engine: (host) => new WorkflowEngine({ host }) });
  try {
    const api = new StableDiffusionApi({ host: '127.0.0.1', port: portOf(s.url) });
    await assert.rejects(api.getSamplers(), /401/);
    api.setAuth('me', 'pw');
    assert.ok((await api.getSamplers()).length > 10);
  } finally {
    await s.close();
  }
});

test('node-sd-webui: txt2img, img2img, png-info', async () => {
  const s = await startRealServer();
  try {
    const client = sdwebui({ apiUrl: s.url });
    const r = await client.txt2img({ prompt: 'a red barn', negativePrompt: 'people', seed: 31, steps: 3, width: 64, height: 64, samplingMethod: 'Euler', cfgScale: 7 });
    assert.equal(r.images.length, 1);
    const i2i = await client.img2img({ imageData: [r.images[0]], prompt: 'a red barn in winter', seed: 2, steps: 3, width: 64, height: 64 });
    assert.equal(i2i.images.length, 1);
    const info = await client.pngInfo({ imageData: r.images[0] });
    // node-sd-webui reads the infotext by position: steps and sampler are right; it has no notion of Schedule type
    assert.deepEqual([info.prompt, info.negativePrompt, info.steps, info.samplingMethod], ['a red barn', 'people', 3, 'Euler']);
    await assert.rejects(client.txt2img({ prompt: 'x', steps: 100000 }), /Unprocessable Entity/);
  } finally {
    await s.close();
  }
});
