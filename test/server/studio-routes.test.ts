// The web UI's server side on the fake engine: the built page and its SPA fallback (files stay in
// their folder), the gallery over the history (filters, thumbnails made once, delete = file + record),
// the prompt library (FTS5 search, tags, styles.csv both ways) and validated bodies.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { WEB_ROOT } from '../../src/server/web-ui.js';
import { getJson, postJson, saveGraph, startServer, waitFor } from './helpers.js';

test('web UI: index at /, SPA fallback for pages, JSON 404 for APIs, no way out of the folder', { skip: existsSync(WEB_ROOT) ? false : 'web UI not built (npm run build:web)' }, async () => {
  const s = await startServer();
  try {
    const html = { accept: 'text/html' };
    const root = await fetch(`${s.url}/`, { headers: html });
    assert.equal(root.status, 200);
    assert.match(await root.text(), /<div id="root">/);
    assert.match(await (await fetch(`${s.url}/gallery`, { headers: html })).text(), /<div id="root">/);
    const api = await fetch(`${s.url}/api/nothing`, { headers: html });
    assert.equal(api.status, 404);
    await api.arrayBuffer();
    assert.equal((await getJson(`${s.url}/no/such/route`)).status, 404);
    for (const evil of ['/..%2f..%2fpackage.json', '/assets/..%2f..%2f..%2fpackage.json', '/%2e%2e/%2e%2e/package.json']) {
      const r = await fetch(`${s.url}${evil}`, { headers: html });
      assert.ok(!(await r.text()).includes('"name": "latentkit"'), evil);
    }
    const asset = (await readdir(join(WEB_ROOT, 'assets'))).find((f) => f.endsWith('.js'))!;
    const js = await fetch(`${s.url}/assets/${asset}`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get('cache-control') ?? '', /immutable/);
    await js.arrayBuffer();
  } finally {
    await s.close();
  }
});

test('gallery: newest first, filters, thumbnail made once, delete removes file and record', async () => {
  const s = await startServer();
  try {
    const ids: string[] = [];
    for (const prefix of ['first', 'second']) {
      ids.push((await postJson(`${s.url}/prompt`, { prompt: saveGraph(0.5, prefix) })).body.prompt_id);
      await waitFor(async () => (await getJson(`${s.url}/history/${ids.at(-1)}`)).body[ids.at(-1)!], 'history');
    }
    const all = (await getJson(`${s.url}/latentkit/gallery`)).body;
    assert.equal(all.total, 2);
    assert.deepEqual(all.items.map((i: { promptId: string }) => i.promptId), [ids[1], ids[0]]);
    assert.equal((await getJson(`${s.url}/latentkit/gallery?sampler=euler`)).body.total, 0);
    assert.equal((await getJson(`${s.url}/latentkit/gallery?limit=1`)).body.next, 1);
    assert.equal((await getJson(`${s.url}/latentkit/gallery?limit=0`)).status, 400);
    const item = all.items[0];
    const url = `${s.url}/latentkit/gallery/thumb?filename=${item.filename}&subfolder=`;
    const t1 = await fetch(url);
    assert.equal(t1.headers.get('content-type'), 'image/webp');
    await t1.arrayBuffer();
    const thumbs = await readdir(join(s.dirs.data, 'thumbs'));
    await (await fetch(url)).arrayBuffer();
    assert.deepEqual(await readdir(join(s.dirs.data, 'thumbs')), thumbs);
    assert.equal(thumbs.length, 1);
    assert.equal((await fetch(`${s.url}/latentkit/gallery/thumb?filename=../../../etc/passwd`)).status, 403);
    const del = await fetch(`${s.url}/latentkit/gallery/${ids[1]}`, { method: 'DELETE' });
    assert.deepEqual(await del.json(), { deleted: 1 });
    assert.ok(!existsSync(join(s.dirs.output, item.filename)));
    assert.deepEqual((await getJson(`${s.url}/history/${ids[1]}`)).body, {});
    assert.equal((await fetch(`${s.url}/latentkit/gallery/${ids[1]}`, { method: 'DELETE' })).status, 404);
  } finally {
    await s.close();
  }
});

test('prompt library: save with tags, full-text and tag search, styles.csv import and export, bad bodies', async () => {
  const s = await startServer();
  try {
    const saved = await postJson(`${s.url}/latentkit/prompts`, { name: 'Fox', prompt: 'a red fox in the (snow:1.2)', tags: ['Animals', 'winter'] });
    assert.equal(saved.status, 200);
    assert.deepEqual(saved.body.tags, ['animals', 'winter']);
    await postJson(`${s.url}/latentkit/prompts`, { name: 'City', prompt: 'a city at night', tags: ['urban'] });
    const find = async (q: string) => (await getJson(`${s.url}/latentkit/prompts?${q}`)).body.map((p: { name: string }) => p.name);
    assert.deepEqual(await find('q=sno'), ['Fox']);
    assert.deepEqual(await find('q=AND%20(snow'), []);
    assert.deepEqual(await find('tag=urban'), ['City']);
    assert.deepEqual(await find(''), ['City', 'Fox']);
    assert.equal((await postJson(`${s.url}/latentkit/prompts`, { name: '', prompt: 'x' })).status, 400);
    assert.equal((await postJson(`${s.url}/latentkit/prompts`, { name: 'x', prompt: 1 })).status, 400);
    const csv = 'name,prompt,negative_prompt\n"Cinematic","cinematic still of {prompt}, film grain","cartoon, ""flat"""\nEmpty,,\n';
    assert.deepEqual((await postJson(`${s.url}/latentkit/styles.csv`, { csv })).body, { imported: 2 });
    assert.deepEqual((await postJson(`${s.url}/latentkit/styles.csv`, { csv })).body, { imported: 2 });
    assert.deepEqual(await find('styles=1'), ['Empty', 'Cinematic']);
    const out = await (await fetch(`${s.url}/latentkit/styles.csv`)).text();
    assert.equal(out, 'name,prompt,negative_prompt\nCinematic,"cinematic still of {prompt}, film grain","cartoon, ""flat"""\nEmpty,,\n');
    const tokens = await postJson(`${s.url}/latentkit/tokens`, { text: 'a' });
    assert.ok(tokens.status === 200 || tokens.status === 503, JSON.stringify(tokens.body));
    assert.equal((await postJson(`${s.url}/latentkit/tokens`, { text: 5 })).status, 400);
  } finally {
    await s.close();
  }
});
