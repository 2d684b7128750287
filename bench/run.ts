// `npm run bench`: prints each benchmark with its ratio to the machine's peak and to the numbers
// recorded earlier in bench/baseline.json (`npm run bench -- --save` records the current ones).
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { cpus } from 'node:os';
import { benchFoundation } from './foundation.js';
import type { BenchResult } from './util.js';

const baselinePath = new URL('./baseline.json', import.meta.url);
const args = process.argv.slice(2);
const save = args.includes('--save');
const threadsArg = args.find((a) => a.startsWith('--threads='));
const threads = threadsArg ? Number(threadsArg.split('=')[1]) : undefined;

const baseline: Record<string, BenchResult> = existsSync(baselinePath) ? JSON.parse(readFileSync(baselinePath, 'utf8')) : {};

console.log(`latentkit bench — ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, threads ${threads ?? 'all'}`);
const results: BenchResult[] = [...await benchFoundation(threads)];

const pad = (s: string, n: number) => s.padEnd(n);
console.log(`${pad('benchmark', 42)} ${pad('time', 10)} ${pad('GFLOP/s', 9)} ${pad('vs peak', 8)} vs baseline`);
for (const r of results) {
  const prev = baseline[r.name];
  const vsBase = prev ? (prev.seconds / r.seconds).toFixed(2) + '×' : '—';
  console.log(
    `${pad(r.name, 42)} ${pad(`${(r.seconds * 1000).toFixed(1)} ms`, 10)} ${pad(r.gflops ? r.gflops.toFixed(1) : '', 9)} ${pad(r.vsPeak ? r.vsPeak.toFixed(2) : '', 8)} ${vsBase}${r.extra ? `  ${r.extra}` : ''}`,
  );
}
if (save) {
  writeFileSync(baselinePath, JSON.stringify(Object.fromEntries(results.map((r) => [r.name, r])), null, 2) + '\n');
  console.log(`saved to ${baselinePath.pathname}`);
}
