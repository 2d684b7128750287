// The web UI's pure pieces: weight editing, infotext, PNG text chunks, the Generate form's graph, and
// UI ⇄ API workflow conversion (checked against ComfyUI's own PNGs, where the reference data is).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { withPngText } from '../../src/formats/png-text.js';
import { editWeight } from '../../web/src/lib/weight.js';
import { formatInfotext, parseInfotext } from '../../web/src/lib/infotext.js';
import { pngTextChunks } from '../../web/src/lib/png-text.js';
import { extractLoras, generateGraph, type GenerateForm } from '../../web/src/lib/generate-graph.js';
import { apiToUi, uiToApi, workflowKind, type ObjectInfo } from '../../web/src/lib/workflow-convert.js';
import { REF, refTests } from '../ref.js';

test('Ctrl+↑/↓: wraps the word under the caret, steps an existing weight, unwraps at 1', () => {
  let r = editWeight('a red fox', 3, 3, 0.1);
  assert.deepEqual(r, { text: 'a (red:1.1) fox', start: 3, end: 6 });
  r = editWeight(r.text, r.start, r.end, 0.1);
  assert.equal(r.text, 'a (red:1.2) fox');
  r = editWeight(r.text, r.start, r.end, -0.1);
  r = editWeight(r.text, r.start, r.end, -0.1);
  assert.deepEqual(r, { text: 'a red fox', start: 2, end: 5 });
  assert.equal(editWeight('red fox, snow', 0, 7, -0.1).text, '(red fox:0.9), snow');
});

test('infotext: A1111 parameters parsed, quoted values, multi-line prompts; round trip', () => {
  const text = 'a fox,\nin the snow\nNegative prompt: blurry, ugly\nSteps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 512x768, Model: sd15, Lora hashes: "a: 1, b: 2"';
  const p = parseInfotext(text);
  assert.equal(p.prompt, 'a fox,\nin the snow');
  assert.equal(p.negativePrompt, 'blurry, ugly');
  assert.equal(p.params.Seed, '1234');
  assert.equal(p.params['Schedule type'], 'Karras');
  assert.equal(p.params['Lora hashes'], 'a: 1, b: 2');
  assert.deepEqual(parseInfotext(formatInfotext(p)), p);
  assert.deepEqual(parseInfotext('just a prompt: with a colon').params, {});
});

test('PNG text chunks in the browser reader match what the server writes', () => {
  const png = Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d4944415478da63f8cfc0f01f0005000201e2b8c5e60000000049454e44ae426082', 'hex');
  const tagged = withPngText(png, { prompt: '{"1":{}}', parameters: 'ü fox\nSteps: 1, Seed: 2, Size: 8x8' });
  const t = pngTextChunks(new Uint8Array(tagged));
  assert.equal(t.prompt, '{"1":{}}');
  assert.equal(t.parameters, 'ü fox\nSteps: 1, Seed: 2, Size: 8x8');
  assert.throws(() => pngTextChunks(new Uint8Array([1, 2, 3])), /not a PNG/);
});

const form: GenerateForm = {
  prompt: 'a fox <lora:detail:0.6>, snow', negativePrompt: 'blurry', checkpoint: 'm.safetensors', sampler: 'euler', scheduler: 'karras',
  steps: 4, cfg: 7, seed: 5, width: 64, height: 96, batchSize: 2, clipSkip: 2, hires: { enabled: true, scale: 2, steps: 3, denoise: 0.5 },
};

test('Generate form → ComfyUI graph: LoRA tags to loaders, clip skip, hires second pass', () => {
  assert.deepEqual(extractLoras('a <lora:x> b <lora:y:0.5:0.2>'), { text: 'a b', loras: [{ name: 'x', weight: 1 }, { name: 'y', weight: 0.5 }] });
  const g = generateGraph(form, ['sub/detail.safetensors']);
  const by = (c: string) => Object.entries(g).filter(([, n]) => n.class_type === c);
  assert.equal(by('LoraLoader')[0][1].inputs.lora_name, 'sub/detail.safetensors');
  assert.equal(by('CLIPSetLastLayer')[0][1].inputs.stop_at_clip_layer, -2);
  assert.equal(by('CLIPTextEncode')[0][1].inputs.text, 'a fox, snow');
  const samplers = by('KSampler');
  assert.equal(samplers.length, 2);
  assert.deepEqual(samplers[1][1].inputs.latent_image, [by('LatentUpscaleBy')[0][0], 0]);
  assert.equal(samplers[1][1].inputs.denoise, 0.5);
  assert.deepEqual(by('EmptyLatentImage')[0][1].inputs, { width: 64, height: 96, batch_size: 2 });
  const inpaint = generateGraph({ ...form, hires: { ...form.hires, enabled: false }, init: { image: 'i.png', mask: 'm.png', denoise: 0.6 } });
  assert.ok(Object.values(inpaint).some((n) => n.class_type === 'SetLatentNoiseMask'));
  assert.equal(Object.values(inpaint).find((n) => n.class_type === 'KSampler')!.inputs.denoise, 0.6);
});

const MINI: ObjectInfo = {
  Loader: { input: { required: { ckpt_name: [['a.safetensors', 'b.safetensors']] } }, output: ['MODEL', 'CLIP'] },
  Sampler: { input: { required: { model: ['MODEL'], seed: ['INT', { default: 0 }], text: ['STRING', {}] }, optional: { strength: ['FLOAT', { default: 1 }] } }, output: ['LATENT'] },
};

test('API → UI → API is the identity (widgets, seed control value, links, ids)', () => {
  const api = { 4: { class_type: 'Loader', inputs: { ckpt_name: 'b.safetensors' } }, 7: { class_type: 'Sampler', inputs: { model: ['4', 0], seed: 9, text: 'hi', strength: 0.5 } } };
  const ui = apiToUi(api, MINI);
  assert.equal(workflowKind(ui), 'ui');
  assert.equal(workflowKind(api), 'api');
  assert.deepEqual(ui.nodes.find((n) => n.id === 7)!.widgets_values, [9, 'fixed', 'hi', 0.5]);
  assert.deepEqual(ui.links, [[1, 4, 0, 7, 0, 'MODEL']]);
  assert.deepEqual(uiToApi(ui, MINI), api);
  // a widget turned into an input keeps its link; muted nodes are left out
  ui.nodes.push({ id: 8, type: 'Loader', pos: [0, 0], mode: 2, widgets_values: ['a.safetensors'] });
  assert.equal(uiToApi(ui, MINI)['8'], undefined);
  assert.throws(() => uiToApi({ ...ui, nodes: [{ id: 1, type: 'Nope', pos: [0, 0] }] }, MINI), /unknown node type Nope/);
});

const refTest = refTests('workflow conversion on ComfyUI files', [join(REF, '..', 'api', 'comfy')]);
const COMFY = join(REF, '..', 'api', 'comfy');

refTest('UI-format workflows from ComfyUI PNGs convert to the API graph of the same PNG', () => {
  const info = JSON.parse(readFileSync(join(COMFY, 'object_info_core.json'), 'utf8')) as ObjectInfo;
  for (const name of ['img2img.json', 'lora_single.json']) {
    const ui = JSON.parse(readFileSync(join(COMFY, 'workflows', 'ui_format', name), 'utf8'));
    const api = JSON.parse(readFileSync(join(COMFY, 'workflows', name), 'utf8'));
    const got = uiToApi(ui, info);
    // older front-ends also exported the upload button's value; ComfyUI ignores it
    const strip = (g: Record<string, { class_type: string; inputs: Record<string, unknown> }>) => Object.fromEntries(Object.entries(g).map(([k, v]) => {
      const { 'choose file to upload': _upload, ...inputs } = v.inputs;
      return [k, { class_type: v.class_type, inputs }];
    }));
    assert.deepEqual(strip(got), strip(api), name);
    assert.deepEqual(strip(uiToApi(apiToUi(api, info), info)), strip(api), `${name} round trip`);
  }
});
