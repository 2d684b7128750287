// Hashes as A1111 computes them, checked against sha256sum / dd / tail on the same byte ranges.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addnetHash, autoV2Hash, configureHashCache, legacyModelHash, loraShortHash, sha256File } from '../../src/formats/hash.js';
import { stat } from 'node:fs/promises';
import { REF, refTests } from '../ref.js';

const test = refTests('model hashes of tiny-sd1');

const FILE = `${REF}/ckpt/tiny-sd1.safetensors`;
const sh = (script: string, ...args: string[]) => execFileSync('bash', ['-c', script, 'sh', ...args], { encoding: 'utf8' }).trim().split(/\s+/)[0];

test('sha256, AutoV2, legacy and addnet hashes equal sha256sum of the right byte ranges', async () => {
  const full = sh('sha256sum "$1"', FILE);
  // A1111's model_hash: 0x10000 bytes from offset 0x100000 (= 16 blocks of 64 KiB).
  const legacy = sh('dd if="$1" bs=65536 skip=16 count=1 status=none | sha256sum', FILE).slice(0, 8);
  // kohya's addnet hash: everything after the 8-byte length and the JSON header.
  const n = Number(Buffer.from((await readFile(FILE)).subarray(0, 8)).readBigUInt64LE(0));
  const addnet = sh('tail -c +"$2" "$1" | sha256sum', FILE, String(n + 9));
  assert.equal(await sha256File(FILE), full);
  assert.equal(await autoV2Hash(FILE), full.slice(0, 10));
  assert.equal(await legacyModelHash(FILE), legacy);
  assert.equal(await addnetHash(FILE), addnet);
  assert.equal(await loraShortHash(FILE), addnet.slice(0, 12));
  console.log(`  tiny-sd1: sha256 ${full.slice(0, 16)}…, AutoV2 ${full.slice(0, 10)}, legacy ${legacy}, addnet ${addnet.slice(0, 12)} (all = coreutils)`);
  // A file shorter than 0x100000 bytes hashes the empty range, as A1111's seek-and-read does.
  const dir = await mkdtemp(join(tmpdir(), 'lk-hash-'));
  const small = join(dir, 'small.pt');
  await writeFile(small, 'not a model');
  assert.equal(await legacyModelHash(small), sh('printf "" | sha256sum').slice(0, 8));
  assert.equal(await loraShortHash(small), sh('sha256sum "$1"', small).slice(0, 12));
});

test('hashes are cached on disk by path + size + mtime', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-hashcache-'));
  configureHashCache({ dir, minBytes: 0 });
  try {
    const file = join(dir, 'model.safetensors');
    await writeFile(file, 'pretend this is 7 GB');
    const s = await stat(file);
    // A cache entry written by an earlier run is trusted without reading the file.
    await writeFile(join(dir, 'hashes.json'), JSON.stringify({ [`sha256|${file}|${s.size}|${s.mtimeMs}`]: 'f'.repeat(64) }));
    assert.equal(await sha256File(file), 'f'.repeat(64));
    // Touching the file changes the key: it is hashed again and the new entry stored.
    await utimes(file, new Date(), new Date(Date.now() + 5000));
    const fresh = await sha256File(file);
    assert.equal(fresh, sh('sha256sum "$1"', file));
    const saved = JSON.parse(await readFile(join(dir, 'hashes.json'), 'utf8')) as Record<string, string>;
    assert.equal(Object.values(saved).filter((v) => v === fresh).length, 1);
    assert.equal(Object.keys(saved).length, 2);
  } finally {
    configureHashCache({ dir: null, minBytes: 64 << 20 });
  }
});
