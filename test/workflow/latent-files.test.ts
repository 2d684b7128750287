// SaveLatent writes ComfyUI's .latent file under the output naming rules; LoadLatent reads it back
// (and scales files from before the format marker), with LoadImage-style validation of the name.
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openSafetensors, writeSafetensors } from '../../src/formats/safetensors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { WorkflowEngine, type ApiPrompt } from '../../src/workflow/engine.js';
import type { LatentValue } from '../../src/workflow/values.js';
import { TestHost } from './host.js';

test('SaveLatent → LoadLatent round trip, names and metadata as ComfyUI writes them', async () => {
  const host = new TestHost();
  const engine = new WorkflowEngine({ host });
  const save: ApiPrompt = {
    1: { class_type: 'EmptyLatentImage', inputs: { width: 64, height: 32, batch_size: 2 } },
    2: { class_type: 'LatentUpscaleBy', inputs: { samples: ['1', 0], upscale_method: 'nearest-exact', scale_by: 1 } },
    3: { class_type: 'SaveLatent', inputs: { samples: ['2', 0], filename_prefix: 'latents/run' } },
  };
  const v = await engine.validate(save);
  assert.ok(v.ok, JSON.stringify(v));
  const r = await engine.execute({ promptId: 's', prompt: v.prompt, outputs: v.outputs, extraData: { extra_pnginfo: { workflow: { nodes: [] } } } }, { send: () => {} });
  assert.equal(r.status, 'success');
  assert.deepEqual(r.outputs['3'], { latents: [{ filename: 'run_00001_.latent', subfolder: 'latents', type: 'output' }] });
  const file = join(host.dir('output' as never), 'latents', 'run_00001_.latent');
  const sd = await openSafetensors(file);
  assert.deepEqual(sd.info('latent_tensor')!.shape, [2, 4, 4, 8]);
  assert.ok(sd.info('latent_format_version_0'));
  assert.match(sd.metadata.prompt, /"class_type": "SaveLatent"/);
  assert.equal(sd.metadata.workflow, '{"nodes": []}');
  await sd.close();

  copyFileSync(file, join(host.dir('input'), 'mine.latent'));
  const old = join(host.dir('input'), 'old.latent');
  await writeSafetensors(old, { latent_tensor: Tensor.f32([1, 4, 1, 1], [0.18215, 0, 0, 0]) });
  assert.deepEqual(host.listFiles('input_latents'), ['mine.latent', 'old.latent']);
  const load = (name: string): ApiPrompt => ({
    1: { class_type: 'LoadLatent', inputs: { latent: name } },
    2: { class_type: 'SaveLatent', inputs: { samples: ['1', 0], filename_prefix: 'back' } },
  });
  const bad = await engine.validate(load('nope.latent'));
  assert.ok(!bad.ok);
  assert.equal(bad.nodeErrors['1'].errors[0].details, 'latent - Invalid latent file: nope.latent');
  const nodes = new Map(engine.registry.names.map((n) => [n, engine.registry.get(n)!]));
  const ctx = { host } as never;
  const [loaded] = (await nodes.get('LoadLatent')!.run({ latent: 'mine.latent' }, ctx)).outputs as LatentValue[];
  assert.deepEqual(loaded.shape, [2, 4, 4, 8]);
  const [scaled] = (await nodes.get('LoadLatent')!.run({ latent: 'old.latent' }, ctx)).outputs as LatentValue[];
  assert.ok(Math.abs(scaled.samples[0] - 1) < 1e-6, 'old files are divided by the scale factor');
});
