// The ComfyUI-compatible server: Fastify for HTTP, `ws` for the websocket, SQLite for the queue.
// This module wires them together and owns the request-wide rules (auth, Origin, size limits, JSON
// bodies whatever the Content-Type, JSON errors); the routes live in their own modules.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { removeStaleTempFiles } from '../workflow/files.js';
import { comfyFiles } from './comfy-files.js';
import { comfyRoutes } from './comfy-routes.js';
import { WsHub } from './comfy-ws.js';
import type { Engine } from './engine-api.js';
import type { ServerHost } from './host.js';
import type { ServerContext } from './http.js';
import { galleryRoutes } from './gallery-routes.js';
import { promptRoutes } from './prompt-routes.js';
import { PromptStore } from './prompt-store.js';
import { QueueStore } from './queue-store.js';
import { QueueRunner } from './runner.js';
import { originRefused, tokenAccepted } from './security.js';
import { webUi } from './web-ui.js';

export const DEFAULT_MAX_UPLOAD_BYTES = 100 * 1024 * 1024;

export interface ServerOptions {
  readonly engine: Engine;
  readonly host: ServerHost;
  /** Holds `queue.sqlite` and the upload staging folder. */
  readonly dataDir: string;
  readonly authToken?: string;
  readonly maxUploadBytes?: number;
  readonly version?: string;
}

export interface ComfyServer {
  readonly app: FastifyInstance;
  readonly store: QueueStore;
  readonly runner: QueueRunner;
  readonly hub: WsHub;
  /** Starts listening (and the queue worker); resolves to the bound URL. */
  listen(host: string, port: number): Promise<string>;
  /** Stops taking work (the running prompt is left to run again at the next start) and closes everything. */
  close(): Promise<void>;
}

/** Headroom above the file size for the multipart framing and the small fields. */
const MULTIPART_SLACK = 1 << 20;

export async function createComfyServer(opts: ServerOptions): Promise<ComfyServer> {
  const maxUploadBytes = opts.maxUploadBytes ?? DEFAULT_MAX_UPLOAD_BYTES;
  await mkdir(opts.dataDir, { recursive: true });
  for (const dir of Object.values(opts.host.folders)) await mkdir(dir, { recursive: true });
  // ComfyUI empties its temp folder at start-up; crash leftovers of atomic writes go too
  await rm(opts.host.folders.temp, { recursive: true, force: true });
  await mkdir(opts.host.folders.temp, { recursive: true });
  const stagingDir = join(opts.dataDir, 'staging');
  await rm(stagingDir, { recursive: true, force: true });
  await removeStaleTempFiles(opts.host.folders.output);
  await removeStaleTempFiles(opts.host.folders.input);

  const store = new QueueStore(join(opts.dataDir, 'queue.sqlite'));
  const hub: WsHub = new WsHub({
    authToken: opts.authToken,
    maxUploadBytes,
    queueRemaining: () => store.remaining(),
    running: () => runner.running,
  });
  const runner: QueueRunner = new QueueRunner(store, opts.engine, hub);
  const ctx: ServerContext = { engine: opts.engine, host: opts.host, store, runner, hub, maxUploadBytes, version: opts.version ?? '0.0.0', stagingDir };

  const app = Fastify({ logger: false, bodyLimit: maxUploadBytes, routerOptions: { maxParamLength: 1000 } });
  // JSON is parsed by the routes (ComfyUI reads JSON whatever the Content-Type; each route has its own
  // error shape for a malformed body), so every non-multipart body arrives as text
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  await app.register(multipart, { limits: { fileSize: maxUploadBytes } });

  app.addHook('onRequest', async (req, reply) => {
    if (opts.authToken !== undefined && !tokenAccepted(opts.authToken, req.headers, req.url)) {
      return reply.code(401).header('WWW-Authenticate', 'Bearer').send({ error: 'missing or wrong token (Authorization: Bearer T or ?token=T)' });
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const refused = originRefused(req.headers);
      if (refused) return reply.code(403).send({ error: refused });
    }
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > maxUploadBytes + MULTIPART_SLACK) {
      return reply.code(413).send({ error: `request body of ${length} bytes is larger than the limit of ${maxUploadBytes} bytes` });
    }
    return undefined;
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));
  app.setErrorHandler((err: { statusCode?: number; message?: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    void reply.code(status).send({ error: status === 500 ? `internal error: ${err.message}` : err.message });
  });

  for (const prefix of ['', '/api']) {
    await app.register(comfyRoutes(ctx), { prefix });
    await app.register(comfyFiles(ctx), { prefix });
  }

  const prompts = new PromptStore(join(opts.dataDir, 'prompts.sqlite'));
  await app.register(galleryRoutes(ctx, join(opts.dataDir, 'thumbs')));
  await app.register(promptRoutes(prompts));
  // last: its catch-all GET only gets the paths no route above claims
  await app.register(webUi());

  hub.attach(app.server);

  let listening = false;
  return {
    app, store, runner, hub,
    async listen(host, port) {
      const url = await app.listen({ host, port });
      listening = true;
      runner.start();
      return url;
    },
    async close() {
      await runner.stop();
      await hub.close();
      if (listening) await app.close();
      store.close();
      prompts.close();
    },
  };
}
