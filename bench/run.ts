// `npm run bench`: prints each benchmark with its ratio to the machine's peak and to the numbers
// recorded earlier in bench/baseline.json (`npm run bench -- --save` records the current ones).
//   --threads=N        limit ONNX Runtime's threads
//   --quick            only the compiler micro-benchmarks (seconds, not minutes)
//   --sd15=PATH        full-size SD1.5 checkpoint to measure (default .bench/sd15-full.safetensors,
//                      made from ../shared/ref/make_checkpoint.py with random weights when missing)
//   --sizes=512,768    image sizes for the SD1.5 runs; --steps=N UNet steps timed per size (default 2)
//   --upscale-input=N  input size of the 4× RRDBNet peak-memory runs (default 512 → 2048² out)
//   --vae-size=N       image size of the tiled / whole SD1.5 VAE decode peak-memory runs (default 1024)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { benchFoundation } from './foundation.js';
import { benchSamplers } from './samplers.js';
import { benchUpscaleMemory } from './upscale.js';
import { benchVaeTilingMemory } from './vae-tiling.js';
import type { BenchResult } from './util.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const baselinePath = new URL('./baseline.json', import.meta.url);
const args = process.argv.slice(2);
const flag = (name: string) => args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1];
const save = args.includes('--save');
const quick = args.includes('--quick');
const threads = flag('threads') ? Number(flag('threads')) : undefined;

const baseline: Record<string, BenchResult> = existsSync(baselinePath) ? JSON.parse(readFileSync(baselinePath, 'utf8')) : {};

console.log(`latentkit bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, threads ${threads ?? 'all'}`);
const results: BenchResult[] = [...await benchFoundation(threads)];
const peak = results.find((r) => r.name.includes('machine peak'))?.gflops ?? NaN;

function print(list: readonly BenchResult[]): void {
  const pad = (s: string, n: number) => s.padEnd(n);
  console.log(`${pad('benchmark', 44)} ${pad('time', 11)} ${pad('GFLOP/s', 9)} ${pad('vs peak', 8)} vs baseline`);
  for (const r of list) {
    const prev = baseline[r.name];
    const vsBase = prev ? `${(prev.seconds / r.seconds).toFixed(2)}×` : '—';
    const time = r.seconds >= 1 ? `${r.seconds.toFixed(2)} s` : `${(r.seconds * 1000).toFixed(1)} ms`;
    console.log(`${pad(r.name, 44)} ${pad(time, 11)} ${pad(r.gflops ? r.gflops.toFixed(1) : '', 9)} ${pad(r.vsPeak ? r.vsPeak.toFixed(2) : '', 8)} ${vsBase}${r.extra ? `  ${r.extra}` : ''}`);
  }
}

print(results);
console.log('\nsamplers (analytic denoiser; model evaluations per step):');
const samplerRows = await benchSamplers();
for (const s of samplerRows) console.log(`  ${s.name.padEnd(28)} ${s.evalsPerStep.toFixed(2)} evals/step`);

if (!quick) {
  let ckpt = flag('sd15') ?? `${root}.bench/sd15-full.safetensors`;
  if (!existsSync(ckpt)) {
    const maker = `${root}../shared/ref/make_checkpoint.py`;
    if (existsSync(maker)) {
      mkdirSync(`${root}.bench`, { recursive: true });
      console.log(`\nmaking a random-weight SD1.5 checkpoint at ${ckpt} (python3 + numpy, about a minute)…`);
      const r = spawnSync('python3', [maker, 'sd15-full', '--out', ckpt], { stdio: 'inherit' });
      if (r.status !== 0) ckpt = '';
    } else ckpt = '';
  }
  if (!ckpt) {
    console.log('\nSD1.5 benchmark skipped: no checkpoint (pass --sd15=PATH)');
  } else {
    const parity = spawnSync(process.execPath, ['--import', 'tsx', `${root}bench/sd15-child.ts`, ckpt, 'parity'], { encoding: 'utf8', cwd: root });
    const pline = parity.stdout.trim().split('\n').pop() ?? '';
    if (parity.status === 0 && pline.startsWith('{')) {
      console.log('\nSD1.5 full-size parity with ../shared/ref/out/sd15-full (fp16-stored references):');
      for (const [k, v] of Object.entries(JSON.parse(pline) as Record<string, number>)) console.log(`  ${k.padEnd(36)} worst relative error ${v.toExponential(2)}`);
    } else console.log(`\nSD1.5 parity check failed:\n${parity.stderr.slice(-2000)}`);
    const sizes = (flag('sizes') ?? '512,768').split(',').map(Number);
    const steps = Number(flag('steps') ?? 2);
    console.log(`\nSD1.5 (full size, random weights), CFG batch 2, ${steps} timed UNet steps, each size in a fresh process:`);
    for (const size of sizes) {
      const r = spawnSync(process.execPath, ['--import', 'tsx', `${root}bench/sd15-child.ts`, ckpt, String(size), String(steps)], { encoding: 'utf8', cwd: root });
      const line = r.stdout.trim().split('\n').pop() ?? '';
      if (r.status !== 0 || !line.startsWith('{')) {
        console.log(`  ${size}×${size}: failed\n${r.stderr.slice(-2000)}`);
        continue;
      }
      const m = JSON.parse(line);
      const rows: BenchResult[] = [
        { name: `sd15 ${size}² text encode (cond+uncond)`, seconds: m.textS, extra: `first call incl. session build ${m.textColdS.toFixed(2)} s` },
        { name: `sd15 ${size}² UNet step (CFG)`, seconds: m.stepS, gflops: m.unetGflops, vsPeak: m.unetGflops / peak, extra: `${m.unetTflopPerStep.toFixed(2)} TFLOP/step; first call incl. build ${m.unetFirstS.toFixed(1)} s` },
        { name: `sd15 ${size}² VAE decode`, seconds: m.vaeS, extra: `first call incl. build ${m.vaeColdS.toFixed(1)} s` },
        { name: `sd15 ${size}² txt2img ${steps} steps (warm)`, seconds: m.runWarmS, extra: `whole process ${m.totalS.toFixed(1)} s, peak RSS ${m.peakRssGiB.toFixed(2)} GiB` },
      ];
      print(rows);
      results.push(...rows);
    }
  }
}

if (!quick) {
  // Tiling bounds memory: peak RSS of each run in a fresh process (--upscale-input=512 → 2048² output).
  const input = Number(flag('upscale-input') ?? 512);
  console.log(`\npeak memory, each run in a fresh process (process.resourceUsage().maxRSS):`);
  for (const r of await benchUpscaleMemory(root, [{ input, tile: 128 }, { input, tile: 0 }], threads)) {
    console.log('error' in r ? `  ${r.label}: failed (${r.error})` : `  ${r.label.padEnd(40)} peak RSS ${r.peakRssGiB.toFixed(2)} GiB  ${r.seconds.toFixed(1)} s  ${r.tiles} tile(s)`);
  }
  const vaeCkpt = flag('sd15') ?? `${root}.bench/sd15-full.safetensors`;
  if (existsSync(vaeCkpt)) {
    const size = Number(flag('vae-size') ?? 1024);
    for (const r of await benchVaeTilingMemory(root, vaeCkpt, [{ size, tiled: true }, { size, tiled: false }, { size: 512, tiled: false }], threads)) {
      console.log('error' in r ? `  ${r.label}: failed (${r.error})` : `  ${r.label.padEnd(40)} peak RSS ${r.peakRssGiB.toFixed(2)} GiB  ${r.seconds.toFixed(1)} s  ${r.tiles} tile(s)`);
    }
  } else console.log('  SD1.5 VAE tiling: skipped (no checkpoint; pass --sd15=PATH)');
}

if (save) {
  writeFileSync(baselinePath, JSON.stringify(Object.fromEntries(results.map((r) => [r.name, r])), null, 2) + '\n');
  console.log(`saved to ${baselinePath.pathname}`);
}
