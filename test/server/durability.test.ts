// A prompt survives SIGKILL: the server is killed in the middle of a job, restarted on the same --data,
// and the job runs again first under the same id, lands in /history once, earlier history intact, and
// no partial output file is left behind.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { getJson, postJson, saveGraph, tempRoot, waitFor, waitGraph } from './helpers.js';

const script = fileURLToPath(new URL('./serve-fake.ts', import.meta.url));

async function spawnServer(data: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, '--data', data], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d) => { err += d; });
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /LISTENING (\S+)/.exec(out);
      if (m) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`server exited (${code}): ${err}`)));
  });
  return { child, url };
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  await done;
}

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

test('SIGKILL mid-job → restart → the job completes once, history intact, no partial files', async () => {
  const root = await tempRoot();
  const data = join(root, 'data');
  const flag = join(root, 'go');
  const started = join(root, 'started');
  let { child, url } = await spawnServer(data);
  try {
    const first = (await postJson(`${url}/prompt`, { prompt: saveGraph(0.5, 'before'), client_id: 'c' })).body.prompt_id;
    await waitFor(async () => Object.keys((await getJson(`${url}/history/${first}`)).body).length > 0, 'first prompt');
    const victim = (await postJson(`${url}/prompt`, { prompt: waitGraph(flag, started, 0.25, 'victim'), client_id: 'c' })).body.prompt_id;
    const queued = (await postJson(`${url}/prompt`, { prompt: saveGraph(0.75, 'after') })).body.prompt_id;
    await waitFor(() => existsSync(started), 'job start');
    await kill(child, 'SIGKILL');

    await writeFile(flag, '');
    ({ child, url } = await spawnServer(data));
    const q = (await getJson(`${url}/queue`)).body;
    assert.ok([...q.queue_running, ...q.queue_pending].some((i: unknown[]) => i[1] === victim), 'the killed job is queued again');
    await waitFor(async () => Object.keys((await getJson(`${url}/history/${queued}`)).body).length > 0, 'queue drained');
    const hist = (await getJson(`${url}/history`)).body;
    assert.deepEqual(Object.keys(hist), [first, victim, queued], 'the interrupted job ran first after the restart, each id once');
    assert.equal(hist[victim].status.status_str, 'success');
    assert.deepEqual(hist[victim].outputs['9'].images, [{ filename: 'victim_00001_.png', subfolder: '', type: 'output' }]);
    assert.equal(hist[first].outputs['9'].images[0].filename, 'before_00001_.png');

    const files = await filesUnder(join(data, 'output'));
    assert.deepEqual(files.map((f) => f.slice(join(data, 'output').length + 1)).sort(), ['after_00001_.png', 'before_00001_.png', 'victim_00001_.png']);
    for (const f of files) await sharp(await readFile(f)).stats(); // every file decodes in full
  } finally {
    await kill(child, 'SIGTERM');
  }
});

test('SIGTERM leaves the running prompt to run again; history survives restarts', async () => {
  const root = await tempRoot();
  const data = join(root, 'data');
  const flag = join(root, 'go');
  const started = join(root, 'started');
  let { child, url } = await spawnServer(data);
  try {
    const job = (await postJson(`${url}/prompt`, { prompt: waitGraph(flag, started) })).body.prompt_id;
    await waitFor(() => existsSync(started), 'job start');
    await kill(child, 'SIGTERM');
    assert.equal(existsSync(join(data, 'output', 'wait_00001_.png')), false);
    await writeFile(flag, '');
    ({ child, url } = await spawnServer(data));
    const h = await waitFor(async () => (await getJson(`${url}/history/${job}`)).body[job], 'job after restart');
    assert.equal(h.status.status_str, 'success');
    await kill(child, 'SIGTERM');
    ({ child, url } = await spawnServer(data));
    assert.deepEqual(Object.keys((await getJson(`${url}/history`)).body), [job]);
  } finally {
    await kill(child, 'SIGTERM');
  }
});
