// Peak memory of a VAE decode with the full-size SD1.5 VAE, tiled and whole, each in a fresh process
// (maxRSS is then that decode's alone, on top of the loaded VAE weights).
//   as a module:  benchVaeTilingMemory(root, ckpt, [{ size: 1024, tiled: true }, …])
//   as a child:   node --import tsx bench/vae-tiling.ts CKPT SIZE tiled|whole [THREADS]   → one JSON line
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { loadCheckpoint } from '../src/models/checkpoint.js';
import { decodeTiled } from '../src/pipelines/vae-tiling.js';
import { Tensor } from '../src/tensor/tensor.js';

export interface VaeMemoryRow {
  readonly label: string;
  readonly size: number;
  readonly tiled: boolean;
  readonly seconds: number;
  readonly tiles: number;
  readonly peakRssGiB: number;
}

export async function benchVaeTilingMemory(root: string, ckpt: string, runs: readonly { size: number; tiled: boolean }[], threads?: number): Promise<(VaeMemoryRow | { label: string; error: string })[]> {
  const rows: (VaeMemoryRow | { label: string; error: string })[] = [];
  for (const { size, tiled } of runs) {
    const label = `SD1.5 VAE decode ${size}² ${tiled ? 'tiled 64/16' : 'whole'}`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', `${root}bench/vae-tiling.ts`, ckpt, String(size), tiled ? 'tiled' : 'whole', String(threads ?? 0)], { encoding: 'utf8', cwd: root });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) rows.push({ label, error: `exit ${r.status ?? r.signal}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` });
    else rows.push({ label, ...(JSON.parse(line) as Omit<VaeMemoryRow, 'label'>) });
  }
  return rows;
}

async function child(ckpt: string, size: number, tiled: boolean, threads: number): Promise<void> {
  const model = await loadCheckpoint(ckpt, threads ? { threads } : {});
  const h = size / 8;
  const z = Tensor.f32([1, 4, h, h], Float32Array.from({ length: 4 * h * h }, (_, i) => Math.cos(i * 0.01) * 0.8));
  let tiles = 1;
  const t0 = performance.now();
  const out = tiled ? await decodeTiled(model, z, { tile: 64, overlap: 16, onTile: (_, n) => { tiles = n; } }) : await model.decode(z);
  const seconds = (performance.now() - t0) / 1000;
  if (out.shape[2] !== size) throw new Error(`unexpected output ${out.shape}`);
  await model.close();
  console.log(JSON.stringify({ size, tiled, seconds, tiles, peakRssGiB: process.resourceUsage().maxRSS / 1024 / 1024 }));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [ckpt, size, mode, threads] = process.argv.slice(2);
  await child(ckpt, Number(size), mode === 'tiled', Number(threads ?? 0));
}
