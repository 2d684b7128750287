import assert from 'node:assert/strict';
import { GraphBuilder } from '../../src/graph/builder.js';
import { stateDictWeights } from '../../src/graph/weights.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { detectUNet } from '../../src/models/unet.js';
import { buildUNet } from '../../src/models/unet.js';
import { createSession } from '../../src/runtime/session.js';
import { maxRelError, REF, refTests } from '../ref.js';

const test = refTests('UNet parity on the tiny checkpoints');

for (const [name, heads] of [['tiny-sd1', { count: 2 }], ['tiny-sd2', { width: 16 }]] as const) {
  test(`${name} UNet matches the LDM reference (1e-4 relative)`, async () => {
    const ckpt = await openSafetensors(`${REF}/ckpt/${name}.safetensors`);
    const ref = await openSafetensors(`${REF}/out/${name}/unet.safetensors`);
    const cases = JSON.parse(await (await import('node:fs/promises')).readFile(`${REF}/out/${name}/cases.json`, 'utf8')).cases.find((c: { name: string }) => c.name === 'unet').cases;
    const keys = new Set(ckpt.keys());
    const cfg = detectUNet(keys, (k) => ckpt.info(k)?.shape, 'model.diffusion_model.', heads);
    const w = stateDictWeights(ckpt);
    const g = new GraphBuilder({ weights: w });
    const x = g.input('x', ['B', cfg.inChannels, 'H', 'W']);
    const t = g.input('timesteps', ['B']);
    const c = g.input('context', ['B', 'T', cfg.contextDim]);
    g.output(buildUNet(g, g.scope('model.diffusion_model'), cfg, { x, timesteps: t, context: c }), 'out');
    const s = await createSession(g.finish(), w);
    let worst = 0;
    for (const cs of cases) {
      const out = await s.run({
        x: (await ref.read(cs.x)).to('f32'), timesteps: (await ref.read(cs.timesteps)).to('f32'), context: (await ref.read(cs.context)).to('f32'),
      });
      const want = (await ref.read(cs.output)).toFloat32Array();
      const err = maxRelError(out.out.toFloat32Array(), want);
      worst = Math.max(worst, err);
      assert.ok(err < 1e-4, `${cs.output}: ${err}`);
    }
    console.log(`  ${name} UNet: ${cases.length} cases, worst relative error ${worst.toExponential(2)} (tolerance 1e-4)`);
    await s.release();
    await ckpt.close();
    await ref.close();
  });
}
