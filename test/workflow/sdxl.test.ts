// The SDXL end-to-end cases of ../shared/ref/sdxl/e2e run as the ComfyUI API graphs they were made
// with (CheckpointLoaderSimple → CLIPTextEncode / CLIPTextEncodeSDXL / …Refiner / ConditioningZeroOut
// → KSampler / two KSamplerAdvanced → VAEDecode → SaveImage), from the seed alone: the saved image
// must be ComfyUI's within ±2 on ≥ 99% of the values.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { WorkflowEngine } from '../../src/workflow/engine.js';
import { HAS_REF, REF, refTests } from '../ref.js';
import { TestHost } from './host.js';

const SDXL = join(REF, 'sdxl');
const test = refTests('SDXL workflows end to end', [SDXL]);
const cases = HAS_REF ? (JSON.parse(readFileSync(join(SDXL, 'e2e', 'cases.json'), 'utf8')) as { cases: { id: string }[] }).cases : [];

for (const { id } of cases) {
  test(`${id}: the ComfyUI graph reproduces ComfyUI's image`, async () => {
    const dir = join(SDXL, 'e2e', 'cases', id);
    const host = new TestHost();
    for (const n of ['tiny-sdxl', 'tiny-sdxl-refiner']) host.link('checkpoints', `${n}.safetensors`, join(SDXL, 'ckpt', `${n}.safetensors`));
    const engine = new WorkflowEngine({ host });
    const v = await engine.validate(JSON.parse(readFileSync(join(dir, 'graph_api.json'), 'utf8')));
    assert.ok(v.ok, JSON.stringify(v));
    const messages: string[] = [];
    const r = await engine.execute({ promptId: id, prompt: v.prompt, outputs: v.outputs }, { send: (t, d) => { messages.push(`${t} ${JSON.stringify(d).slice(0, 400)}`); } });
    assert.equal(r.status, 'success', messages.filter((m) => m.startsWith('execution_error')).join('\n'));
    const got = await sharp(host.saved[0].png).raw().toBuffer();
    const want = await sharp(join(dir, 'image_0.png')).raw().toBuffer();
    assert.equal(got.length, want.length);
    let within = 0;
    let worst = 0;
    for (let i = 0; i < want.length; i++) {
      const d = Math.abs(got[i] - want[i]);
      if (d <= 2) within++;
      worst = Math.max(worst, d);
    }
    console.log(`  ${id} (workflow): pixels within ±2 ${(100 * within / want.length).toFixed(2)}% (worst ${worst})`);
    assert.ok(within / want.length >= 0.99);
    await engine.close();
  });
}
