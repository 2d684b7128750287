// Shared pieces of the server tests: a server on an ephemeral loopback port over temp folders, a
// websocket client that records what it receives, and polling waits (no timing-based assertions).
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { createComfyServer, type ComfyServer, type ServerOptions } from '../../src/server/app.js';
import type { Engine } from '../../src/server/engine-api.js';
import { ServerHost } from '../../src/server/host.js';
import { FakeEngine } from './fake-engine.js';

export interface TestServer {
  url: string;
  server: ComfyServer;
  host: ServerHost;
  engine: Engine;
  dirs: { root: string; data: string; input: string; output: string; temp: string; models: string };
  close(): Promise<void>;
}

export async function tempRoot(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'lk-server-'));
}

export async function startServer(opts: Partial<Omit<ServerOptions, 'engine' | 'host'>> & { root?: string; engine?: (host: ServerHost) => Engine; maxPixels?: number } = {}): Promise<TestServer> {
  const root = opts.root ?? await tempRoot();
  const dirs = { root, data: join(root, 'data'), input: join(root, 'input'), output: join(root, 'output'), temp: join(root, 'temp'), models: join(root, 'models') };
  const host = new ServerHost({ modelRoots: [dirs.models], folders: dirs, maxPixels: opts.maxPixels });
  const engine = opts.engine ? opts.engine(host) : new FakeEngine({ host });
  const server = await createComfyServer({ ...opts, engine, host, dataDir: dirs.data });
  const url = await server.listen('127.0.0.1', 0);
  return { url, server, host, engine, dirs, close: () => server.close() };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- test answers are read field by field
export type Json = any;

export interface WsMessage { type: string; data: Record<string, unknown> }

/** A websocket client keeping every text message (and counting binary frames). */
export class WsClient {
  readonly messages: WsMessage[] = [];
  readonly binary: Buffer[] = [];
  readonly ws: WebSocket;
  private waiters: (() => void)[] = [];

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) this.binary.push(data as Buffer);
      else this.messages.push(JSON.parse(data.toString()) as WsMessage);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async connect(url: string, path = '/ws', headers?: Record<string, string>): Promise<WsClient> {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + path, { headers });
    const c = new WsClient(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
    return c;
  }

  /** Resolves once `pred` holds for the received messages (checked after each message). */
  async until(pred: (msgs: WsMessage[]) => boolean, what = 'condition', timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.messages)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.messages.map((m) => m.type))}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  close(): void {
    this.ws.close();
  }
}

/** Polls `fn` until it returns a truthy value. */
export async function waitFor<T>(fn: () => Promise<T> | T, what = 'condition', timeoutMs = 30_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) };
}

export async function getJson(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, { headers });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text) };
}

/** A two-node graph for the fake engine: an image of `value`, saved with `prefix`. */
export function saveGraph(value = 0.5, prefix = 'ComfyUI', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    '1': { class_type: 'FakeImage', inputs: { width: 8, height: 4, value } },
    '9': { class_type: 'FakeSave', inputs: { images: ['1', 0], filename_prefix: prefix } },
    ...extra,
  };
}

/** Image → FakeWait (blocks until `flag` exists, touching `started`) → save. */
export function waitGraph(flag: string, started: string, value = 0.25, prefix = 'wait'): Record<string, unknown> {
  return {
    '1': { class_type: 'FakeImage', inputs: { width: 8, height: 4, value } },
    '2': { class_type: 'FakeWait', inputs: { images: ['1', 0], flag, started, steps: 2 } },
    '9': { class_type: 'FakeSave', inputs: { images: ['2', 0], filename_prefix: prefix } },
  };
}
