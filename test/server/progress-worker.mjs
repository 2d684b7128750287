// Polls `/sdapi/v1/progress` from its own thread, so the latencies it reports are the server's and not
// those of a client sharing the server's event loop (tests and benchmarks run both in one process).
// workerData: { url, intervalMs, count }. Posts 'ready' after a first (connection-opening) call, then
// { latencies, previews, busy } once `count` calls made while a job ran are in, or when told to stop.
/* global fetch */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parentPort, workerData } from 'node:worker_threads';

const { url, intervalMs = 20, count = Infinity } = workerData;
let running = true;
parentPort.on('message', () => { running = false; });
const latencies = [];
let previews = 0;
await (await fetch(`${url}/sdapi/v1/progress`)).json();
parentPort.postMessage('ready');
while (running && latencies.length < count) {
  const t0 = performance.now();
  const p = await (await fetch(`${url}/sdapi/v1/progress`)).json();
  const ms = performance.now() - t0;
  // only calls answered while a job runs count
  if (p.state.job_count > 0) {
    latencies.push(ms);
    if (p.current_image) previews++;
  }
  await sleep(intervalMs);
}
parentPort.postMessage({ latencies, previews, busy: latencies.length });
