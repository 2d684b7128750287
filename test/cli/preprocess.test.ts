// `latentkit preprocess canny` from the image files themselves (RGB and RGBA), pixel-exact against the
// annotator's outputs for the cases without a resize.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { HAS_REF, REF, refTests } from '../ref.js';

const DIR = `${REF}/preprocessors`;
const test = refTests('latentkit preprocess canny', [DIR]);
const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));

interface Case { id: string; preprocessor: string; image: string; params: { resolution?: number }; output: string; cli: string[] }
const cases = HAS_REF ? (JSON.parse(await readFile(`${DIR}/cases.json`, 'utf8')) as { cases: Case[] }).cases
  .filter((c) => c.preprocessor === 'canny' && c.params.resolution === undefined && !c.image.includes('512')) : [];

test('preprocess canny: the annotator output from the image file (RGB and RGBA)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-pre-'));
  for (const c of cases) {
    const out = join(dir, `${c.id}.png`);
    const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...c.cli, '--image', `${DIR}/${c.image}`, '--out', out], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const got = await sharp(out).extractChannel(0).raw().toBuffer();
    const want = await sharp(`${DIR}/${c.output}`).extractChannel(0).raw().toBuffer();
    assert.ok(got.equals(want), `${c.id} differs`);
  }
  const bad = spawnSync(process.execPath, ['--import', 'tsx', entry, 'preprocess', 'mlsd', '--image', `${DIR}/${cases[0].image}`, '--out', join(dir, 'x.png')], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /not available yet/);
});
