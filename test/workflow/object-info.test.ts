// `/object_info` as ComfyUI 0.3.6x prints it for every node latentkit has: the same keys, inputs,
// defaults, ranges, combos, outputs and categories (file lists are this install's, not that user's).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WorkflowEngine } from '../../src/workflow/engine.js';
import { REF, refTests } from '../ref.js';
import { TestHost } from './host.js';

const FILE = join(REF, '..', 'api', 'comfy', 'object_info_core.json');
const FILE_INPUTS = new Set(['ckpt_name', 'config_name', 'vae_name', 'lora_name', 'hypernetwork_name', 'model_name', 'control_net_name', 'image']);

const test = refTests('object_info', [FILE]);

/**
 * Nodes the stored /object_info (core nodes plus a few extras) does not list, as ComfyUI 0.3.6x
 * prints them (comfy_extras/nodes_clip_sdxl.py, V3 schema: unset options pruned, `{}` for sockets).
 */
const SIZE = (d: number) => ['INT', { default: d, min: 0, max: 16384 }];
const TEXT = ['STRING', { multiline: true, dynamicPrompts: true }];
const v3 = (name: string, required: Record<string, unknown[]>) => ({
  input: { required }, input_order: { required: Object.keys(required) },
  output: ['CONDITIONING'], output_is_list: [false], output_name: ['CONDITIONING'], output_tooltips: [null],
  name, display_name: null, description: '', python_module: 'comfy_extras.nodes_clip_sdxl', category: 'advanced/conditioning',
  output_node: false, deprecated: false, experimental: false, api_node: false,
});
const EXTRA: Record<string, Record<string, unknown>> = {
  CLIPTextEncodeSDXLRefiner: v3('CLIPTextEncodeSDXLRefiner', {
    ascore: ['FLOAT', { default: 6.0, min: 0.0, max: 1000.0, step: 0.01 }], width: SIZE(1024), height: SIZE(1024), text: TEXT, clip: ['CLIP', {}],
  }),
  CLIPTextEncodeSDXL: v3('CLIPTextEncodeSDXL', {
    clip: ['CLIP', {}], width: SIZE(1024), height: SIZE(1024), crop_w: SIZE(0), crop_h: SIZE(0), target_width: SIZE(1024), target_height: SIZE(1024), text_g: TEXT, text_l: TEXT,
  }),
};

test('object_info matches ComfyUI for every implemented node', () => {
  const core = JSON.parse(readFileSync(FILE, 'utf8')) as Record<string, Record<string, unknown>>;
  const want = { ...core, ...EXTRA };
  const host = new TestHost();
  host.link('checkpoints', 'a.safetensors', FILE);
  const got = new WorkflowEngine({ host }).objectInfo() as Record<string, Record<string, unknown>>;
  const missing = Object.keys(core).filter((k) => !(k in got));
  console.log(`# ${Object.keys(core).length - missing.length} of ${Object.keys(core).length} core classes implemented (and ${Object.keys(EXTRA).length} more); absent: ${missing.join(', ')}`);
  for (const [name, info] of Object.entries(got)) {
    const ref = structuredClone(want[name]);
    assert.ok(ref, `${name} is not a ComfyUI core node`);
    assert.deepEqual(Object.keys(info).sort(), Object.keys(ref).sort(), `${name}: keys`);
    const mine = structuredClone(info) as typeof ref;
    for (const section of ['required', 'optional'] as const) {
      const a = (mine.input as Record<string, Record<string, unknown[]>>)[section] ?? {};
      const b = (ref.input as Record<string, Record<string, unknown[]>>)[section] ?? {};
      for (const k of Object.keys(b)) {
        if (!FILE_INPUTS.has(k) || !a[k]) continue;
        // File lists are whatever the folders hold: compare the shape of the spec, not the names.
        for (const spec of [a[k], b[k]]) {
          if (Array.isArray(spec[0])) spec[0] = ['<files>'];
          const opts = spec[1] as Record<string, unknown> | undefined;
          if (opts && Array.isArray(opts.options)) opts.options = ['<files>'];
        }
      }
    }
    assert.deepEqual(mine, ref, name);
  }
});
