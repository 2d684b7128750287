// The annotator's canny (OpenCV's algorithm) against the ControlNet 1.1 annotator outputs, pixel for
// pixel. The input is the case's own `input_rgb` (after the annotator's resize, when it had one).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { canny } from '../../src/pipelines/preprocess/canny.js';
import { HAS_REF, REF, refTests } from '../ref.js';

const DIR = `${REF}/preprocessors`;
const test = refTests('canny against the annotator outputs', [DIR]);

interface Case { id: string; preprocessor: string; params: { low: number; high: number }; output: string; tensors_file: string }
const cases = HAS_REF ? (JSON.parse(await readFile(`${DIR}/cases.json`, 'utf8')) as { cases: Case[] }).cases.filter((c) => c.preprocessor === 'canny') : [];

test('canny: every annotator case pixel-exact', async () => {
  assert.ok(cases.length > 0);
  for (const c of cases) {
    const st = await openSafetensors(`${DIR}/${c.tensors_file}`);
    const input = await st.read('input_rgb');
    await st.close();
    const [h, w] = input.shape;
    const got = canny(input.data as Uint8Array, h, w, 3, c.params.low, c.params.high);
    const want = await sharp(`${DIR}/${c.output}`).extractChannel(0).raw().toBuffer();
    let diff = 0;
    for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) diff++;
    console.log(`  ${c.id}: ${diff} of ${got.length} pixels differ`);
    assert.equal(diff, 0, c.id);
  }
});
