// A1111 hypernetworks: a .pt as A1111 saves it (per-width pairs of MLPs, layer_structure, activation,
// layer norm, a dropout slot in the Sequential) loaded through the safe pickle reader and applied to
// every attention's k / v context as  x + strength · mlp(x).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyHypernetworks, loadHypernetwork } from '../../src/adapters/hypernetwork.js';
import type { GraphBuilder } from '../../src/graph/builder.js';
import type { Value } from '../../src/graph/types.js';
import type { WeightSource } from '../../src/graph/weights.js';
import type { ContextHook } from '../../src/models/unet.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { writeHypernetwork } from './hypernetwork-fixtures.js';
import { loadTiny } from '../pipelines/models.js';
import { maxRelError, refTests } from '../ref.js';
import { randn, rng } from './fixtures.js';

const refTest = refTests('hypernetworks on tiny-sd1');

/** The test's own reading of A1111's module: x + s·LN(Linear(LN(relu(Linear(x))))). */
function referenceHook(s: number, sizes: number[]): ContextHook {
  return (g: GraphBuilder, ctx: Value) => {
    const d = ctx.shape[2] as number;
    if (!sizes.includes(d)) return { k: ctx, v: ctx };
    const run = (which: string) => {
      const p = `ref.${d}.${which}.linear`;
      let h = g.linear(ctx, g.scope(`${p}.0`));
      h = g.clip(h, 0, Infinity);
      h = g.layerNorm(h, g.scope(`${p}.2`), 1e-5);
      h = g.linear(h, g.scope(`${p}.4`));
      h = g.layerNorm(h, g.scope(`${p}.5`), 1e-5);
      return g.add(ctx, g.mul(h, s));
    };
    return { k: run('k'), v: run('v') };
  };
}

function withExtra(base: WeightSource, extra: Map<string, Tensor>, id: string): WeightSource {
  return {
    id: `${base.id}+${id}`,
    info: (k) => { const t = extra.get(k); return t ? { dtype: t.dtype, shape: t.shape } : base.info(k); },
    read: async (k) => extra.get(k) ?? base.read(k),
  };
}

refTest('an A1111 hypernetwork .pt applies x + s·mlp(x) to the k and v context of every attention of its widths', async () => {
  const model = await loadTiny('tiny-sd1');
  const dir = await mkdtemp(join(tmpdir(), 'lk-hn-'));
  try {
    const path = join(dir, 'tiny-hn.pt');
    // 32: the text context of attn2; 64: the tokens of attn1 (self-attention) in the tiny UNet.
    const tensors = await writeHypernetwork(path, [32, 64], 5);
    const hn = await loadHypernetwork(path);
    assert.equal(hn.name, 'tiny-hn');
    assert.deepEqual([...hn.sizes.keys()].sort(), [32, 64]);
    assert.deepEqual(hn.sizes.get(32)![0].map((l) => l.kind), ['linear', 'act', 'norm', 'linear', 'norm']);

    const r = rng(8);
    const x = randn(r, [1, 4, 8, 8]);
    const t = Tensor.f32([1], [400]);
    const c = randn(r, [1, 8, 32]);
    const base = (await model.predict(x, t, c)).toFloat32Array();
    const s = 0.7;
    const view = await applyHypernetworks(model, [{ path, strength: s }]);
    const got = (await view.predict(x, t, c)).toFloat32Array();

    const extra = new Map([...tensors].map(([k, v]) => [`ref.${k}`, v]));
    const ref = model.derive({ weights: { unet: withExtra(model.parts.weights.unet, extra, 'hnref') }, unetContextHook: referenceHook(s, [32, 64]) });
    const want = (await ref.predict(x, t, c)).toFloat32Array();
    const err = maxRelError(got, want);
    console.log(`  hypernetwork (widths 32 and 64, strength ${s}): relative error ${err.toExponential(2)} vs the test's reference (tolerance 1e-5); it moves the output by ${maxRelError(got, base).toExponential(2)}`);
    assert.ok(err < 1e-5, String(err));
    assert.ok(maxRelError(got, base) > 1e-3);

    assert.equal(await applyHypernetworks(model, [{ path, strength: 0 }]), model, 'strength 0 leaves the model as it is');
    assert.deepEqual((await model.predict(x, t, c)).toFloat32Array(), base, 'the base model is unchanged');
  } finally {
    await model.close();
  }
});

test('a .pt that is not a hypernetwork, or a hostile pickle, is refused with the file named', async () => {
  await assert.rejects(loadHypernetwork(join(import.meta.dirname, '../fixtures/pickle/model_p4.pt')), /model_p4\.pt: not an A1111 hypernetwork/);
  await assert.rejects(loadHypernetwork(join(import.meta.dirname, '../fixtures/pickle/hostile_posix_system.ckpt')), /hostile_posix_system\.ckpt/);
});
