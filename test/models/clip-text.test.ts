import assert from 'node:assert/strict';
import { GraphBuilder } from '../../src/graph/builder.js';
import { stateDictWeights } from '../../src/graph/weights.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { buildClipText, detectClipText } from '../../src/models/clip-text.js';
import { createSession } from '../../src/runtime/session.js';
import { maxRelError, REF, refTests } from '../ref.js';

const test = refTests('text encoder parity on the tiny checkpoints');

const CASES = [
  { name: 'tiny-sd1', prefix: 'cond_stage_model.transformer.text_model.', heads: 2 },
  { name: 'tiny-sd2', prefix: 'cond_stage_model.model.', heads: 2 },
];

for (const { name, prefix, heads } of CASES) {
  test(`${name} text encoder: last and penultimate hidden states match (1e-4 relative)`, async () => {
    const ckpt = await openSafetensors(`${REF}/ckpt/${name}.safetensors`);
    const ref = await openSafetensors(`${REF}/out/${name}/text_encoder.safetensors`);
    const cfg = detectClipText(new Set(ckpt.keys()), (k) => ckpt.info(k)?.shape, prefix, heads);
    assert.equal(cfg.layers, 2);
    assert.equal(cfg.width, 32);
    const w = stateDictWeights(ckpt);
    const g = new GraphBuilder({ weights: w });
    const ids = g.input('ids', ['B', 77], 'i64');
    g.output(buildClipText(g, g.scope(prefix.slice(0, -1)), cfg, ids), 'last');
    g.output(buildClipText(g, g.scope(prefix.slice(0, -1)), cfg, ids, cfg.layers - 1), 'penultimate');
    const s = await createSession(g.finish(), w);
    const out = await s.run({ ids: await ref.read('input_ids') });
    const last = maxRelError(out.last.toFloat32Array(), (await ref.read('last_hidden_state')).toFloat32Array());
    const pen = maxRelError(out.penultimate.toFloat32Array(), (await ref.read('penultimate_hidden_state')).toFloat32Array());
    console.log(`  ${name} text encoder (10 prompts): last ${last.toExponential(2)}, penultimate ${pen.toExponential(2)} (tolerance 1e-4)`);
    assert.ok(last < 1e-4 && pen < 1e-4);
    await s.release();
    await ckpt.close();
    await ref.close();
  });
}
