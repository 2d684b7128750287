// Hostile input: traversal and symlinks in /view and uploads, oversized uploads, decompression bombs,
// non-images, missing auth and foreign origins — each a 4xx JSON answer, the server still serving,
// nothing written outside its folders.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { getJson, postJson, saveGraph, startServer, waitFor, WsClient, type Json } from './helpers.js';

async function upload(url: string, fields: Record<string, string | Blob>, file?: { name: string; data: Uint8Array }, path = '/upload/image', headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const form = new FormData();
  if (file) form.append('image', new Blob([file.data]), file.name);
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  const res = await fetch(url + path, { method: 'POST', body: form, headers });
  return { status: res.status, body: JSON.parse(await res.text()) };
}

async function png(w: number, h: number, rgba?: [number, number, number, number]): Promise<Buffer> {
  const [r, g, b, alpha] = rgba ?? [10, 20, 30, 1];
  return sharp({ create: { width: w, height: h, channels: 4, background: { r, g, b, alpha } } }).png().toBuffer();
}

/** A valid PNG header claiming `w`×`h` pixels with a tiny IDAT: costs nothing unless someone decodes it. */
function bombPng(w: number, h: number): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td) >>> 0);
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(1024))), chunk('IEND', Buffer.alloc(0))]);
}

async function listAll(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

test('/view refuses traversal, absolute paths and symlinks out of the folder', async () => {
  const s = await startServer();
  try {
    await mkdir(join(s.dirs.root, 'secret'), { recursive: true });
    await writeFile(join(s.dirs.root, 'secret', 'key.png'), await png(2, 2));
    await writeFile(join(s.dirs.output, 'ok.png'), await png(2, 2));
    await symlink(join(s.dirs.root, 'secret'), join(s.dirs.output, 'linkdir'));
    await symlink(join(s.dirs.root, 'secret', 'key.png'), join(s.dirs.output, 'linkfile.png'));
    const cases: [string, number][] = [
      ['filename=ok.png', 200],
      ['filename=../secret/key.png', 400],
      ['filename=%2Fetc%2Fpasswd', 400],
      ['filename=', 400],
      ['type=output', 404],
      ['filename=key.png&subfolder=../secret', 403],
      ['filename=passwd&subfolder=%2Fetc', 403],
      ['filename=key.png&subfolder=linkdir', 403],
      ['filename=linkfile.png', 403],
      ['filename=ok.png&type=models', 400],
      ['filename=missing.png', 404],
    ];
    for (const [q, status] of cases) {
      const res = await fetch(`${s.url}/view?${q}`);
      assert.equal(res.status, status, q);
      if (status !== 200) assert.equal(typeof (JSON.parse(await res.text()) as Json).error, 'string', q);
      else await res.arrayBuffer();
    }
  } finally {
    await s.close();
  }
});

test('uploads: naming rule, traversal, symlinks out, non-images, bombs and size limits', async () => {
  const s = await startServer({ maxUploadBytes: 2 * 1024 * 1024 });
  try {
    const before = await listAll(s.dirs.root);
    const a = await png(4, 4, [255, 0, 0, 1]);
    const b = await png(4, 4, [0, 255, 0, 1]);
    assert.deepEqual((await upload(s.url, {}, { name: 'x.png', data: a })).body, { name: 'x.png', subfolder: '', type: 'input' });
    assert.deepEqual((await upload(s.url, {}, { name: 'x.png', data: a })).body, { name: 'x.png', subfolder: '', type: 'input' }, 'same bytes: reused');
    assert.deepEqual((await upload(s.url, {}, { name: 'x.png', data: b })).body, { name: 'x (1).png', subfolder: '', type: 'input' });
    assert.deepEqual((await upload(s.url, { overwrite: 'true' }, { name: 'x.png', data: b })).body.name, 'x.png');
    assert.deepEqual(await readFile(join(s.dirs.input, 'x.png')), b);
    assert.deepEqual((await upload(s.url, { subfolder: 'masks', type: 'temp' }, { name: 'm.png', data: a })).body, { name: 'm.png', subfolder: 'masks', type: 'temp' });

    await mkdir(join(s.dirs.root, 'elsewhere'));
    await symlink(join(s.dirs.root, 'elsewhere'), join(s.dirs.input, 'out'));
    // the multipart reader keeps only the base name of a file name
    assert.deepEqual((await upload(s.url, {}, { name: '../../evil.png', data: a })).body, { name: 'evil.png', subfolder: '', type: 'input' });
    const refused: [Record<string, string>, string, number][] = [
      [{ subfolder: '../..' }, 'evil.png', 400],
      [{ subfolder: '/tmp' }, 'evil.png', 400],
      [{ subfolder: 'out' }, 'evil.png', 400],
      [{ type: 'models' }, 'evil.png', 400],
    ];
    for (const [fields, name, status] of refused) {
      const r = await upload(s.url, fields, { name, data: a });
      assert.equal(r.status, status, JSON.stringify([fields, name]));
      assert.equal(typeof r.body.error, 'string');
    }
    assert.equal((await upload(s.url, {})).status, 400, 'no file');
    assert.equal((await upload(s.url, {}, { name: '', data: a })).status, 400, 'no file name');
    assert.equal((await upload(s.url, {}, { name: 'evil.png', data: Buffer.from('<script>alert(1)</script>') })).status, 415);
    const bomb = await upload(s.url, {}, { name: 'bomb.png', data: bombPng(20000, 20000) });
    assert.equal(bomb.status, 413);
    assert.match(bomb.body.error, /20000×20000/);
    // over the limit: refused from Content-Length before reading, and in the stream when it is chunked
    const big = await upload(s.url, {}, { name: 'big.png', data: new Uint8Array(4 * 1024 * 1024) });
    assert.equal(big.status, 413);
    assert.equal(typeof big.body.error, 'string');
    const chunks = [await png(2, 2), new Uint8Array(3 * 1024 * 1024)];
    const boundary = 'lkboundary';
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="c.png"\r\nContent-Type: image/png\r\n\r\n`));
        for (const ch of chunks) c.enqueue(ch);
        c.enqueue(Buffer.from(`\r\n--${boundary}--\r\n`));
        c.close();
      },
    });
    const chunked = await fetch(`${s.url}/upload/image`, { method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } } as RequestInit);
    assert.equal(chunked.status, 413);
    assert.equal(typeof (await chunked.json() as Json).error, 'string');
    // a mask upload without original_ref (comfy-ui-client sends originalRef) is a 400 JSON answer
    assert.equal((await upload(s.url, { originalRef: '{"filename":"x.png"}' }, { name: 'm.png', data: a }, '/upload/mask')).status, 400);
    assert.equal((await upload(s.url, { original_ref: '{"filename":"../x.png"}' }, { name: 'm.png', data: a }, '/upload/mask')).status, 400);

    // still serving; nothing outside the input/temp folders changed, no staging leftovers
    assert.equal((await getJson(`${s.url}/prompt`)).status, 200);
    const after = (await listAll(s.dirs.root)).filter((p) => !p.startsWith('input') && !p.startsWith('temp') && !p.startsWith('data'));
    assert.deepEqual(after, before.filter((p) => !p.startsWith('input') && !p.startsWith('temp') && !p.startsWith('data')).concat(['elsewhere']).sort());
    assert.deepEqual(await readdir(join(s.dirs.root, 'elsewhere')), []);
    assert.deepEqual((await readdir(s.dirs.input)).sort(), ['evil.png', 'out', 'x (1).png', 'x.png']);
    assert.deepEqual((await readdir(join(s.dirs.data, 'staging')).catch(() => [])), []);
  } finally {
    await s.close();
  }
});

test('a 200 MB upload gets 413 JSON at the default limit, with or without Content-Length', async () => {
  const s = await startServer();
  try {
    const data = new Uint8Array(200 * 1024 * 1024);
    const sized = await upload(s.url, {}, { name: 'huge.png', data });
    assert.equal(sized.status, 413);
    assert.match(sized.body.error, /limit of 104857600 bytes/);
    const boundary = 'lkboundary';
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="huge.png"\r\n\r\n`));
      },
      pull(c) {
        if (sent >= data.length) {
          c.enqueue(Buffer.from(`\r\n--${boundary}--\r\n`));
          c.close();
          return;
        }
        c.enqueue(data.subarray(sent, sent + (4 << 20)));
        sent += 4 << 20;
      },
    });
    const chunked = await fetch(`${s.url}/upload/image`, { method: 'POST', body: stream, duplex: 'half', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } } as RequestInit);
    assert.equal(chunked.status, 413);
    assert.equal(typeof (await chunked.json() as Json).error, 'string');
    assert.deepEqual(await readdir(s.dirs.input), []);
    assert.equal((await getJson(`${s.url}/prompt`)).status, 200);
  } finally {
    await s.close();
  }
});

test('/upload/mask copies the upload alpha into the referenced image', async () => {
  const s = await startServer();
  try {
    await upload(s.url, {}, { name: 'photo.png', data: await png(4, 4, [200, 100, 50, 1]) });
    const mask = await sharp({ create: { width: 4, height: 4, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer();
    const r = await upload(s.url, { original_ref: JSON.stringify({ filename: 'photo.png', type: 'input', subfolder: '' }), type: 'input', subfolder: 'clipspace' }, { name: 'photo-mask.png', data: mask }, '/upload/mask');
    assert.deepEqual(r.body, { name: 'photo-mask.png', subfolder: 'clipspace', type: 'input' });
    const { data } = await sharp(join(s.dirs.input, 'clipspace', 'photo-mask.png')).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([...data.subarray(0, 4)], [200, 100, 50, 128]);
  } finally {
    await s.close();
  }
});

test('--auth-token guards every route and the websocket; Origin is checked on POST and the upgrade', async () => {
  const s = await startServer({ authToken: 's3cret' });
  try {
    const none = await getJson(`${s.url}/system_stats`);
    assert.equal(none.status, 401);
    assert.equal(typeof none.body.error, 'string');
    assert.equal((await getJson(`${s.url}/view?filename=x.png`)).status, 401);
    assert.equal((await getJson(`${s.url}/prompt`, { authorization: 'Bearer wrong' })).status, 401);
    assert.equal((await getJson(`${s.url}/prompt`, { authorization: 'Bearer s3cret' })).status, 200);
    assert.equal((await getJson(`${s.url}/api/prompt?token=s3cret`)).status, 200);
    await assert.rejects(WsClient.connect(s.url, '/ws?clientId=a'), /401/);
    const ws = await WsClient.connect(s.url, '/ws?clientId=a&token=s3cret');
    ws.close();
    const ws2 = await WsClient.connect(s.url, '/ws?clientId=b', { authorization: 'Bearer s3cret' });
    ws2.close();

    const auth = { authorization: 'Bearer s3cret' };
    const port = new URL(s.url).port;
    const evil = await postJson(`${s.url}/prompt`, { prompt: saveGraph() }, { ...auth, origin: 'http://evil.example' });
    assert.equal(evil.status, 403);
    assert.equal(typeof evil.body.error, 'string');
    assert.equal((await postJson(`${s.url}/interrupt`, {}, { ...auth, origin: `http://127.0.0.1:${Number(port) + 1}` })).status, 403);
    const same = await postJson(`${s.url}/prompt`, { prompt: saveGraph() }, { ...auth, origin: `http://127.0.0.1:${port}` });
    assert.equal(same.status, 200);
    await waitFor(async () => Object.keys((await getJson(`${s.url}/history/${same.body.prompt_id}`, auth)).body).length > 0, 'prompt ran');
    assert.equal((await getJson(`${s.url}/prompt`, { ...auth, origin: 'http://evil.example' })).status, 200, 'GET is not origin-checked');
    await assert.rejects(WsClient.connect(s.url, '/ws?clientId=c&token=s3cret', { origin: 'http://evil.example' }), /403/);
  } finally {
    await s.close();
  }
});
