// Hostile input to the A1111 and OpenAI routes, and their auth: each answer is 4xx/5xx JSON in the
// family's own shape and the server keeps serving. Everything here is refused before a model would
// load, so it runs on the engine stand-in (no reference data needed).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getJson, postJson, startServer } from './helpers.js';

const API = '/sdapi/v1';

test('A1111 routes: wrong types, non-JSON, 50 MB base64, non-image base64, negative size, steps 100000, URLs, scripts', async () => {
  const s = await startServer();
  try {
    const post = (p: string, body: unknown) => postJson(`${s.url}${API}${p}`, body);
    const wrong = await post('/txt2img', { steps: 'abc', cfg_scale: 'x', enable_hr: 'maybe', prompt: ['a'], styles: 3, override_settings: 'no', width: 64, unknown_key: { any: 1 } });
    assert.equal(wrong.status, 422);
    assert.deepEqual(wrong.body.detail.map((d: { loc: string[]; type: string }) => [d.loc[1], d.type]).sort(), [
      ['cfg_scale', 'type_error.float'], ['enable_hr', 'type_error.bool'], ['override_settings', 'type_error.dict'],
      ['prompt', 'type_error.str'], ['steps', 'type_error.integer'], ['styles', 'type_error.list'],
    ]);
    assert.deepEqual(wrong.body.detail.find((d: { loc: string[] }) => d.loc[1] === 'steps'), { loc: ['body', 'steps'], msg: 'value is not a valid integer', type: 'type_error.integer' });

    const notJson = await post('/txt2img', '{"prompt": ');
    assert.equal(notJson.status, 422);
    assert.equal(notJson.body.detail[0].type, 'value_error.jsondecode');
    assert.equal((await post('/txt2img', '[1, 2]')).body.detail[0].type, 'type_error.dict');

    for (const [body, field, type] of [
      [{ width: -64 }, 'width', 'value_error.number.not_ge'], [{ height: 0 }, 'height', 'value_error.number.not_ge'],
      [{ steps: 100000 }, 'steps', 'value_error.number.not_le'], [{ batch_size: 1000 }, 'batch_size', 'value_error.number.not_le'],
    ] as const) {
      const r = await post('/txt2img', body);
      assert.equal(r.status, 422, field);
      assert.deepEqual([r.body.detail[0].loc, r.body.detail[0].type], [['body', field], type]);
    }

    const big = 'A'.repeat(50 * 1024 * 1024);
    const huge = await post('/img2img', { init_images: [big], steps: 2 });
    assert.equal(huge.status, 413);
    assert.match(huge.body.detail, /larger than the limit/);
    const junk = Buffer.from('this is not an image at all').toString('base64');
    assert.deepEqual(await post('/img2img', { init_images: [junk] }), { status: 500, body: { error: 'HTTPException', detail: 'Invalid encoded image', body: '', errors: '500: Invalid encoded image' } });
    assert.equal((await post('/img2img', { init_images: [12] })).status, 500);
    assert.deepEqual((await post('/img2img', { init_images: ['https://example.com/a.png'] })).body.detail, 'Requests not allowed');
    assert.deepEqual(await post('/img2img', { prompt: 'x' }), { status: 404, body: { error: 'HTTPException', detail: 'Init image not found', body: '', errors: '404: Init image not found' } });
    assert.equal((await post('/png-info', { image: junk })).body.detail, 'Invalid encoded image');
    assert.equal((await post('/extra-single-image', { image: junk })).status, 500);
    assert.deepEqual((await post('/txt2img', { script_name: 'x' })).body.detail, "Script 'x' not found");
    assert.deepEqual((await post('/txt2img', { alwayson_scripts: { ControlNet: { args: [{ enabled: true }] } } })).body.detail, 'always on script ControlNet not found');
    assert.deepEqual(await post('/options', 'nope'), { status: 422, body: { detail: [{ loc: ['body', 0], msg: 'Expecting value: line 1 column 1 (char 0)', type: 'value_error.jsondecode', ctx: { msg: 'Expecting value', doc: 'nope', pos: 0, lineno: 1, colno: 1 } }] } });

    assert.deepEqual(await getJson(`${s.url}${API}/txt2img`), { status: 405, body: { detail: 'Method Not Allowed' } });
    assert.deepEqual(await getJson(`${s.url}${API}/no-such-route`), { status: 404, body: { detail: 'Not Found' } });
    // still serving, and nothing was queued by any of it
    assert.equal((await getJson(`${s.url}${API}/samplers`)).status, 200);
    assert.deepEqual((await getJson(`${s.url}/queue`)).body, { queue_running: [], queue_pending: [] });
    const coerced = await post('/txt2img', { steps: '2', width: 64.9, height: '64', enable_hr: 'false', prompt: 5, seed: 1 });
    assert.equal(coerced.status, 500, 'pydantic coercions accepted; then no checkpoint in the models folder (500)');
    assert.match(coerced.body.errors, /no checkpoint/);
  } finally {
    await s.close();
  }
});

test('OpenAI routes: error shape for bad fields, sizes, models and images', async () => {
  const s = await startServer();
  try {
    const post = (body: unknown) => postJson(`${s.url}/v1/images/generations`, body);
    const missing = await post({ n: 1 });
    assert.deepEqual([missing.status, missing.body.error.param, missing.body.error.type], [400, 'prompt', 'invalid_request_error']);
    assert.equal((await post({ prompt: 'x', size: '-5x10' })).body.error.param, 'size');
    assert.equal((await post({ prompt: 'x', n: 50 })).body.error.param, 'n');
    assert.equal((await post({ prompt: 'x', response_format: 'gif' })).body.error.param, 'response_format');
    assert.equal((await post('{oops')).status, 400);
    const model = await post({ prompt: 'x', model: 'no-such-model', size: '64x64' });
    assert.deepEqual([model.status, model.body.error.code], [404, 'model_not_found']);
    const form = new FormData();
    form.append('prompt', 'x');
    form.append('image', new Blob([Buffer.from('not a png')], { type: 'image/png' }), 'a.png');
    const edit = await fetch(`${s.url}/v1/images/edits`, { method: 'POST', body: form });
    assert.equal(edit.status, 400);
    assert.equal((await edit.json() as { error: { param: string } }).error.param, 'image');
    const notForm = await postJson(`${s.url}/v1/images/variations`, { image: 'x' });
    assert.equal(notForm.body.error.param, 'image');
    assert.equal((await getJson(`${s.url}/v1/nope`)).body.error.type, 'invalid_request_error');
    assert.deepEqual((await getJson(`${s.url}/v1/models`)).body, { object: 'list', data: [] });
  } finally {
    await s.close();
  }
});

test('auth: --api-auth is HTTP Basic on /sdapi/v1 (A1111 401 bodies); --auth-token is the OpenAI API key', async () => {
  const s = await startServer({ apiAuth: 'alice:s3cret:x,bob:pw', authToken: 'tok' });
  try {
    const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
    assert.deepEqual(await getJson(`${s.url}${API}/samplers`), { status: 401, body: { error: 'HTTPException', detail: 'Not authenticated', body: '', errors: '401: Not authenticated' } });
    assert.equal((await getJson(`${s.url}${API}/samplers`, basic('alice', 'wrong'))).body.detail, 'Incorrect username or password');
    assert.equal((await getJson(`${s.url}${API}/samplers`, basic('alice', 's3cret:x'))).status, 200);
    assert.equal((await getJson(`${s.url}${API}/samplers`, basic('bob', 'pw'))).status, 200);
    assert.equal((await getJson(`${s.url}${API}/samplers`, { authorization: 'Bearer tok' })).status, 200);
    const noKey = await getJson(`${s.url}/v1/models`);
    assert.deepEqual([noKey.status, noKey.body.error.code], [401, 'invalid_api_key']);
    assert.equal((await getJson(`${s.url}/v1/models`, { authorization: 'Bearer nope' })).status, 401);
    assert.equal((await getJson(`${s.url}/v1/models`, { authorization: 'Bearer tok' })).status, 200);
    assert.equal((await getJson(`${s.url}/queue`)).status, 401, 'ComfyUI routes keep the token');
  } finally {
    await s.close();
  }
});

test('the queue file of an older server (no kind column) still reads, as ComfyUI prompts', async () => {
  const { default: Database } = await import('better-sqlite3');
  const { mkdtemp } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { QueueStore } = await import('../../src/server/queue-store.js');
  const file = join(await mkdtemp(join(tmpdir(), 'lk-q-')), 'queue.sqlite');
  const db = new Database(file);
  db.exec('CREATE TABLE queue (prompt_id TEXT PRIMARY KEY, number REAL NOT NULL, seq INTEGER NOT NULL, item TEXT NOT NULL, running INTEGER NOT NULL DEFAULT 0)');
  db.prepare('INSERT INTO queue VALUES (?, ?, ?, ?, 0)').run('old', 3, 0, JSON.stringify({ prompt: { 1: {} }, extraData: {}, outputs: ['1'] }));
  db.close();
  const store = new QueueStore(file);
  try {
    const [item] = store.pending();
    assert.deepEqual([item.promptId, item.kind, item.outputs], ['old', 'comfy', ['1']]);
    store.enqueue({ promptId: 'new', kind: 'a1111', number: 4, prompt: {}, extraData: {}, outputs: [], payload: { route: 'txt2img' } });
    assert.deepEqual(store.pending().map((i) => [i.promptId, i.kind, i.payload]), [['old', 'comfy', undefined], ['new', 'a1111', { route: 'txt2img' }]]);
  } finally {
    store.close();
  }
});
