// `node --import tsx bench/a1111.ts [--requests=20] [--clients=5] [--steps=8] [--size=128]`: the A1111
// API under load, on the tiny SD1 checkpoint of ../shared/ref (or LATENTKIT_REF_DIR). Five clients send
// twenty txt2img requests at once; the bench checks they all complete, in the order the queue holds
// them, while a sixth client (its own thread) polls `/sdapi/v1/progress` (with the live preview) every 20 ms. Prints the
// total time, images per second and the progress latency (median, p99, worst).
import { getJson, postJson } from '../test/server/helpers.js';
import { startProgressPoller } from '../test/server/progress-poller.js';
import { NO_REF, startRealServer } from '../test/server/real-engine.js';

if (NO_REF) {
  console.log(`bench/a1111: skipped, ${NO_REF}`);
  process.exit(0);
}

const args = process.argv.slice(2);
const flag = (name: string, def: number) => Number(args.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? def);
const REQUESTS = flag('requests', 20);
const CLIENTS = flag('clients', 5);
const STEPS = flag('steps', 8);
const SIZE = flag('size', 128);

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))];

const s = await startRealServer();
try {
  const body = (i: number) => ({ prompt: `a lighthouse, number ${i}`, seed: 1000 + i, steps: STEPS, width: SIZE, height: SIZE, sampler_name: 'Euler a', force_task_id: `job-${i}` });
  // warm-up: model load and sessions at this size
  await postJson(`${s.url}/sdapi/v1/txt2img`, body(-1));

  const completed: string[] = [];
  // polled from another thread: a client sharing the server's event loop would wait on the sampler too
  const poller = startProgressPoller(s.url, { intervalMs: 20 });

  await poller.ready;

  const t0 = performance.now();
  // each client is its own connection pool sending its share of the requests at once
  const perClient = Math.ceil(REQUESTS / CLIENTS);
  const jobs: Promise<void>[] = [];
  for (let c = 0; c < CLIENTS; c++) {
    for (let k = 0; k < perClient && c * perClient + k < REQUESTS; k++) {
      const i = c * perClient + k;
      jobs.push(postJson(`${s.url}/sdapi/v1/txt2img`, body(i), { 'x-client': `client-${c}` }).then((r) => {
        if (r.status !== 200 || r.body.images.length !== 1) throw new Error(`job-${i}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
        completed.push(`job-${i}`);
      }));
    }
  }
  // the queue's order, read as soon as every request is in it
  let order: string[] = [];
  for (;;) {
    const q = (await getJson(`${s.url}/queue`)).body;
    const all = [...q.queue_running, ...q.queue_pending].map((t: [number, string, unknown, { task_id?: string }]) => t[3].task_id ?? '');
    const seen = new Set([...completed, ...all]);
    if (seen.size >= REQUESTS) {
      order = [...completed, ...all.filter((id: string) => !completed.includes(id))];
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(jobs);
  const seconds = (performance.now() - t0) / 1000;
  const { latencies, previews } = await poller.stop();

  const inOrder = order.length === completed.length && order.every((id, i) => id === completed[i]);
  console.log(`bench/a1111: ${REQUESTS} txt2img (${SIZE}×${SIZE}, ${STEPS} steps, Euler a) from ${CLIENTS} clients at once`);
  console.log(`  all completed: ${completed.length}/${REQUESTS} in ${seconds.toFixed(2)} s (${(REQUESTS / seconds).toFixed(2)} images/s)`);
  console.log(`  completion order = queue order: ${inOrder ? 'yes' : `NO\n    queue:     ${order.join(' ')}\n    completed: ${completed.join(' ')}`}`);
  console.log(`  /progress while busy: ${latencies.length} calls, median ${pct(latencies, 0.5).toFixed(1)} ms, p99 ${pct(latencies, 0.99).toFixed(1)} ms, worst ${Math.max(...latencies).toFixed(1)} ms, ${previews} with a preview image`);
  if (!inOrder || completed.length !== REQUESTS || Math.max(...latencies) >= 100) process.exitCode = 1;
} finally {
  await s.close();
}
