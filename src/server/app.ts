// The ComfyUI-compatible server: Fastify for HTTP, `ws` for the websocket, SQLite for the queue.
// This module wires them together and owns the request-wide rules (auth, Origin, size limits, JSON
// bodies whatever the Content-Type, JSON errors); the routes live in their own modules.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import multipart from '@fastify/multipart';
import { removeStaleTempFiles } from '../workflow/files.js';
import { ResourceCache } from '../workflow/resource-cache.js';
import { a1111Handler, type A1111Payload } from './a1111-jobs.js';
import { A1111Catalog } from './a1111-models.js';
import { ProgressState } from './a1111-progress.js';
import { a1111Routes, parseApiAuth } from './a1111-routes.js';
import { openaiRoutes } from './openai-routes.js';
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
  /** `--api-auth user:pass[,user2:pass2]`: HTTP Basic on the `/sdapi/v1` routes, as A1111. */
  readonly apiAuth?: string;
  /** What `/sdapi/v1/cmd-flags` reports. */
  readonly cmdFlags?: Record<string, unknown>;
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

  const catalog = new A1111Catalog(opts.host, opts.dataDir);
  await catalog.load();
  const progress = new ProgressState();
  const handle = a1111Handler({ host: opts.host, catalog, progress, resources: opts.engine.resources ?? new ResourceCache() });
  runner.setHandler('a1111', (item, control) => handle(item.payload as A1111Payload, control));
  runner.setHandler('openai', (item, control) => handle(item.payload as A1111Payload, control));
  const apiAuth = opts.apiAuth ? parseApiAuth(opts.apiAuth) : undefined;

  const app = Fastify({ logger: false, bodyLimit: maxUploadBytes, routerOptions: { maxParamLength: 1000 } });
  // JSON is parsed by the routes (ComfyUI reads JSON whatever the Content-Type; each route has its own
  // error shape for a malformed body), so every non-multipart body arrives as text
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  await app.register(multipart, { limits: { fileSize: maxUploadBytes } });

  app.addHook('onRequest', async (req, reply) => {
    // the OpenAI routes check the token as an API key (their own error shape); A1111's take Basic auth when --api-auth is on
    const ownAuth = req.url.startsWith('/v1/') || (apiAuth !== undefined && req.url.startsWith('/sdapi/'));
    if (opts.authToken !== undefined && !ownAuth && !tokenAccepted(opts.authToken, req.headers, req.url)) {
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

  app.setNotFoundHandler((req, reply) => {
    if (req.url.startsWith('/sdapi/')) {
      // FastAPI tells a wrong method from a missing route
      const url = req.url.split('?')[0];
      const other = (['GET', 'POST'] as const).some((method) => method !== req.method && app.hasRoute({ method, url }));
      return other ? reply.code(405).send({ detail: 'Method Not Allowed' }) : reply.code(404).send({ detail: 'Not Found' });
    }
    if (req.url.startsWith('/v1/')) return reply.code(404).send({ error: { message: `Invalid URL (${req.method} ${req.url.split('?')[0]})`, type: 'invalid_request_error', param: null, code: null } });
    return reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` });
  });
  app.setErrorHandler((err: { statusCode?: number; message?: string; name?: string }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (req.url.startsWith('/sdapi/')) return reply.code(status).send({ error: err.name ?? 'Error', detail: '', body: '', errors: err.message ?? '' });
    if (req.url.startsWith('/v1/')) return reply.code(status).send({ error: { message: err.message ?? '', type: status >= 500 ? 'server_error' : 'invalid_request_error', param: null, code: null } });
    void reply.code(status).send({ error: status === 500 ? `internal error: ${err.message}` : err.message });
  });

  for (const prefix of ['', '/api']) {
    await app.register(comfyRoutes(ctx), { prefix });
    await app.register(comfyFiles(ctx), { prefix });
  }

  await app.register(a1111Routes(ctx, { catalog, progress, apiAuth, authToken: opts.authToken, cmdFlags: opts.cmdFlags ?? {} }), { prefix: '/sdapi/v1' });
  await app.register(openaiRoutes(ctx, catalog, opts.authToken), { prefix: '/v1' });
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
