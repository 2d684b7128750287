// `node --import tsx bench/serve.ts`: what the server adds, on the tiny SD1 checkpoint of
// ../shared/ref (or LATENTKIT_REF_DIR). Prints
//  - `/prompt` accept latency (validation + durable SQLite commit + answer), median and p95 of 100;
//  - an unchanged re-queue answered from cache (POST → `executing null` on the websocket), median of 20;
//  - warm time per image through the server vs `engine.execute` called directly on the same graph.
import { WorkflowEngine } from '../src/workflow/engine.js';
import { postJson, WsClient } from '../test/server/helpers.js';
import { NO_REF, startRealServer, txt2img } from '../test/server/real-engine.js';

if (NO_REF) {
  console.log(`bench/serve: skipped, ${NO_REF}`);
  process.exit(0);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const p95 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.95)];

const s = await startRealServer();
const ws = await WsClient.connect(s.url, '/ws?clientId=bench');
let done = 0;
const finished = () => ws.messages.filter((m) => m.type === 'executing' && m.data.node === null).length;
async function runOne(prompt: Record<string, unknown>): Promise<number> {
  const t0 = performance.now();
  await postJson(`${s.url}/prompt`, { prompt, client_id: 'bench' });
  done++;
  await ws.until(() => finished() === done, 'prompt', 600_000);
  return performance.now() - t0;
}

// warm-up: model load, sessions
await runOne(txt2img(1, { steps: 4, size: 256 }));

const accept: number[] = [];
for (let i = 0; i < 100; i++) {
  const t0 = performance.now();
  const r = await postJson(`${s.url}/prompt`, { prompt: txt2img(100 + i, { steps: 1 }), client_id: 'bench' });
  accept.push(performance.now() - t0);
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  done++;
}
await ws.until(() => finished() === done, 'accept burst', 600_000);

const fixed = txt2img(7, { steps: 4, size: 256 });
await runOne(fixed);
const requeue: number[] = [];
for (let i = 0; i < 20; i++) requeue.push(await runOne(fixed));

// interleaved, so drift of the machine hits both sides alike
const direct = new WorkflowEngine({ host: s.host });
const sink = { send() {} };
const served: number[] = [];
const bare: number[] = [];
for (let i = 0; i < 12; i++) {
  const v = await direct.validate(txt2img(3000 + i, { steps: 4, size: 256 }));
  if (!v.ok) throw new Error(JSON.stringify(v.error));
  const t0 = performance.now();
  await direct.execute({ promptId: `b${i}`, prompt: v.prompt, outputs: v.outputs }, sink);
  const b = performance.now() - t0;
  const sv = await runOne(txt2img(2000 + i, { steps: 4, size: 256 }));
  if (i > 1) {
    bare.push(b);
    served.push(sv);
  }
}
ws.close();
await s.close();

console.log('bench/serve (tiny SD1 checkpoint)');
console.log(`  /prompt accept latency        median ${median(accept).toFixed(1)} ms, p95 ${p95(accept).toFixed(1)} ms (100 POSTs while the queue runs)`);
console.log(`  unchanged re-queue (cached)   median ${median(requeue).toFixed(1)} ms POST → executing null (20 runs)`);
console.log(`  256², 4 steps per image       server ${median(served).toFixed(0)} ms vs engine.execute ${median(bare).toFixed(0)} ms → overhead ${((median(served) / median(bare) - 1) * 100).toFixed(1)}%`);
