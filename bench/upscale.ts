// Peak memory (and time) of a 4× model upscale at full ESRGAN size — RRDBNet, 23 blocks, 64 features,
// growth 32, random weights made here — tiled and whole, each in a fresh process so maxRSS is that
// run's alone.
//   as a module:  benchUpscaleMemory(root, { input: 512, tile: 128 })
//   as a child:   node --import tsx bench/upscale.ts MODEL INPUT_SIZE TILE [THREADS]   → one JSON line
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { writeSafetensors } from '../src/formats/safetensors.js';
import { upscaleTensor, UpscalerModel } from '../src/pipelines/upscale.js';
import { Tensor } from '../src/tensor/tensor.js';

function random(n: number, seed: number, scale: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

/** RealESRGAN_x4plus's architecture under BasicSR keys, random weights (16.7 M parameters). */
export async function makeFullRrdb(path: string): Promise<void> {
  const nf = 64;
  const gc = 32;
  const tensors: Record<string, Tensor> = {};
  let seed = 1;
  const conv = (name: string, o: number, i: number) => {
    tensors[`${name}.weight`] = Tensor.f32([o, i, 3, 3], random(o * i * 9, seed++, 1 / Math.sqrt(i * 9)));
    tensors[`${name}.bias`] = Tensor.f32([o], random(o, seed++, 0.01));
  };
  conv('conv_first', nf, 3);
  for (let b = 0; b < 23; b++) for (let r = 1; r <= 3; r++) for (let c = 1; c <= 5; c++) conv(`body.${b}.rdb${r}.conv${c}`, c === 5 ? nf : gc, nf + (c - 1) * gc);
  for (const n of ['conv_body', 'conv_up1', 'conv_up2', 'conv_hr']) conv(n, nf, nf);
  conv('conv_last', 3, nf);
  await writeSafetensors(path, tensors);
}

export interface UpscaleMemoryRow {
  readonly label: string;
  readonly input: number;
  readonly tile: number;
  readonly seconds: number;
  readonly peakRssGiB: number;
  readonly tiles: number;
}

/** Runs one child per configuration; a failed child (out of memory, say) is reported, not thrown. */
export async function benchUpscaleMemory(root: string, runs: readonly { input: number; tile: number }[], threads?: number): Promise<(UpscaleMemoryRow | { label: string; error: string })[]> {
  const model = `${root}.bench/rrdb-x4-full.safetensors`;
  if (!existsSync(model)) {
    mkdirSync(`${root}.bench`, { recursive: true });
    await makeFullRrdb(model);
  }
  const rows: (UpscaleMemoryRow | { label: string; error: string })[] = [];
  for (const { input, tile } of runs) {
    const label = `RRDBNet 4× ${input}²→${input * 4}² ${tile > 0 && tile < input ? `tiled ${tile}` : 'whole'}`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', `${root}bench/upscale.ts`, model, String(input), String(tile), String(threads ?? 0)], { encoding: 'utf8', cwd: root });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) rows.push({ label, error: `exit ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` });
    else rows.push({ label, ...(JSON.parse(line) as Omit<UpscaleMemoryRow, 'label'>) });
  }
  return rows;
}

async function child(model: string, input: number, tile: number, threads: number): Promise<void> {
  const m = await UpscalerModel.load(model, threads ? { threads } : {});
  const x = Tensor.f32([1, 3, input, input], random(3 * input * input, 7, 0.5).map((v) => v + 0.5));
  let tiles = 1;
  const t0 = performance.now();
  const out = await upscaleTensor(m, x, { tile, overlap: 16, onTile: (_, n) => { tiles = n; } });
  const seconds = (performance.now() - t0) / 1000;
  if (out.shape[2] !== input * 4) throw new Error(`unexpected output ${out.shape}`);
  await m.close();
  console.log(JSON.stringify({ input, tile, seconds, tiles, peakRssGiB: process.resourceUsage().maxRSS / 1024 / 1024 }));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [model, input, tile, threads] = process.argv.slice(2);
  await child(model, Number(input), Number(tile), Number(threads ?? 0));
}
