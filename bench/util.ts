export interface BenchResult {
  readonly name: string;
  /** Median seconds per run. */
  readonly seconds: number;
  readonly gflops?: number;
  /** Ratio to the machine's own peak for the same work (1 = no loss). */
  readonly vsPeak?: number;
  readonly extra?: string;
}

/** Median wall time of `reps` runs after one warm-up run. */
export async function timeIt(reps: number, fn: () => Promise<unknown>): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}
