// The workflow engine on the tiny checkpoints: a ComfyUI graph gives the image `txt2img` gives under
// the comfy profile, unchanged re-queues are answered from the cache, changed inputs re-run only what
// depends on them, and interrupts stop between steps.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCheckpoint } from '../../src/models/checkpoint.js';
import { txt2img } from '../../src/pipelines/txt2img.js';
import { WorkflowEngine, type ApiPrompt } from '../../src/workflow/engine.js';
import { imageToRgb8 } from '../../src/workflow/nodes/define.js';
import type { ImageBatch } from '../../src/workflow/types.js';
import { REF, refTests } from '../ref.js';
import { TestHost } from './host.js';

const WORKFLOWS = join(REF, '..', 'api', 'comfy', 'workflows');
const SD1 = join(REF, 'ckpt', 'tiny-sd1-std.safetensors');

function graph(seed = 5, steps = 4): ApiPrompt {
  const g = JSON.parse(readFileSync(join(WORKFLOWS, 'default_txt2img.json'), 'utf8')) as ApiPrompt;
  Object.assign(g['3'].inputs, { seed, steps });
  Object.assign(g['5'].inputs, { width: 64, height: 64 });
  return g;
}

function collect() {
  const messages: [string, Record<string, unknown>][] = [];
  return { messages, sink: { send: (t: string, d: Record<string, unknown>) => { messages.push([t, d]); } } };
}

const test = refTests('workflow engine on tiny-sd1-std', [REF, WORKFLOWS]);

{
  const host = new TestHost();
  host.link('checkpoints', 'v1-5-pruned-emaonly.safetensors', SD1);
  const engine = new WorkflowEngine({ host });

  test('default graph = txt2img --profile comfy (pixels within ±1), then cached', async () => {
    const v = await engine.validate(graph());
    assert.ok(v.ok, JSON.stringify(v));
    const { messages, sink } = collect();
    const r = await engine.execute({ promptId: 'p1', prompt: v.prompt, outputs: v.outputs }, sink);
    assert.equal(r.status, 'success', JSON.stringify(messages.at(-1)));
    assert.deepEqual(Object.keys(r.outputs), ['9']);
    const types = messages.map(([t]) => t);
    assert.equal(types[0], 'execution_start');
    assert.equal(types[1], 'execution_cached');
    assert.ok(types.filter((t) => t === 'progress').length >= 4);
    assert.equal(types.at(-1), 'execution_success');

    const model = await loadCheckpoint(SD1);
    const ref = await txt2img(model, {
      prompt: 'masterpiece best quality girl', negativePrompt: 'bad hands', width: 64, height: 64, steps: 4, cfgScale: 8,
      sampler: 'euler', scheduler: 'normal', seed: 5, profile: 'comfy',
    });
    const saved = host.saved.at(-1)!;
    const { data } = await (await import('sharp')).default(saved.png).raw().toBuffer({ resolveWithObject: true });
    let worst = 0;
    for (let k = 0; k < data.length; k++) worst = Math.max(worst, Math.abs(data[k] - ref.images[0].rgb[k]));
    console.log(`# workflow vs txt2img --profile comfy: worst pixel difference ${worst}`);
    assert.ok(worst <= 1);

    const again = collect();
    const before = host.saved.length;
    const r2 = await engine.execute({ promptId: 'p2', prompt: v.prompt, outputs: v.outputs }, again.sink);
    assert.equal(r2.status, 'success');
    assert.equal(host.saved.length, before, 'an unchanged re-queue writes no file');
    const cached = again.messages.find(([t]) => t === 'execution_cached')![1].nodes as string[];
    assert.deepEqual([...cached].sort(), ['3', '4', '5', '6', '7', '8', '9']);
    assert.deepEqual(r2.outputs, r.outputs);
    assert.equal(again.messages.filter(([t]) => t === 'executing').length, 0);
    await model.close();
  });

  test('a new seed re-runs the sampler and what follows only', async () => {
    const v = await engine.validate(graph(6));
    assert.ok(v.ok);
    const { messages, sink } = collect();
    await engine.execute({ promptId: 'p3', prompt: v.prompt, outputs: v.outputs }, sink);
    const ran = messages.filter(([t]) => t === 'executing').map(([, d]) => d.node);
    assert.deepEqual(ran, ['3', '8', '9']);
  });

  test('interrupt stops between steps', async () => {
    const v = await engine.validate(graph(7, 6));
    assert.ok(v.ok);
    const { messages } = collect();
    const r = await engine.execute({ promptId: 'p4', prompt: v.prompt, outputs: v.outputs }, {
      send: (t, d) => {
        messages.push([t, d]);
        if (t === 'progress' && d.value === 2) engine.interrupt();
      },
    });
    assert.equal(r.status, 'interrupted');
    assert.equal(messages.at(-1)![0], 'execution_interrupted');
    assert.equal(messages.at(-1)![1].node_id, '3');
  });

  test('VAEDecode output is clamped 0..1 and saved as 8-bit', () => {
    const img: ImageBatch = { batch: 1, height: 1, width: 2, channels: 3, data: Float32Array.of(0, 0.5, 1, 1, 0.999, 0.001) };
    assert.deepEqual([...imageToRgb8(img, 0)], [0, 127, 255, 255, 254, 0]);
  });

  test('SamplerCustom (KSamplerSelect, BasicScheduler, RandomNoise) = KSampler for euler/normal', async () => {
    const g = graph(11, 4);
    const custom: ApiPrompt = {
      ...structuredClone(g),
      3: { class_type: 'SamplerCustom', inputs: { model: ['4', 0], add_noise: true, noise_seed: 11, cfg: 8, positive: ['6', 0], negative: ['7', 0], sampler: ['20', 0], sigmas: ['21', 0], latent_image: ['5', 0] } },
      20: { class_type: 'KSamplerSelect', inputs: { sampler_name: 'euler' } },
      21: { class_type: 'BasicScheduler', inputs: { model: ['4', 0], scheduler: 'normal', steps: 4, denoise: 1 } },
      10: { class_type: 'VAEDecode', inputs: { samples: ['3', 1], vae: ['4', 2] } },
      11: { class_type: 'PreviewImage', inputs: { images: ['10', 0] } },
    };
    const run = async (p: ApiPrompt) => {
      const v = await engine.validate(p);
      assert.ok(v.ok, JSON.stringify(v));
      const r = await engine.execute({ promptId: 'c', prompt: v.prompt, outputs: v.outputs }, collect().sink);
      assert.equal(r.status, 'success');
      return r;
    };
    await run(g);
    const k = host.saved.at(-1)!.png;
    const r = await run(custom);
    assert.deepEqual(Object.keys(r.outputs).sort(), ['11', '9']);
    const saved = host.saved.slice(-2).find((s) => s.file.includes('output'))!;
    const sharp = (await import('sharp')).default;
    const a = (await sharp(k).raw().toBuffer());
    const b = (await sharp(saved.png).raw().toBuffer());
    assert.deepEqual(a, b, 'the same pixels as KSampler');
  });

  test('SDTurboScheduler gives the σ of timesteps 999, 899, … and 0', async () => {
    const { sdTurboSigmas } = await import('../../src/pipelines/comfy-sample.js');
    const s = sdTurboSigmas(2, 1);
    assert.equal(s.length, 3);
    assert.equal(s[2], 0);
    assert.ok(s[0] > 14 && s[0] < 15, `σ(999) = ${s[0]}`);
    assert.deepEqual(sdTurboSigmas(1, 0.5), [sdTurboSigmas(10, 1)[5], 0]);
  });

  test('InpaintModelConditioning feeds an inpainting checkpoint its mask and masked-image channels', async () => {
    const { makeTinyInpaintCheckpoint, testPicture, writePng } = await import('../pipelines/img2img-fixtures.js');
    host.link('checkpoints', 'inpaint.safetensors', await makeTinyInpaintCheckpoint('tiny-sd1-std'));
    const picture = testPicture(64, 64);
    const rgba = { width: 64, height: 64, channels: 4 as const, data: new Uint8Array(64 * 64 * 4) };
    for (let p = 0; p < 64 * 64; p++) {
      rgba.data.set(picture.data.subarray(p * 3, p * 3 + 3), p * 4);
      rgba.data[p * 4 + 3] = p % 64 >= 32 ? 0 : 255;   // transparent right half = the part to repaint
    }
    await writePng(join(host.dir('input'), 'half.png'), rgba as never);
    const g: ApiPrompt = {
      1: { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: 'inpaint.safetensors' } },
      2: { class_type: 'LoadImage', inputs: { image: 'half.png' } },
      3: { class_type: 'CLIPTextEncode', inputs: { text: 'a red door', clip: ['1', 1] } },
      4: { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['1', 1] } },
      5: { class_type: 'InpaintModelConditioning', inputs: { positive: ['3', 0], negative: ['4', 0], vae: ['1', 2], pixels: ['2', 0], mask: ['2', 1], noise_mask: true } },
      6: { class_type: 'KSampler', inputs: { model: ['1', 0], seed: 3, steps: 3, cfg: 5, sampler_name: 'euler', scheduler: 'normal', positive: ['5', 0], negative: ['5', 1], latent_image: ['5', 2], denoise: 1 } },
      7: { class_type: 'VAEDecode', inputs: { samples: ['6', 0], vae: ['1', 2] } },
      8: { class_type: 'SaveImage', inputs: { images: ['7', 0], filename_prefix: 'inpaint' } },
    };
    const v = await engine.validate(g);
    assert.ok(v.ok, JSON.stringify(v));
    const { messages, sink } = collect();
    const r = await engine.execute({ promptId: 'inpaint', prompt: v.prompt, outputs: v.outputs }, sink);
    assert.equal(r.status, 'success', JSON.stringify(messages.find(([t]) => t === 'execution_error')));
  });
}
