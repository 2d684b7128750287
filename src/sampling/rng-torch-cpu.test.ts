import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TorchCpuGenerator, comfyPrepareNoise, torchRandn, type TorchCpuKernel } from './rng-torch-cpu.js';
import { join } from 'node:path';
import { REF, refTests } from '../../test/ref.js';

// The reference files are plain JSON of several shapes; tests index into them by key.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type RefJson = Record<string, any>;

interface Summary { shape: number[]; numel: number; values?: number[]; first64?: number[]; last64?: number[]; every997th?: number[]; sum_f64: number }

const refTest = refTests('torch CPU generator against the reference draws');

function load(kernel: TorchCpuKernel): RefJson {
  return JSON.parse(readFileSync(join(REF, 'samplers', `rng_torch_cpu_${kernel}.json`), 'utf8'));
}

/** (got, want) pairs for the values a summary records. */
function pairs(got: ArrayLike<number>, w: Summary, isF32: boolean): Array<[number, number]> {
  const r = isF32 ? Math.fround : (x: number) => x;
  if (w.values) return w.values.map((v, i) => [got[i], r(v)]);
  return [
    ...w.first64!.map((v, i): [number, number] => [got[i], r(v)]),
    ...w.last64!.map((v, i): [number, number] => [got[got.length - 64 + i], r(v)]),
    ...w.every997th!.map((v, i): [number, number] => [got[i * 997], r(v)]),
  ];
}

const f32bits = new Int32Array(new Float32Array(2).buffer);
function ulps32(a: number, b: number): number {
  const f = new Float32Array(f32bits.buffer);
  f[0] = a;
  f[1] = b;
  return Math.abs(f32bits[0] - f32bits[1]);
}

interface Tally { values: number; exact: number; shortMiss: number; maxUlp: number }

function tally(t: Tally, got: ArrayLike<number>, w: Summary): void {
  assert.equal(got.length, w.numel);
  for (const [g, v] of pairs(got, w, true)) {
    t.values++;
    if (g === v) t.exact++;
    else if (w.numel < 16) t.shortMiss++;
    t.maxUlp = Math.max(t.maxUlp, ulps32(g, v));
  }
  let sum = 0;
  for (let i = 0; i < got.length; i++) sum += got[i];
  // The sum covers every value, not only the sampled ones.
  assert.ok(Math.abs(sum - w.sum_f64) <= 1e-6 * Math.max(1, Math.abs(w.sum_f64)) + got.length * 1e-9, `sum ${sum} vs ${w.sum_f64}`);
}

const parseShape = (s: string): number[] => s.split('x').map(Number);

for (const kernel of ['avx2', 'default'] as const) {
  refTest(`torch.randn, ${kernel} kernel: global seeds and successive calls`, () => {
    const ref = load(kernel).torch;
    const t: Tally = { values: 0, exact: 0, shortMiss: 0, maxUlp: 0 };
    for (const [key, w] of Object.entries(ref.global_manual_seed) as [string, Summary][]) {
      const [seed, shape] = key.split('|');
      tally(t, new TorchCpuGenerator(BigInt(seed), kernel).randn(parseShape(shape)), w);
    }
    for (const [key, ws] of Object.entries(ref.sequences) as [string, Summary[]][]) {
      const [seed, shapes] = key.split('|');
      const g = new TorchCpuGenerator(BigInt(seed), kernel);
      shapes.split(',').forEach((s, i) => tally(t, g.randn(parseShape(s)), ws[i]));
    }
    console.log(`torch cpu ${kernel}: ${t.exact}/${t.values} bit-exact, worst ${t.maxUlp} ulp (float32), short-path misses ${t.shortMiss}`);
    assert.equal(t.shortMiss, 0);
    assert.ok(t.maxUlp <= 4);
    if (kernel === 'avx2') assert.equal(t.exact, t.values);
  });

  refTest(`torch.randn float64, ${kernel} file`, () => {
    const ref = load(kernel).torch.float64 as Record<string, Summary>;
    let worst = 0;
    let exact = 0;
    let total = 0;
    for (const [key, w] of Object.entries(ref)) {
      const [seed, shape] = key.split('|');
      const got = new TorchCpuGenerator(BigInt(seed), kernel).randn(parseShape(shape), { dtype: 'f64' });
      for (const [g, v] of pairs(got, w, false)) {
        total++;
        if (g === v) exact++;
        worst = Math.max(worst, Math.abs(g - v) / Math.max(Math.abs(v), 1e-300));
      }
    }
    console.log(`torch cpu float64 (${kernel} file): ${exact}/${total} bit-exact, worst rel ${worst}`);
    assert.ok(worst < 1e-15);
  });
}

test('seeds use their low 32 bits; out-of-range seeds are rejected', () => {
  const a = torchRandn(2n ** 32n + 5n, 20);
  assert.deepEqual(a, torchRandn(5, 20));
  assert.deepEqual(torchRandn(-1, 7), torchRandn(2n ** 32n - 1n, 7));
  assert.throws(() => torchRandn(2n ** 64n, 1), /Overflow when unpacking long/);
  assert.throws(() => torchRandn(1.5, 1), /not an integer/);
});

test('the cached Box–Muller value survives vector-path calls and is cleared by manualSeed', () => {
  const g = new TorchCpuGenerator(0);
  const [first] = g.randn(1);
  const cached = new TorchCpuGenerator(0).randn(2)[1];
  g.randn(16);
  assert.equal(g.randn(1)[0], cached);
  g.manualSeed(0);
  assert.equal(g.randn(1)[0], first);
});

refTest('ComfyUI prepare_noise: one batch draw, and noise_inds', () => {
  const ref = load('avx2').comfy_prepare_noise.cases as Record<string, Summary>;
  let n = 0;
  for (const [key, w] of Object.entries(ref)) {
    const [seed, , inds] = key.split('|');
    const noiseInds = inds ? (JSON.parse(inds.split('=')[1]) as number[]) : undefined;
    const got = comfyPrepareNoise(w.shape, BigInt(seed), noiseInds);
    for (const [g, v] of pairs(got, w, true)) {
      assert.equal(g, v, key);
      n++;
    }
  }
  console.log(`comfy prepare_noise: ${n}/${n} bit-exact`);
});
