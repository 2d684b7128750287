import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStateDict } from '../../src/formats/open.js';
import { GraphBuilder } from '../../src/graph/builder.js';
import { MemoryWeights, stateDictWeights } from '../../src/graph/weights.js';
import { buildFirstBlock, detectUpscaler } from '../../src/models/esrgan.js';
import { upscaleTensor, UpscalerModel } from '../../src/pipelines/upscale.js';
import { createSession } from '../../src/runtime/session.js';
import { Tensor } from '../../src/tensor/tensor.js';
import * as R from '../graph/reference.js';
import {
  rrdbReference, rrdbWeights, saveSafetensors, savePthParamsEma, srvggReference, srvggWeights, testImage, toTensors,
  type RrdbSpec, type SrvggSpec,
} from './esrgan-fixtures.js';

const TOL = 1e-4;
const t32 = (a: R.Arr) => Tensor.f32(a.shape, Float32Array.from(a.data));

type Case =
  | { name: string; kind: 'rrdb'; spec: RrdbSpec; pth?: boolean; want: Record<string, unknown> }
  | { name: string; kind: 'srvgg'; spec: SrvggSpec; want: Record<string, unknown> };

const CASES: Case[] = [
  { name: 'old-arch RRDBNet 4×', kind: 'rrdb', spec: { layout: 'esrgan-old', nf: 8, gc: 4, nb: 2, ups: 2 }, want: { layout: 'esrgan-old', scale: 4, blocks: 2, features: 8, growth: 4, unshuffle: 1 } },
  { name: 'old-arch RRDBNet 2×', kind: 'rrdb', spec: { layout: 'esrgan-old', nf: 8, gc: 4, nb: 1, ups: 1, seed: 3 }, want: { layout: 'esrgan-old', scale: 2, blocks: 1, upsamples: 1 } },
  { name: 'new-arch (xinntao ESRGAN) RRDBNet 4×', kind: 'rrdb', spec: { layout: 'esrgan-new', nf: 8, gc: 4, nb: 2, ups: 2, seed: 5 }, want: { layout: 'esrgan-new', scale: 4, blocks: 2 } },
  { name: 'BasicSR / Real-ESRGAN RRDBNet 4×', kind: 'rrdb', spec: { layout: 'basicsr', nf: 8, gc: 4, nb: 1, ups: 2, seed: 7 }, want: { layout: 'basicsr', scale: 4, unshuffle: 1 } },
  { name: 'Real-ESRGAN x2plus-style RRDBNet 2× (pixel-unshuffle, .pth with params_ema)', kind: 'rrdb', spec: { layout: 'basicsr', nf: 8, gc: 4, nb: 1, ups: 2, unshuffle: 2, seed: 9 }, pth: true, want: { layout: 'basicsr', scale: 2, unshuffle: 2, inChannels: 3 } },
  { name: 'SRVGGNetCompact 4× (PReLU)', kind: 'srvgg', spec: { nf: 8, convs: 3, scale: 4 }, want: { layout: 'srvgg', scale: 4, convs: 3, features: 8, activation: 'prelu' } },
  { name: 'SRVGGNetCompact 2× (PReLU)', kind: 'srvgg', spec: { nf: 6, convs: 2, scale: 2, seed: 200 }, want: { layout: 'srvgg', scale: 2, convs: 2 } },
];

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'lk-esrgan-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('every layout is detected from its keys and matches a TypeScript reference of the original: first block and whole network (1e-4 relative)', async () => {
  await withDir(async (dir) => {
    for (const c of CASES) {
      const weights = c.kind === 'rrdb' ? rrdbWeights(c.spec) : srvggWeights(c.spec);
      const path = join(dir, `${c.name.replace(/\W+/g, '_')}.${c.kind === 'rrdb' && c.pth ? 'pth' : 'safetensors'}`);
      if (c.kind === 'rrdb' && c.pth) await savePthParamsEma(path, weights);
      else await saveSafetensors(path, weights);

      const sd = await openStateDict(path);
      const cfg = detectUpscaler(sd, path);
      for (const [k, v] of Object.entries(c.want)) assert.equal((cfg as unknown as Record<string, unknown>)[k], v, `${c.name}: ${k}`);

      const x = testImage(10, 14, 11);
      // First block on its own graph.
      const w = stateDictWeights(sd);
      const g = new GraphBuilder({ weights: w });
      g.output(buildFirstBlock(g, g.scope(), cfg, g.input('x', ['B', 3, 'H', 'W'])), 'y');
      const s = await createSession(g.finish(), w);
      const first = (await s.run({ x: t32(x) })).y;
      await s.release();
      const firstWant = c.kind === 'rrdb' ? rrdbReference(c.spec, weights, x, true) : srvggReference(c.spec, weights, x, true);
      const firstErr = R.relError(first.toFloat32Array(), firstWant);

      const model = await UpscalerModel.load(path);
      const out = await model.run(t32(x));
      await model.close();
      await sd.close();
      const want = c.kind === 'rrdb' ? rrdbReference(c.spec, weights, x) : srvggReference(c.spec, weights, x);
      assert.deepEqual([...out.shape], want.shape, `${c.name}: output shape`);
      const err = R.relError(out.toFloat32Array(), want);
      console.log(`  ${c.name}: first block worst relative error ${firstErr.toExponential(2)}, whole network ${err.toExponential(2)} (tolerance ${TOL})`);
      assert.ok(firstErr <= TOL, `${c.name}: first block error ${firstErr}`);
      assert.ok(err <= TOL, `${c.name}: network error ${err}`);
    }
  });
});

test('tiled output equals untiled output (1e-3) when the overlap covers the receptive field: RRDBNet 4×, unshuffled 2×, SRVGG', async () => {
  // Overlap/4 (the band each tile edge discards) must exceed the receptive-field radius in input
  // pixels: 17 LR convs + the HR convs for one RRDB block; 4 convs for the SRVGG below.
  const cases: { name: string; weights: Record<string, R.Arr>; tile: number; overlap: number; size: [number, number] }[] = [
    { name: 'RRDBNet 4× (1 block)', weights: rrdbWeights({ layout: 'basicsr', nf: 8, gc: 4, nb: 1, ups: 2, seed: 21 }), tile: 104, overlap: 80, size: [136, 190] },
    { name: 'RRDBNet 2× pixel-unshuffle', weights: rrdbWeights({ layout: 'basicsr', nf: 8, gc: 4, nb: 1, ups: 2, unshuffle: 2, seed: 22 }), tile: 120, overlap: 96, size: [150, 205] },
    { name: 'SRVGG 4×', weights: srvggWeights({ nf: 8, convs: 3, scale: 4, seed: 23 }), tile: 40, overlap: 24, size: [70, 93] },
  ];
  for (const c of cases) {
    const mem = new MemoryWeights(toTensors(c.weights));
    const model = await UpscalerModel.fromWeights(c.name, Object.keys(c.weights), mem);
    const x = t32(testImage(c.size[0], c.size[1], 31));
    const whole = await upscaleTensor(model, x, { tile: 0 });
    let tiles = 0;
    const tiled = await upscaleTensor(model, x, { tile: c.tile, overlap: c.overlap, onTile: (_, total) => { tiles = total; } });
    await model.close();
    assert.deepEqual([...tiled.shape], [...whole.shape]);
    const a = tiled.toFloat32Array();
    const b = whole.toFloat32Array();
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    console.log(`  ${c.name}: ${tiles} tiles of ${c.tile}px, overlap ${c.overlap}: worst |tiled − untiled| ${worst.toExponential(2)} (tolerance 1e-3)`);
    assert.ok(tiles >= 4, `${c.name}: expected several tiles, got ${tiles}`);
    assert.ok(worst <= 1e-3, `${c.name}: ${worst}`);
  }
});

test('files that are not ESRGAN-family upscalers fail with a clear line naming the file', async () => {
  const sd = new MemoryWeights({ 'first_stage_model.decoder.conv_in.weight': Tensor.f32([4, 4, 3, 3]) });
  const keys = { keys: () => ['first_stage_model.decoder.conv_in.weight'], info: (k: string) => sd.info(k) };
  assert.throws(() => detectUpscaler(keys, 'vae.pt'), /^Error: vae\.pt: not an ESRGAN \/ Real-ESRGAN upscaler \(keys start first_stage_model\.decoder\.conv_in\.weight\)/);
  // A truncated RRDBNet names the missing key.
  const w = rrdbWeights({ layout: 'basicsr', nf: 8, gc: 4, nb: 1, ups: 2 });
  delete w['conv_hr.weight'];
  const mem = new MemoryWeights(toTensors(w));
  await assert.rejects(UpscalerModel.fromWeights('broken.pth', Object.keys(w), mem), /broken\.pth: missing weight 'conv_hr\.weight'/);
});
