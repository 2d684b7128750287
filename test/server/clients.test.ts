// The three npm ComfyUI clients, unchanged, against the server on the real engine: each queues a graph
// over its websocket, receives progress and fetches the image (contract section 10).
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { ComfyUIClient } from 'comfy-ui-client';
import { CallWrapper, ComfyApi, PromptBuilder, type NodeData } from '@saintno/comfyui-sdk';
import { Client } from '@stable-canvas/comfyui-client';
import { refTest, startRealServer, txt2img } from './real-engine.js';

const test = refTest('the npm ComfyUI clients');

const PNG = [0x89, 0x50, 0x4e, 0x47];

test('comfy-ui-client 0.1.2: queue, executing null, history, view', async () => {
  const s = await startRealServer();
  const client = new ComfyUIClient(new URL(s.url).host, 'cuc');
  try {
    await client.connect();
    const progress: number[] = [];
    (client as unknown as { ws: WebSocket }).ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const m = JSON.parse(data.toString()) as { type: string; data: { value?: number } };
      if (m.type === 'progress') progress.push(m.data.value!);
    });
    const images = await client.getImages(txt2img(11, { steps: 3, prefix: 'cuc' }) as never);
    const [img] = images['9'];
    assert.equal(img.image.filename, 'cuc_00001_.png');
    assert.deepEqual([...new Uint8Array(await img.blob.arrayBuffer()).subarray(0, 4)], PNG);
    assert.deepEqual(progress, [1, 2, 3]);
  } finally {
    await client.disconnect();
    await s.close();
  }
});

test('@saintno/comfyui-sdk 0.3.1: init, CallWrapper with progress, getImage', async () => {
  const s = await startRealServer();
  const api = new ComfyApi(s.url, 'saintno');
  try {
    api.init();
    await api.waitForReady();
    const wf = new PromptBuilder(txt2img(12, { steps: 3, prefix: 'saintno' }) as NodeData, ['seed'], ['images'])
      .setInputNode('seed', '3.inputs.seed')
      .setOutputNode('images', '9')
      .input('seed', 12);
    const progress: number[] = [];
    const result = await new Promise<Record<string, unknown>>((resolve, reject) => {
      new CallWrapper(api, wf)
        .onProgress((p) => progress.push(p.value))
        .onFinished((data) => resolve(data as Record<string, unknown>))
        .onFailed((err) => reject(err))
        .run();
    });
    const images = (result.images as { images: { filename: string; subfolder: string; type: string }[] }).images;
    assert.equal(images[0].filename, 'saintno_00001_.png');
    const blob = await api.getImage(images[0] as never);
    assert.deepEqual([...new Uint8Array(await blob.arrayBuffer()).subarray(0, 4)], PNG);
    assert.deepEqual(progress, [1, 2, 3]);
  } finally {
    api.destroy();
    await s.close();
  }
});

test('@stable-canvas/comfyui-client 1.5.9: enqueue over ws with progress, image bytes', async () => {
  const s = await startRealServer();
  const client = new Client({ api_host: new URL(s.url).host, WebSocket, fetch, clientId: 'sc' });
  try {
    client.connect();
    const progress: number[] = [];
    const out = await client.enqueue(txt2img(13, { steps: 3, prefix: 'sc' }), { progress: (p) => progress.push(p.value), workflow: { nodes: [] } });
    assert.equal(out.images.length, 1);
    const [img] = out.images;
    const bytes = img.type === 'buff' ? new Uint8Array(img.data) : new Uint8Array(await (await fetch(img.data)).arrayBuffer());
    assert.deepEqual([...bytes.subarray(0, 4)], PNG);
    assert.deepEqual(progress, [1, 2, 3]);
  } finally {
    client.close();
    await s.close();
  }
});
