// `latentkit serve` itself (the real engine): starts on an ephemeral port, lists the models folder in
// /object_info, refuses a non-loopback bind without --listen being asked, and stops cleanly on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { getJson, tempRoot } from './helpers.js';

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));

test('latentkit serve starts with the real engine, serves /object_info, exits 0 on SIGTERM', async () => {
  const root = await tempRoot();
  await mkdir(join(root, 'models', 'checkpoints'), { recursive: true });
  await writeFile(join(root, 'models', 'checkpoints', 'mine.safetensors'), 'x');
  const child = spawn(process.execPath, ['--import', 'tsx', entry, 'serve', '--port', '0', '--data', join(root, 'data'), '--models', join(root, 'models'), '--auth-token', 'tok'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /listening on (\S+) \(data in (.*), token required\)/.exec(out);
        if (m) resolve(m[1]);
      });
      void exited.then((code) => reject(new Error(`serve exited (${code}): ${err}`)));
    });
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const auth = { authorization: 'Bearer tok' };
    const info = (await getJson(`${url}/object_info/CheckpointLoaderSimple`, auth)).body;
    assert.deepEqual(info.CheckpointLoaderSimple.input.required.ckpt_name[0], ['mine.safetensors']);
    assert.ok((await getJson(`${url}/api/object_info`, auth)).body.KSampler);
    const stats = (await getJson(`${url}/system_stats`, auth)).body;
    assert.ok(stats.system.argv.includes('***') && !stats.system.argv.includes('tok'), 'the token is not shown');
    assert.ok(existsSync(join(root, 'data', 'queue.sqlite')));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  } finally {
    child.kill('SIGKILL');
  }
});
