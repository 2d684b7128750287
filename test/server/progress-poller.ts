// Runs progress-worker.mjs: `/sdapi/v1/progress` latencies seen from another thread.
import { Worker } from 'node:worker_threads';

export interface PollResult { latencies: number[]; previews: number; busy: number }

export interface ProgressPoller {
  /** Resolves once the worker's connection is open (its first call is not counted). */
  readonly ready: Promise<void>;
  /** Resolves when `count` busy calls are in (or at once on stop). */
  readonly done: Promise<PollResult>;
  stop(): Promise<PollResult>;
}

export function startProgressPoller(url: string, opts: { intervalMs?: number; count?: number } = {}): ProgressPoller {
  const worker = new Worker(new URL('./progress-worker.mjs', import.meta.url), { workerData: { url, ...opts } });
  let onReady: () => void;
  const ready = new Promise<void>((resolve) => { onReady = resolve; });
  const done = new Promise<PollResult>((resolve, reject) => {
    worker.on('message', (m: PollResult | 'ready') => (m === 'ready' ? onReady() : resolve(m)));
    worker.once('error', reject);
  });
  void done.then(() => worker.terminate(), () => undefined);
  return {
    ready, done,
    async stop() {
      worker.postMessage('stop');
      return done;
    },
  };
}
