import assert from 'node:assert/strict';
import { GraphBuilder } from '../../src/graph/builder.js';
import { stateDictWeights } from '../../src/graph/weights.js';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { buildVaeDecoder, buildVaeEncoder } from '../../src/models/vae.js';
import { createSession } from '../../src/runtime/session.js';
import { maxRelError, REF, refTests } from '../ref.js';

const test = refTests('VAE parity on the tiny checkpoints');

for (const name of ['tiny-sd1', 'tiny-sd2']) {
  test(`${name} VAE decode and encode match the LDM reference (1e-4 relative)`, async () => {
    const ckpt = await openSafetensors(`${REF}/ckpt/${name}.safetensors`);
    const ref = await openSafetensors(`${REF}/out/${name}/vae.safetensors`);
    const w = stateDictWeights(ckpt);
    const g = new GraphBuilder({ weights: w });
    const vae = g.scope('first_stage_model');
    g.output(buildVaeDecoder(g, vae, g.input('z', ['B', 4, 'H', 'W'])), 'decoded');
    const post = buildVaeEncoder(g, vae, g.input('image', ['B', 3, 'H8', 'W8']));
    g.output(post.mean, 'mean');
    g.output(post.logvar, 'logvar');
    const s = await createSession(g.finish(), w);
    const out = await s.run({ z: await ref.read('z'), image: await ref.read('image') });
    const errs = {
      decoded: maxRelError(out.decoded.toFloat32Array(), (await ref.read('decoded')).toFloat32Array()),
      posterior_mean: maxRelError(out.mean.toFloat32Array(), (await ref.read('posterior_mean')).toFloat32Array()),
      posterior_logvar: maxRelError(out.logvar.toFloat32Array(), (await ref.read('posterior_logvar')).toFloat32Array()),
    };
    console.log(`  ${name} VAE worst relative errors: ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')} (tolerance 1e-4)`);
    for (const [k, v] of Object.entries(errs)) assert.ok(v < 1e-4, `${k}: ${v}`);
    await s.release();
    await ckpt.close();
    await ref.close();
  });
}
