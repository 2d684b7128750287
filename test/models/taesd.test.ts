import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryWeights } from '../../src/graph/weights.js';
import { detectTaesd, TinyAutoencoder } from '../../src/models/taesd.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as R from '../graph/reference.js';
import { toTensors } from './esrgan-fixtures.js';

// madebyollin/taesd: Decoder = Clamp, conv(4,C), ReLU, 3×Block, Up, conv(no bias), 3×Block, Up, conv,
// 3×Block, Up, conv, Block, conv(C,3). Encoder = conv(3,C), Block, [conv stride 2 (no bias), 3×Block]×3, conv(C,4).
const C = 8;

function f32(a: R.Arr): R.Arr { return { shape: a.shape, data: Float64Array.from(Float32Array.from(a.data)) }; }

function decoderWeights(prefix: string, offset: number): { w: Record<string, R.Arr>; plan: (string | number)[] } {
  const plan: (string | number)[] = ['clamp', 'conv4', 'relu', 'block', 'block', 'block', 'up', 'convnb', 'block', 'block', 'block', 'up', 'convnb', 'block', 'block', 'block', 'up', 'convnb', 'block', 'conv3'];
  return { w: weightsFor(plan, prefix, offset, 300), plan };
}

function encoderWeights(prefix: string): { w: Record<string, R.Arr>; plan: (string | number)[] } {
  const plan: (string | number)[] = ['convin', 'block', 'down', 'block', 'block', 'block', 'down', 'block', 'block', 'block', 'down', 'block', 'block', 'block', 'convout'];
  return { w: weightsFor(plan, prefix, 0, 400), plan };
}

function weightsFor(plan: (string | number)[], prefix: string, offset: number, seed: number): Record<string, R.Arr> {
  const w: Record<string, R.Arr> = {};
  const conv = (name: string, o: number, i: number, bias: boolean, k = 3) => {
    w[`${name}.weight`] = f32(R.random([o, i, k, k], seed++, 1.2 / Math.sqrt(i * k * k)));
    if (bias) w[`${name}.bias`] = f32(R.random([o], seed++, 0.1));
  };
  plan.forEach((m, i) => {
    const name = `${prefix}${i - offset}`;
    if (m === 'conv4') conv(name, C, 4, true);
    else if (m === 'convnb' || m === 'down') conv(name, C, C, false);
    else if (m === 'conv3') conv(name, 3, C, true);
    else if (m === 'convin') conv(name, C, 3, true);
    else if (m === 'convout') conv(name, 4, C, true);
    else if (m === 'block') for (const j of [0, 2, 4]) conv(`${name}.conv.${j}`, C, C, true);
  });
  return w;
}

function runRef(plan: (string | number)[], w: Record<string, R.Arr>, prefix: string, offset: number, x: R.Arr): R.Arr {
  const relu = (a: R.Arr) => R.map(a, (v) => Math.max(v, 0));
  const conv = (a: R.Arr, name: string, stride = 1) => R.conv2d(a, w[`${name}.weight`], w[`${name}.bias`], { pads: [1, 1, 1, 1], stride: [stride, stride] });
  let h = x;
  plan.forEach((m, i) => {
    const name = `${prefix}${i - offset}`;
    if (m === 'clamp') h = R.map(h, (v) => Math.tanh(v / 3) * 3);
    else if (m === 'relu') h = relu(h);
    else if (m === 'up') h = R.upsampleNearest(h, 2);
    else if (m === 'down') h = conv(h, name, 2);
    else if (m === 'block') {
      const y = conv(relu(conv(relu(conv(h, `${name}.conv.0`)), `${name}.conv.2`)), `${name}.conv.4`);
      h = relu(R.broadcast(y, h, (a, b) => a + b));
    } else h = conv(h, name);
  });
  return h;
}

test('TAESD decoder and encoder are found in the taesd, diffusers and ComfyUI layouts and match a TypeScript reference (1e-4)', async () => {
  const z = R.random([1, 4, 5, 6], 9, 2);
  const img = R.map(R.random([1, 3, 32, 24], 10), (v) => (v + 1) / 2);
  // taesd_decoder.pth: Clamp is child 0, so the first conv is `1`; diffusers drops the Clamp child (offset 1).
  for (const [label, prefix, offset] of [['taesd_decoder.pth', '', 0], ['diffusers AutoencoderTiny', 'decoder.layers.', 1], ['ComfyUI combined', 'taesd_decoder.', 0]] as const) {
    const { w, plan } = decoderWeights(prefix, offset);
    const enc = encoderWeights(prefix === '' ? '' : prefix.replace('decoder', 'encoder'));
    const all = prefix === '' ? w : { ...w, ...enc.w };
    const mem = new MemoryWeights(toTensors(all));
    const found = detectTaesd({ keys: () => Object.keys(all), info: (k) => mem.info(k) });
    assert.equal(found.decoder?.prefix, prefix, label);
    assert.equal(found.decoder?.latentChannels, 4);
    const taesd = TinyAutoencoder.fromWeights(label, Object.keys(all), mem);
    const out = await taesd.decode(Tensor.f32(z.shape, Float32Array.from(z.data)));
    const want = runRef(plan, w, prefix, offset, z);
    assert.deepEqual([...out.shape], [1, 3, 40, 48]);
    const err = R.relError(out.toFloat32Array(), want);
    let encErr: number | undefined;
    if (prefix !== '') {
      assert.equal(found.encoder?.role, 'encoder');
      const lat = await taesd.encode(Tensor.f32(img.shape, Float32Array.from(img.data)));
      const encPrefix = prefix.replace('decoder', 'encoder');
      encErr = R.relError(lat.toFloat32Array(), runRef(enc.plan, enc.w, encPrefix, 0, img));
      assert.deepEqual([...lat.shape], [1, 4, 4, 3]);
      assert.ok(encErr <= 1e-4, `${label} encoder: ${encErr}`);
    }
    await taesd.close();
    console.log(`  ${label}: decoder worst relative error ${err.toExponential(2)}${encErr === undefined ? '' : `, encoder ${encErr.toExponential(2)}`} (tolerance 1e-4)`);
    assert.ok(err <= 1e-4, `${label}: ${err}`);
  }
  const notTaesd = new MemoryWeights({ 'conv_first.weight': Tensor.f32([8, 3, 3, 3]) });
  assert.throws(() => TinyAutoencoder.fromWeights('x.pth', ['conv_first.weight'], notTaesd), /x\.pth: not a TAESD file/);
});


