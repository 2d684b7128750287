import assert from 'node:assert/strict';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { loadControlNet, type ControlNet } from '../../src/models/controlnet-model.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { maxRelError, REF, refTests } from '../ref.js';
import { loadTiny } from '../pipelines/models.js';

const test = refTests('ControlNet forward passes against the original cldm code');
const CN = `${REF}/controlnet`;
const CASES = ['b1-64-t500', 'b2-96x64-mixed-t', 'b1-64-guess-t437.25'];
const LAYOUTS = ['tiny-cn-sd1.pth', 'tiny-cn-sd1.safetensors', 'tiny-cn-sd1.prefixed.safetensors', 'tiny-cn-sd1-diffusers/controlnet'];
const TOL = 1e-4;

function scaled(r: Tensor, s: number): Tensor {
  return Tensor.f32(r.shape, r.toFloat32Array().map((v) => v * s));
}

test('ControlNet: every layout loads to the same graph; 7 residuals and the controlled UNet match cldm (1e-4)', async () => {
  const ref = await openSafetensors(`${CN}/forward.safetensors`);
  const base = await loadTiny('tiny-sd1');
  const nets: ControlNet[] = [];
  try {
    for (const layout of LAYOUTS) nets.push(await loadControlNet(`${CN}/models/${layout}`));
    assert.deepEqual(nets.map((n) => n.layout), ['ldm', 'ldm', 'ldm', 'diffusers']);
    for (const id of CASES) {
      const get = (k: string) => ref.read(`${id}.${k}`);
      const [x, hint, t, context] = await Promise.all([get('x'), get('hint'), get('t'), get('context')]);
      const scales = (await get('control_scales')).toFloat32Array();
      for (const [li, net] of nets.entries()) {
        const res = await net.residuals(x, hint, t, context, base.unetHeads);
        assert.equal(res.length, 7);
        let worst = 0;
        for (let i = 0; i < res.length; i++) {
          const want = await get(`residual_${String(i).padStart(2, '0')}`);
          assert.deepEqual(res[i].shape, want.shape);
          worst = Math.max(worst, maxRelError(res[i].toFloat32Array(), want.toFloat32Array()));
        }
        // cldm scales with zip: only the first 7 of the 13 scales reach the 7 residuals.
        const eps = await base.predict(x, t, context, undefined, res.map((r, i) => scaled(r, scales[i])));
        const e = maxRelError(eps.toFloat32Array(), (await get('eps_controlled')).toFloat32Array());
        console.log(`  ${id} ${LAYOUTS[li]}: residuals worst ${worst.toExponential(2)}, controlled UNet ${e.toExponential(2)}`);
        assert.ok(worst <= TOL, `residuals ${worst}`);
        assert.ok(e <= TOL, `controlled UNet ${e}`);
      }
      const plain = await base.predict(x, t, context);
      const e = maxRelError(plain.toFloat32Array(), (await get('eps_uncontrolled')).toFloat32Array());
      assert.ok(e <= TOL, `uncontrolled UNet ${e}`);
    }
  } finally {
    for (const n of nets) await n.close();
    await base.close();
    await ref.close();
  }
});

test('ControlNet: a diff ControlNet needs its base; with it, it loads', async () => {
  await assert.rejects(loadControlNet(`${CN}/models/tiny-cn-sd1-diff.safetensors`), /diff.*base model/);
  const base = await loadTiny('tiny-sd1');
  const net = await loadControlNet(`${CN}/models/tiny-cn-sd1-diff.safetensors`, { base: { weights: base.parts.weights.unet, prefix: base.parts.prefixes.unet } });
  assert.equal(net.layout, 'diff');
  await net.close();
  await base.close();
});
