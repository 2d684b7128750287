// The real ComfyUI graphs of ../shared/api/comfy/workflows: each gets ComfyUI 0.3.64's validation
// answer (status, error, node_errors compared as the README says), and each whose nodes and model
// families latentkit has runs to completion on the tiny checkpoints under the names it asks for.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openStateDict } from '../../src/formats/open.js';
import { writeSafetensors } from '../../src/formats/safetensors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { WorkflowEngine, type ApiPrompt, type NodeErrors, type ValidationResult } from '../../src/workflow/engine.js';
import { writeHypernetwork } from '../adapters/hypernetwork-fixtures.js';
import { writeTinyControlNet } from '../models/controlnet-fixtures.js';
import { rrdbWeights, saveSafetensors } from '../models/esrgan-fixtures.js';
import { testPicture, writePng } from '../pipelines/img2img-fixtures.js';
import { writeTinyLora } from '../pipelines/models.js';
import { REF, refTests } from '../ref.js';
import { writePt } from '../text/ti-fixtures.js';
import { TestHost } from './host.js';

const DIR = join(REF, '..', 'api', 'comfy', 'workflows');
const SD1 = join(REF, 'ckpt', 'tiny-sd1-std.safetensors');
const SD2 = join(REF, 'ckpt', 'tiny-sd2-std.safetensors');
const SD2_NAMES = ['v2-1_768-ema-pruned.ckpt', '512-inpainting-ema.safetensors'];
/** The SDXL files the published graphs name, played by the tiny SDXL base and refiner. */
const SDXL_FILES: Record<string, string> = {
  'sd_xl_base_1.0.safetensors': join(REF, 'sdxl', 'ckpt', 'tiny-sdxl.safetensors'),
  'sd_xl_refiner_1.0.safetensors': join(REF, 'sdxl', 'ckpt', 'tiny-sdxl-refiner.safetensors'),
};
/** Families whose graphs validate but cannot run until their issues land. */
const NOT_YET = ['sd3.5', 'clip_vision'];

interface Entry {
  file: string;
  format: string;
  needs?: string[];
  models_expected?: Record<string, string[]>;
  input_images?: string[];
  expected: { http_status: number; body?: { error?: Record<string, unknown>; node_errors?: Record<string, NodeErrors> }; summary: string };
  latentkit_expected?: { http_status: number; error_type: string };
}

const manifest = existsSync(DIR) ? JSON.parse(readFileSync(join(DIR, 'manifest.json'), 'utf8')) as { files: Entry[] } : { files: [] };

async function hostFor(e: Entry): Promise<TestHost> {
  const host = new TestHost();
  const m = e.models_expected ?? {};
  for (const n of m.ckpt_name ?? []) host.link('checkpoints', n, SDXL_FILES[n] ?? (SD2_NAMES.includes(n) ? SD2 : SD1));
  for (const n of m.lora_name ?? []) await writeTinyLora(join(host.dir('loras'), n));
  for (const n of m.hypernetwork_name ?? []) await writeHypernetwork(join(host.dir('hypernetworks'), n), [32, 64], 5);
  for (const n of m.model_name ?? []) await saveSafetensors(join(host.dir('upscale_models'), n), rrdbWeights({ layout: 'esrgan-new', nf: 8, gc: 4, nb: 1, ups: 1 }));
  for (const n of m.vae_name ?? []) {
    // The checkpoint's own VAE as a separate file, as users have vae-ft-mse-….
    const sd = await openStateDict(SD1);
    const tensors: Record<string, Tensor> = {};
    for (const k of sd.keys()) if (k.startsWith('first_stage_model.')) tensors[k.slice('first_stage_model.'.length)] = await sd.read(k);
    await sd.close();
    await writeSafetensors(join(host.dir('vae'), n), tensors);
  }
  for (const n of m.control_net_name ?? []) await writeTinyControlNet(join(host.dir('controlnet'), n), SD1);
  for (const n of m.clip_name ?? []) host.link('clip_vision', n, SD1);
  for (const n of e.input_images ?? []) await writePng(join(host.dir('input'), n), testPicture(64, 64));
  if ((e.needs ?? []).includes('embedding')) {
    const width = 32;
    await writePt(host.dir('embeddings'), 'SDA768.pt', Float32Array.from({ length: 2 * width }, (_, i) => Math.sin(i) * 0.1), 2, width);
  }
  return host;
}

/**
 * The published graphs ask for 512–1152 pixels and 12–20 steps; the tiny models prove the same
 * plumbing at an eighth of the size and 3 steps, which keeps `npm test` short.
 */
function shrink(prompt: ApiPrompt): void {
  for (const node of Object.values(prompt)) {
    for (const k of ['width', 'height', 'x', 'y']) {
      const v = node.inputs[k];
      if (typeof v === 'number' && v >= 64 && !Array.isArray(v)) node.inputs[k] = Math.max(8, Math.round(v / 64) * 8);
    }
    if (typeof node.inputs.steps === 'number') node.inputs.steps = Math.min(node.inputs.steps, 3);
  }
}

/** The answer `POST /prompt` gives for a validation result (server.py's wrapping). */
function answer(v: ValidationResult): { status: number; error?: Record<string, unknown>; node_errors: Record<string, NodeErrors> } {
  return v.ok ? { status: 200, node_errors: v.nodeErrors } : { status: 400, error: v.error as unknown as Record<string, unknown>, node_errors: v.nodeErrors };
}

const withoutTraceback = (e: Record<string, unknown>) => {
  const x = structuredClone(e) as { extra_info?: Record<string, unknown> };
  delete x.extra_info?.traceback;
  return JSON.stringify(x);
};

function sameNodeErrors(got: Record<string, NodeErrors>, want: Record<string, NodeErrors>, file: string): void {
  assert.deepEqual(Object.keys(got).sort(), Object.keys(want).sort(), `${file}: node ids`);
  for (const [id, w] of Object.entries(want)) {
    const g = got[id];
    assert.equal(g.class_type, w.class_type, `${file}: class of ${id}`);
    assert.deepEqual([...g.dependent_outputs].sort(), [...w.dependent_outputs].sort(), `${file}: dependent_outputs of ${id}`);
    assert.deepEqual(g.errors.map((e) => withoutTraceback(e as unknown as Record<string, unknown>)).sort(),
      w.errors.map((e) => withoutTraceback(e as unknown as Record<string, unknown>)).sort(), `${file}: errors of ${id}`);
  }
}

const test = refTests('ComfyUI workflows', [REF, DIR]);

{
  for (const e of manifest.files) {
    const blocked = (e.needs ?? []).filter((n) => NOT_YET.includes(n));
    test(`${e.file}: ${e.expected.summary.split('\n')[0]}`, async () => {
      const host = await hostFor(e);
      const engine = new WorkflowEngine({ host });
      const prompt = JSON.parse(readFileSync(join(DIR, e.file), 'utf8')) as unknown;
      const v = await engine.validate(prompt);
      const got = answer(v);
      if (e.format === 'ui') {
        assert.equal(got.status, e.latentkit_expected!.http_status);
        assert.equal(got.error?.type, e.latentkit_expected!.error_type);
        return;
      }
      const classes = Object.values(prompt as ApiPrompt).map((n) => n.class_type);
      const absent = classes.filter((c) => !engine.registry.get(c));
      if (absent.length && e.expected.body?.error?.type !== 'invalid_prompt') {
        // A family latentkit does not have yet: its classes are absent, so the answer is invalid_prompt.
        assert.ok(blocked.length > 0, `${e.file}: ${absent.join(', ')} missing though nothing blocks it`);
        assert.equal(got.status, 400);
        assert.equal(got.error?.type, 'invalid_prompt');
        assert.match(String(got.error?.message), /does not exist/);
        return;
      }
      const want = e.expected.body!;
      assert.equal(got.status, e.expected.http_status, `${e.file}: ${JSON.stringify(got)}`);
      if (want.error) {
        assert.equal(got.error?.type, want.error.type);
        assert.equal(got.error?.message, want.error.message);
        if (want.error.type !== 'prompt_outputs_failed_validation') assert.equal(got.error?.details, want.error.details);
      }
      sameNodeErrors(got.node_errors, want.node_errors ?? {}, e.file);
      if (!v.ok || blocked.length) return;
      shrink(v.prompt);
      const messages: string[] = [];
      const r = await engine.execute({ promptId: e.file, prompt: v.prompt, outputs: v.outputs }, { send: (t, d) => { messages.push(`${t} ${JSON.stringify(d).slice(0, 300)}`); } });
      assert.equal(r.status, 'success', messages.filter((m) => m.startsWith('execution_error')).join('\n'));
      for (const o of v.outputs) assert.ok((r.outputs[o]?.images as unknown[]).length >= 1, `${e.file}: output ${o} saved images`);
      await engine.close();
      console.log(`# ${e.file}: ran ${v.outputs.length} output(s), ${host.saved.length} image(s)`);
    });
  }
}
