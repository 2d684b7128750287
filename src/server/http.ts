// Small HTTP helpers the route modules share: lenient JSON bodies (ComfyUI parses JSON whatever the
// Content-Type says) and JSON error answers.
import type { FastifyReply } from 'fastify';
import type { ZodType } from 'zod';
import type { Engine } from './engine-api.js';
import type { ServerHost } from './host.js';
import type { QueueStore } from './queue-store.js';
import type { QueueRunner } from './runner.js';
import type { WsHub } from './comfy-ws.js';

/** Everything a route plugin needs; one per server. */
export interface ServerContext {
  readonly engine: Engine;
  readonly host: ServerHost;
  readonly store: QueueStore;
  readonly runner: QueueRunner;
  readonly hub: WsHub;
  readonly maxUploadBytes: number;
  readonly version: string;
  /** Folder for upload staging (same filesystem as the data folder). */
  readonly stagingDir: string;
}

export type JsonResult = { ok: true; value: unknown } | { ok: false; message: string };

/** The request body (kept as text by the catch-all parser) as JSON; an empty body is `undefined`. */
export function parseJsonBody(body: unknown): JsonResult {
  if (body === undefined || body === null) return { ok: true, value: undefined };
  const text = Buffer.isBuffer(body) ? body.toString('utf8') : typeof body === 'string' ? body : undefined;
  if (text === undefined) return { ok: true, value: body };
  if (text.trim() === '') return { ok: true, value: undefined };
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

/** A JSON body checked against a schema; answers 400 itself and returns undefined when it does not fit. */
export function validBody<T>(reply: FastifyReply, body: unknown, schema: ZodType<T>): T | undefined {
  const parsed = parseJsonBody(body);
  if (!parsed.ok) {
    void reply.code(400).send({ error: `invalid JSON: ${parsed.message}` });
    return undefined;
  }
  const r = schema.safeParse(parsed.value ?? {});
  if (!r.success) {
    void reply.code(400).send({ error: `invalid request body: ${r.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ')}` });
    return undefined;
  }
  return r.data;
}

export function sendError(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).type('application/json').send({ error: message });
}
