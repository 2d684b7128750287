// The server on the real engine and the tiny SD1 checkpoint: message order over the websocket with
// previews, the saved PNG and its chunks, an unchanged re-queue answered from cache, real validation
// answers (cycle, missing link, wrong type) as 400 JSON.
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readPngText } from '../../src/formats/png-text.js';
import { REF } from '../ref.js';
import { getJson, postJson, waitFor, WsClient } from './helpers.js';
import { refTest, startRealServer, txt2img } from './real-engine.js';

const test = refTest('server on the real engine');

test('one prompt on the real engine: order of messages, previews, file, chunks; re-queue from cache', async () => {
  const s = await startRealServer({ previewMethod: 'latent2rgb' });
  try {
    const info = (await getJson(`${s.url}/object_info/CheckpointLoaderSimple`)).body;
    assert.deepEqual(info.CheckpointLoaderSimple.input.required.ckpt_name[0], ['tiny-sd1.safetensors']);
    const ws = await WsClient.connect(s.url, '/ws?clientId=me');
    const workflow = { nodes: [], links: [], note: 'ü' };
    const t0 = performance.now();
    const { status, body } = await postJson(`${s.url}/prompt`, { prompt: txt2img(5, { steps: 3 }), client_id: 'me', extra_data: { extra_pnginfo: { workflow } } });
    const acceptMs = performance.now() - t0;
    assert.equal(status, 200, JSON.stringify(body));
    const P = body.prompt_id;
    await ws.until((m) => m.some((x) => x.type === 'executing' && x.data.node === null), 'executing null', 120_000);
    const seq = ws.messages.map((m) => m.type === 'executing' ? `executing:${m.data.node}` : m.type).filter((t) => t !== 'progress_state');
    // status on connect, status on queue, status when taken, then the prompt's own messages
    assert.deepEqual(seq.slice(0, 5), ['status', 'status', 'status', 'execution_start', 'execution_cached']);
    assert.deepEqual(seq.slice(-4), ['executed', 'execution_success', 'status', 'executing:null']);
    assert.deepEqual(seq.filter((t) => t === 'progress').length >= 3, true);
    assert.ok(seq.indexOf('executing:3') < seq.indexOf('executing:8') && seq.indexOf('executing:8') < seq.indexOf('executing:9'));
    assert.ok(ws.messages.filter((m) => m.type !== 'status').every((m) => m.data.prompt_id === P));
    assert.equal(ws.binary.length, 3, 'one latent2rgb preview per step');
    assert.deepEqual([ws.binary[0].readUInt32BE(0), ws.binary[0].readUInt32BE(4), ws.binary[0][8], ws.binary[0][9]], [1, 1, 0xff, 0xd8]);

    const h = (await getJson(`${s.url}/history/${P}`)).body[P];
    assert.equal(h.status.status_str, 'success');
    const [img] = h.outputs['9'].images;
    assert.deepEqual(img, { filename: 'ComfyUI_00001_.png', subfolder: '', type: 'output' });
    const png = Buffer.from(await (await fetch(`${s.url}/view?filename=${img.filename}&type=output&subfolder=`)).arrayBuffer());
    const text = readPngText(png);
    assert.equal(text.workflow, '{"nodes": [], "links": [], "note": "\\u00fc"}');
    assert.equal(JSON.parse(text.prompt)['4'].inputs.ckpt_name, 'tiny-sd1.safetensors');
    assert.deepEqual(png, await readFile(join(s.dirs.output, img.filename)));

    // unchanged re-queue: everything cached, no new file, the same names, answered quickly
    const t1 = performance.now();
    const again = (await postJson(`${s.url}/prompt`, { prompt: txt2img(5, { steps: 3 }), client_id: 'me' })).body.prompt_id;
    await ws.until((m) => m.filter((x) => x.type === 'executing' && x.data.node === null).length === 2, 'second prompt', 60_000);
    const requeueMs = performance.now() - t1;
    const h2 = (await getJson(`${s.url}/history/${again}`)).body[again];
    assert.deepEqual(h2.outputs, h.outputs);
    assert.deepEqual(h2.status.messages[1][1].nodes.sort(), ['3', '4', '5', '6', '7', '8', '9']);
    assert.deepEqual(await readdir(s.dirs.output), ['ComfyUI_00001_.png']);
    console.log(`# /prompt accept ${acceptMs.toFixed(1)} ms (first, cold validation); unchanged re-queue answered in ${requeueMs.toFixed(1)} ms (POST to executing null)`);
    ws.close();
  } finally {
    await s.close();
  }
});

test('real validation answers through the server: cycle, missing link, unknown class, out of range', async () => {
  const s = await startRealServer();
  try {
    const dir = join(REF, '..', 'api', 'comfy', 'workflows', 'invalid');
    for (const [file, type] of [['cycle.json', 'prompt_outputs_failed_validation'], ['link_to_missing_node.json', 'prompt_outputs_failed_validation'], ['unknown_class.json', 'invalid_prompt'], ['out_of_range.json', 'prompt_outputs_failed_validation'], ['wrong_link_type.json', 'prompt_outputs_failed_validation']]) {
      const prompt = JSON.parse(await readFile(join(dir, file), 'utf8'));
      const r = await postJson(`${s.url}/prompt`, { prompt });
      assert.equal(r.status, 400, file);
      assert.equal(r.body.error.type, type, file);
    }
    const seed = (await postJson(`${s.url}/prompt`, '{"prompt": ' + JSON.stringify(txt2img(1)).replace('"seed":1', '"seed":18446744073709551615') + '}')).body;
    assert.ok(seed.prompt_id, JSON.stringify(seed));
    const big = await waitFor(async () => (await getJson(`${s.url}/history/${seed.prompt_id}`)).body[seed.prompt_id], 'big seed prompt', 120_000);
    assert.equal(big.status.status_str, 'success', JSON.stringify(big.status.messages.at(-1)));
    assert.equal((await getJson(`${s.url}/prompt`)).status, 200);
  } finally {
    await s.close();
  }
});
