// Load: 10 websocket clients each queue 20 prompts at once on the tiny checkpoint. All 200 finish,
// every client sees only its own prompts' messages, and the process RSS after the run (after a GC) is
// within 10% of the RSS after a warm-up run.
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { getJson, postJson, WsClient } from './helpers.js';
import { refTest, startRealServer, txt2img } from './real-engine.js';

const test = refTest('server load test');

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function settledRss(): number {
  for (let i = 0; i < 3; i++) gc();
  return process.memoryUsage().rss;
}

const CLIENTS = 10;
const PER_CLIENT = 20;

async function burst(url: string, round: string, clients: number, perClient: number): Promise<{ ws: WsClient[]; ids: string[][] }> {
  const ws = await Promise.all(Array.from({ length: clients }, (_, c) => WsClient.connect(url, `/ws?clientId=${round}-${c}`)));
  const ids = await Promise.all(ws.map(async (_, c) => Promise.all(Array.from({ length: perClient }, async (_, k) => {
    const seed = 1000 * c + k + (round === 'warm' ? 500_000 : 0);
    const r = await postJson(`${url}/prompt`, { prompt: txt2img(seed, { steps: 1, prefix: `${round}/c${c}` }), client_id: `${round}-${c}` });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.prompt_id as string;
  }))));
  await Promise.all(ws.map((w, c) => w.until((m) => m.filter((x) => x.type === 'executing' && x.data.node === null).length === ids[c].length, `client ${c} done`, 600_000)));
  return { ws, ids };
}

test('10 ws clients × 20 prompts at once: all finish, private routing holds, RSS steady', async () => {
  const s = await startRealServer();
  try {
    const warm = await burst(s.url, 'warm', 2, 5);
    for (const w of warm.ws) w.close();
    const before = settledRss();
    const t0 = performance.now();
    const { ws, ids } = await burst(s.url, 'load', CLIENTS, PER_CLIENT);
    const seconds = (performance.now() - t0) / 1000;
    for (let c = 0; c < CLIENTS; c++) {
      const mine = new Set(ids[c]);
      const seen = ws[c].messages.filter((m) => m.type !== 'status').map((m) => String(m.data.prompt_id));
      assert.ok(seen.every((id) => mine.has(id)), `client ${c} got another client's message`);
      assert.deepEqual(new Set(seen), mine, `client ${c} got messages for each of its prompts`);
      ws[c].close();
    }
    const history = (await getJson(`${s.url}/history`)).body;
    const all = ids.flat();
    assert.equal(new Set(all).size, CLIENTS * PER_CLIENT);
    for (const id of all) assert.equal(history[id]?.status.status_str, 'success', id);
    assert.equal((await getJson(`${s.url}/prompt`)).body.exec_info.queue_remaining, 0);
    const after = settledRss();
    console.log(`# load: ${all.length} prompts in ${seconds.toFixed(1)} s (${(seconds * 1000 / all.length).toFixed(0)} ms each); RSS ${(before / 2 ** 20).toFixed(0)} → ${(after / 2 ** 20).toFixed(0)} MiB`);
    assert.ok(after <= before * 1.1, `RSS grew from ${before} to ${after}`);
  } finally {
    await s.close();
  }
});
