// The ComfyUI routes on the engine stand-in: answers, error shapes, both route prefixes, queue and
// history operations, and the websocket message order and routing of contract section 3.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readPngText } from '../../src/formats/png-text.js';
import { getJson, postJson, saveGraph, startServer, waitFor, waitGraph, WsClient } from './helpers.js';

test('prompt → history → view on both prefixes, with ComfyUI answers and PNG chunks', async () => {
  const s = await startServer();
  try {
    for (const prefix of ['', '/api']) {
      const ping = await getJson(`${s.url}${prefix}/prompt`);
      assert.deepEqual(ping, { status: 200, body: { exec_info: { queue_remaining: 0 } } });
    }
    // text/plain body (as @saintno posts it) is JSON all the same
    const res = await fetch(`${s.url}/api/prompt`, {
      method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' },
      body: JSON.stringify({ prompt: saveGraph(0.5, 'lk/run/img'), client_id: 'c1', extra_data: { extra_pnginfo: { workflow: { nodes: [], note: 'é' } }, api_key_comfy_org: 'secret' } }),
    });
    assert.equal(res.status, 200);
    const ok = await res.json() as { prompt_id: string; number: number; node_errors: object };
    assert.match(ok.prompt_id, /^[0-9a-f-]{36}$/);
    assert.equal(typeof ok.number, 'number');
    assert.deepEqual(ok.node_errors, {});
    const hist = await waitFor(async () => {
      const h = await getJson(`${s.url}/history/${ok.prompt_id}`);
      return Object.keys(h.body).length ? h.body[ok.prompt_id] : undefined;
    }, 'history entry');
    assert.equal(hist.status.status_str, 'success');
    assert.equal(hist.status.completed, true);
    assert.deepEqual(hist.status.messages.map((m: [string]) => m[0]), ['execution_start', 'execution_cached', 'execution_success']);
    assert.equal(hist.prompt[1], ok.prompt_id);
    assert.equal(hist.prompt[3].client_id, 'c1');
    assert.equal(hist.prompt[3].api_key_comfy_org, undefined, 'secrets are never stored');
    assert.deepEqual(hist.prompt[4], ['9']);
    assert.deepEqual(hist.outputs, { 9: { images: [{ filename: 'img_00001_.png', subfolder: 'lk/run', type: 'output' }] } });
    assert.deepEqual(hist.meta['9'], { node_id: '9', display_node: '9', parent_node: null, real_node_id: '9' });

    const png = Buffer.from(await (await fetch(`${s.url}/view?filename=img_00001_.png&subfolder=lk/run&type=output`)).arrayBuffer());
    const text = readPngText(png);
    assert.equal(text.workflow, '{"nodes": [], "note": "\\u00e9"}', 'workflow chunk is JSON as Python writes it');
    assert.match(text.prompt, /^\{"1": \{"class_type": "FakeImage", "inputs": \{"width": 8/);
    const file = await readFile(join(s.dirs.output, 'lk/run/img_00001_.png'));
    assert.deepEqual(file, png);

    // the same file through /api, annotated name, and the channel / preview variants
    const viaApi = await fetch(`${s.url}/api/view?filename=${encodeURIComponent('lk/run/img_00001_.png [output]')}&subfolder=lk/run`);
    assert.equal(viaApi.status, 200);
    assert.equal(viaApi.headers.get('content-type'), 'image/png');
    assert.equal(viaApi.headers.get('content-disposition'), 'filename="img_00001_.png"');
    const jpeg = await fetch(`${s.url}/view?filename=img_00001_.png&subfolder=lk/run&preview=jpeg;50`);
    assert.equal(jpeg.headers.get('content-type'), 'image/jpeg');
    const alpha = await fetch(`${s.url}/view?filename=img_00001_.png&subfolder=lk/run&channel=a`);
    assert.equal(alpha.headers.get('content-type'), 'image/png');

    const all = await getJson(`${s.url}/api/history`);
    assert.deepEqual(Object.keys(all.body), [ok.prompt_id]);
    const q = await getJson(`${s.url}/queue`);
    assert.deepEqual(q.body, { queue_running: [], queue_pending: [] });
  } finally {
    await s.close();
  }
});

test('validation and body errors are 400 JSON in ComfyUI shapes; the server keeps serving', async () => {
  const s = await startServer();
  try {
    const noPrompt = await postJson(`${s.url}/prompt`, { client_id: 'x' });
    assert.equal(noPrompt.status, 400);
    assert.deepEqual(noPrompt.body, { error: { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} }, node_errors: {} });
    const badJson = await postJson(`${s.url}/prompt`, '{"prompt": {');
    assert.equal(badJson.status, 400);
    assert.equal(badJson.body.error.type, 'invalid_prompt');
    assert.deepEqual(badJson.body.node_errors, {});
    const notObject = await postJson(`${s.url}/prompt`, '[1, 2]');
    assert.equal(notObject.body.error.type, 'invalid_prompt');
    const unknown = await postJson(`${s.url}/prompt`, { prompt: { 3: { class_type: 'KSamplerTurbo', inputs: {} } } });
    assert.deepEqual(unknown.body.error, { type: 'invalid_prompt', message: 'Cannot execute because node KSamplerTurbo does not exist.', details: "Node ID '#3'", extra_info: {} });
    const ui = JSON.parse(await readFile(new URL('../../../shared/api/comfy/workflows/ui_format/img2img.json', import.meta.url), 'utf8').catch(() => '{"nodes": [{"id": 1}], "links": []}'));
    const uiAnswer = await postJson(`${s.url}/prompt`, { prompt: ui });
    assert.equal(uiAnswer.status, 400);
    assert.equal(uiAnswer.body.error.type, 'invalid_prompt');
    const badNumber = await postJson(`${s.url}/prompt`, { prompt: saveGraph(), number: 'soon' });
    assert.equal(badNumber.status, 400);
    const badExtra = await postJson(`${s.url}/prompt`, { prompt: saveGraph(), extra_data: 'x' });
    assert.equal(badExtra.status, 400);
    assert.equal(badExtra.body.error.type, 'invalid_prompt');
    const missing = await postJson(`${s.url}/prompt`, { prompt: { 9: { class_type: 'FakeSave', inputs: { images: ['99', 0], filename_prefix: 'x' } } } });
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error.type, 'prompt_outputs_failed_validation');
    assert.ok(missing.body.node_errors['9']);

    const badQueue = await postJson(`${s.url}/queue`, '{nope');
    assert.equal(badQueue.status, 400);
    assert.equal(typeof badQueue.body.error, 'string');
    const badDelete = await postJson(`${s.url}/history`, { delete: 'abc' });
    assert.equal(badDelete.status, 400);
    const badHistory = await getJson(`${s.url}/history?max_items=lots`);
    assert.equal(badHistory.status, 400);
    const notFound = await getJson(`${s.url}/no/such/route`);
    assert.equal(notFound.status, 404);
    assert.equal(typeof notFound.body.error, 'string');
    // still serving
    assert.equal((await getJson(`${s.url}/prompt`)).status, 200);
  } finally {
    await s.close();
  }
});

test('catalogue, status and model routes', async () => {
  const s = await startServer();
  try {
    await mkdir(join(s.dirs.models, 'checkpoints', 'sub'), { recursive: true });
    await mkdir(join(s.dirs.models, 'embeddings'), { recursive: true });
    const header = Buffer.from(JSON.stringify({ __metadata__: { ss_network_dim: '8' } }));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    await writeFile(join(s.dirs.models, 'checkpoints', 'sub', 'b.safetensors'), Buffer.concat([len, header]));
    await writeFile(join(s.dirs.models, 'checkpoints', 'a.ckpt'), 'x');
    await writeFile(join(s.dirs.models, 'checkpoints', 'notes.txt'), 'x');
    await writeFile(join(s.dirs.models, 'embeddings', 'easyneg.pt'), 'x');
    s.host.invalidate();

    const info = await getJson(`${s.url}/object_info`);
    assert.ok(info.body.FakeSave);
    assert.deepEqual(Object.keys((await getJson(`${s.url}/api/object_info/FakeSave`)).body), ['FakeSave']);
    const unknown = await getJson(`${s.url}/object_info/${encodeURIComponent('Primitive boolean [Crystools]')}`);
    assert.deepEqual(unknown, { status: 200, body: {} });
    const stats = await getJson(`${s.url}/system_stats`);
    assert.equal(stats.body.system.os, process.platform === 'win32' ? 'nt' : 'posix');
    assert.equal(typeof stats.body.system.ram_total, 'number');
    assert.ok(Array.isArray(stats.body.devices));
    assert.deepEqual((await getJson(`${s.url}/features`)).body, { supports_preview_metadata: true, max_upload_size: 104857600 });
    assert.deepEqual((await getJson(`${s.url}/extensions`)).body, []);
    assert.deepEqual((await getJson(`${s.url}/embeddings`)).body, ['easyneg']);
    assert.ok((await getJson(`${s.url}/models`)).body.includes('checkpoints'));
    assert.deepEqual((await getJson(`${s.url}/models/checkpoints`)).body, ['a.ckpt', 'sub/b.safetensors']);
    assert.equal((await getJson(`${s.url}/models/nonsense`)).status, 404);
    assert.deepEqual((await getJson(`${s.url}/view_metadata/checkpoints?filename=sub/b.safetensors`)).body, { ss_network_dim: '8' });
    assert.equal((await getJson(`${s.url}/view_metadata/checkpoints?filename=../../x.safetensors`)).status, 404);
    for (const [path, body] of [['/interrupt', ''], ['/interrupt', 'not json'], ['/free', { unload_models: true }], ['/queue', { clear: true }], ['/history', { clear: true }]] as const) {
      const r = await fetch(`${s.url}${path}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get('content-type')?.split(';')[0], 'application/json');
      assert.deepEqual(await r.json(), {});
    }
  } finally {
    await s.close();
  }
});

test('websocket: status with sid, message order for one prompt, history before the status that ends it', async () => {
  const s = await startServer();
  try {
    const ws = await WsClient.connect(s.url, '/ws?clientId=abc');
    await ws.until((m) => m.length >= 1, 'status');
    assert.deepEqual(ws.messages[0], { type: 'status', data: { status: { exec_info: { queue_remaining: 0 } }, sid: 'abc' } });
    const anon = await WsClient.connect(s.url, '/api/ws');
    await anon.until((m) => m.length >= 1, 'status');
    assert.match(String(anon.messages[0].data.sid), /^[0-9a-f]{32}$/);

    const flag = join(s.dirs.root, 'go');
    const started = join(s.dirs.root, 'started');
    const { body } = await postJson(`${s.url}/prompt`, { prompt: waitGraph(flag, started), client_id: 'abc' });
    const P = body.prompt_id;
    await waitFor(() => existsSync(started), 'job start');
    // a reconnect with the same id replaces the socket and resumes with the running node
    const ws2 = await WsClient.connect(s.url, '/ws?clientId=abc');
    await ws2.until((m) => m.some((x) => x.type === 'executing'), 'resume executing');
    assert.deepEqual(ws2.messages[1], { type: 'executing', data: { node: '2', display_node: '2', prompt_id: P } });
    // history must exist by the time the status announcing the shorter queue arrives
    let historyAtStatus: unknown;
    ws2.ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const m = JSON.parse(data.toString());
      if (m.type === 'status' && m.data.status.exec_info.queue_remaining === 0 && historyAtStatus === undefined) {
        historyAtStatus = s.server.store.historyEntry(P) !== undefined;
      }
    });
    await writeFile(flag, '');
    await ws2.until((m) => m.some((x) => x.type === 'executing' && x.data.node === null), 'executing null');
    const types = ws2.messages.slice(2).map((m) => (m.type === 'executing' ? `executing:${m.data.node}` : m.type));
    assert.deepEqual(types, ['progress', 'progress', 'executing:9', 'executed', 'execution_success', 'status', 'executing:null']);
    assert.equal(historyAtStatus, true);
    assert.equal(ws2.binary.length, 2, 'one preview frame per step');
    assert.deepEqual([...ws2.binary[0].subarray(0, 8)], [0, 0, 0, 1, 0, 0, 0, 1]);
    // the replaced socket got nothing after the replacement; the anonymous one only broadcasts
    assert.ok(!ws.messages.some((m) => m.type === 'executed'));
    assert.deepEqual([...new Set(anon.messages.map((m) => m.type))], ['status']);
    ws.close(); ws2.close(); anon.close();
  } finally {
    await s.close();
  }
});

test('websocket: prompts without client_id broadcast progress but not execution_*; feature_flags → type 4 previews', async () => {
  const s = await startServer();
  try {
    const a = await WsClient.connect(s.url, '/ws?clientId=a');
    a.ws.send(JSON.stringify({ type: 'feature_flags', data: { supports_preview_metadata: true } }));
    await a.until((m) => m.some((x) => x.type === 'feature_flags'), 'feature_flags answer');
    const b = await WsClient.connect(s.url, '/ws?clientId=b');
    const { body } = await postJson(`${s.url}/prompt`, { prompt: waitGraph('', '') });
    await waitFor(() => s.server.store.historyEntry(body.prompt_id), 'history');
    await b.until((m) => m.some((x) => x.type === 'executed'), 'executed');
    await a.until((m) => m.some((x) => x.type === 'executed'), 'executed');
    for (const c of [a, b]) {
      const types = new Set(c.messages.map((m) => m.type));
      assert.ok(types.has('progress') && types.has('executing'));
      assert.ok(!types.has('execution_start') && !types.has('execution_success'));
    }
    assert.equal(a.binary[0].readUInt32BE(0), 4);
    const n = a.binary[0].readUInt32BE(4);
    assert.equal(JSON.parse(a.binary[0].subarray(8, 8 + n).toString()).prompt_id, body.prompt_id);
    assert.equal(b.binary[0].readUInt32BE(0), 1);
    a.close(); b.close();
  } finally {
    await s.close();
  }
});

test('private routing: two clients each get only their own prompt messages', async () => {
  const s = await startServer();
  try {
    const a = await WsClient.connect(s.url, '/ws?clientId=a');
    const b = await WsClient.connect(s.url, '/ws?clientId=b');
    const pa = (await postJson(`${s.url}/prompt`, { prompt: saveGraph(0.1, 'a'), client_id: 'a' })).body.prompt_id;
    const pb = (await postJson(`${s.url}/prompt`, { prompt: saveGraph(0.2, 'b'), client_id: 'b' })).body.prompt_id;
    await a.until((m) => m.some((x) => x.type === 'executing' && x.data.node === null), 'a done');
    await b.until((m) => m.some((x) => x.type === 'executing' && x.data.node === null), 'b done');
    for (const [c, mine, theirs] of [[a, pa, pb], [b, pb, pa]] as const) {
      const ids = new Set(c.messages.filter((m) => m.type !== 'status').map((m) => m.data.prompt_id));
      assert.deepEqual([...ids], [mine]);
      assert.ok(!ids.has(theirs));
    }
    a.close(); b.close();
  } finally {
    await s.close();
  }
});

test('queue order, front, delete, clear, interrupt and re-queue from cache', async () => {
  const s = await startServer();
  try {
    const flag = join(s.dirs.root, 'go');
    const started = join(s.dirs.root, 'started');
    const blocker = (await postJson(`${s.url}/prompt`, { prompt: waitGraph(flag, started) })).body.prompt_id;
    await waitFor(() => existsSync(started), 'job start');
    const p1 = (await postJson(`${s.url}/prompt`, { prompt: saveGraph(0.1, 'q') })).body;
    const p2 = (await postJson(`${s.url}/prompt`, { prompt: saveGraph(0.2, 'q') })).body;
    const p3 = (await postJson(`${s.url}/prompt`, { prompt: saveGraph(0.3, 'q'), front: true })).body;
    assert.ok(p3.number < 0);
    const p4 = (await postJson(`${s.url}/prompt`, { prompt: saveGraph(0.4, 'q'), number: 0.5 })).body;
    assert.equal(p4.number, 0.5);
    const q = (await getJson(`${s.url}/queue`)).body;
    assert.deepEqual(q.queue_running.map((i: unknown[]) => i[1]), [blocker]);
    assert.deepEqual(q.queue_pending.map((i: unknown[]) => i[1]).sort(), [p1.prompt_id, p2.prompt_id, p3.prompt_id, p4.prompt_id].sort());
    assert.equal((await getJson(`${s.url}/prompt`)).body.exec_info.queue_remaining, 5);
    await postJson(`${s.url}/queue`, { delete: [p2.prompt_id, blocker] });
    assert.equal((await getJson(`${s.url}/queue`)).body.queue_pending.length, 3, 'the running item is never deleted');
    // interrupt for another id does nothing; without one it stops the running prompt
    await postJson(`${s.url}/interrupt`, { prompt_id: p1.prompt_id });
    await postJson(`${s.url}/interrupt`, {});
    const h = await waitFor(async () => (await getJson(`${s.url}/history/${p1.prompt_id}`)).body[p1.prompt_id], 'all done');
    assert.equal(h.status.status_str, 'success');
    const hist = (await getJson(`${s.url}/history`)).body;
    assert.deepEqual(Object.keys(hist), [blocker, p3.prompt_id, p4.prompt_id, p1.prompt_id], 'front first, then by number');
    assert.equal(hist[blocker].status.status_str, 'error');
    assert.equal(hist[blocker].status.messages.at(-1)[0], 'execution_interrupted');
    assert.deepEqual(Object.keys((await getJson(`${s.url}/history?max_items=2`)).body), [p4.prompt_id, p1.prompt_id]);
    assert.deepEqual(Object.keys((await getJson(`${s.url}/history?max_items=2&offset=1`)).body), [p3.prompt_id, p4.prompt_id]);
    // unchanged re-queue: every node cached, no new file, the same file names
    const again = (await postJson(`${s.url}/prompt`, { prompt: saveGraph(0.1, 'q') })).body;
    const h2 = await waitFor(async () => (await getJson(`${s.url}/history/${again.prompt_id}`)).body[again.prompt_id], 'requeue');
    assert.deepEqual(h2.outputs, h.outputs);
    assert.deepEqual(h2.status.messages[1][1].nodes, ['1', '9']);
    await postJson(`${s.url}/history`, { delete: [blocker] });
    assert.equal(Object.keys((await getJson(`${s.url}/history`)).body).length, 4);
    await postJson(`${s.url}/queue`, { clear: true });
  } finally {
    await s.close();
  }
});
