// ComfyUI's JSON routes: prompt, queue, history, node catalogue, status and control. Registered once
// at `/` and once under `/api` (the web frontend uses `/api/…`, scripts the bare paths).
import { randomUUID } from 'node:crypto';
import { open } from 'node:fs/promises';
import { freemem, totalmem } from 'node:os';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { FolderName } from '../workflow/types.js';
import { MODEL_FOLDERS } from './host.js';
import { parseJsonBody, sendError, validBody, type ServerContext } from './http.js';
import { toTuple } from './queue-store.js';

/** `extra_data` keys ComfyUI never stores (API keys of its paid nodes). */
const SENSITIVE_EXTRA_DATA_KEYS = ['auth_token_comfy_org', 'api_key_comfy_org'];

/** The ComfyUI version whose API this server speaks (clients gate features on it). */
const COMFYUI_VERSION = '0.3.64';

const PromptBody = z.object({
  prompt: z.unknown().optional(),
  client_id: z.string().max(256).nullable().optional(),
  prompt_id: z.union([z.string().min(1).max(256), z.number()]).optional(),
  number: z.union([z.number(), z.string()]).optional(),
  front: z.unknown().optional(),
  extra_data: z.record(z.string(), z.unknown()).optional(),
  partial_execution_targets: z.array(z.string()).nullable().optional(),
});

const ClearDelete = z.object({
  clear: z.unknown().optional(),
  delete: z.array(z.string()).optional(),
});

const FreeBody = z.object({
  unload_models: z.boolean().optional(),
  free_memory: z.boolean().optional(),
});

const HistoryQuery = z.object({
  max_items: z.coerce.number().int().min(0).optional(),
  offset: z.coerce.number().int().optional(),
});

function promptError(reply: FastifyReply, message: string, details: string): FastifyReply {
  return reply.code(400).send({ error: { type: 'invalid_prompt', message, details, extra_info: {} }, node_errors: {} });
}

/** `argv` for `/system_stats`, with the token's value hidden. */
function redactedArgv(): string[] {
  const out = process.argv.slice(1);
  for (let i = 0; i < out.length; i++) {
    if (out[i] === '--auth-token' && i + 1 < out.length) out[++i] = '***';
    else if (out[i].startsWith('--auth-token=')) out[i] = '--auth-token=***';
  }
  return out;
}

/** The `__metadata__` of a safetensors file (header only, at most 8 MB as ComfyUI reads it). */
async function safetensorsMetadata(path: string): Promise<Record<string, unknown> | undefined> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(8);
    if ((await fh.read(head, 0, 8, 0)).bytesRead < 8) return undefined;
    const len = Number(head.readBigUInt64LE(0));
    if (len <= 0 || len > 8 * 1024 * 1024) return undefined;
    const buf = Buffer.alloc(len);
    if ((await fh.read(buf, 0, len, 8)).bytesRead < len) return undefined;
    const header = JSON.parse(buf.toString('utf8')) as { __metadata__?: Record<string, unknown> };
    return header.__metadata__ ?? {};
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}

function isFolder(name: string): name is Exclude<FolderName, 'input'> {
  return (MODEL_FOLDERS as readonly string[]).includes(name) || name === 'clip' || name === 'unet';
}

export function comfyRoutes(ctx: ServerContext) {
  const { engine, store, runner, hub, host } = ctx;
  return async function plugin(app: FastifyInstance): Promise<void> {
    app.post('/prompt', async (req, reply) => {
      const parsed = parseJsonBody(req.body);
      if (!parsed.ok) return promptError(reply, 'Invalid JSON in the request body', parsed.message);
      if (typeof parsed.value !== 'object' || parsed.value === null || Array.isArray(parsed.value)) {
        return promptError(reply, 'The request body must be a JSON object', 'expected {"prompt": {...}, "client_id": "..."}');
      }
      const r = PromptBody.safeParse(parsed.value);
      if (!r.success) return promptError(reply, 'Invalid request body', r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      const body = r.data;
      let number: number;
      if (body.number !== undefined) {
        number = Number(body.number);
        if (!Number.isFinite(number)) return promptError(reply, 'Invalid request body', `number: '${body.number}' is not a number`);
      } else {
        number = store.nextNumber();
        if (body.front) number = -number;
      }
      if (body.prompt === undefined) {
        return reply.code(400).send({ error: { type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} }, node_errors: {} });
      }
      const promptId = body.prompt_id !== undefined ? String(body.prompt_id) : randomUUID();
      if (store.has(promptId)) return promptError(reply, 'Prompt id already queued', `prompt_id '${promptId}' is waiting or running`);
      const valid = await engine.validate(body.prompt, body.partial_execution_targets ?? undefined);
      if (!valid.ok) return reply.code(400).send({ error: valid.error, node_errors: valid.nodeErrors });
      const extraData: Record<string, unknown> = { ...(body.extra_data ?? {}) };
      if (body.client_id !== undefined && body.client_id !== null) extraData.client_id = body.client_id;
      for (const k of SENSITIVE_EXTRA_DATA_KEYS) delete extraData[k];
      extraData.create_time = Date.now();
      store.enqueue({ promptId, number, prompt: valid.prompt, extraData, outputs: valid.outputs });
      hub.broadcastStatus(store.remaining());
      runner.wake();
      return { prompt_id: promptId, number, node_errors: valid.nodeErrors };
    });

    app.get('/prompt', async () => ({ exec_info: { queue_remaining: store.remaining() } }));

    app.get('/queue', async () => ({ queue_running: store.running().map(toTuple), queue_pending: store.pending().map(toTuple) }));

    app.post('/queue', async (req, reply) => {
      const body = validBody(reply, req.body, ClearDelete);
      if (!body) return reply;
      if (body.clear) store.clearPending();
      if (body.delete) store.deletePending(body.delete);
      hub.broadcastStatus(store.remaining());
      return {};
    });

    app.get('/history', async (req, reply) => {
      const q = HistoryQuery.safeParse(req.query);
      if (!q.success) return sendError(reply, 400, 'max_items and offset must be integers');
      return store.history(q.data.max_items, q.data.offset ?? -1);
    });

    app.get<{ Params: { id: string } }>('/history/:id', async (req) => {
      const entry = store.historyEntry(req.params.id);
      return entry === undefined ? {} : { [req.params.id]: entry };
    });

    app.post('/history', async (req, reply) => {
      const body = validBody(reply, req.body, ClearDelete);
      if (!body) return reply;
      if (body.clear) store.clearHistory();
      if (body.delete) store.deleteHistory(body.delete);
      return {};
    });

    app.get('/object_info', async () => engine.objectInfo());
    app.get<{ Params: { cls: string } }>('/object_info/:cls', async (req) => engine.objectInfoFor(req.params.cls));

    app.get('/system_stats', async () => ({
      system: {
        os: process.platform === 'win32' ? 'nt' : 'posix',
        ram_total: totalmem(),
        ram_free: freemem(),
        comfyui_version: COMFYUI_VERSION,
        required_frontend_version: '',
        installed_templates_version: '',
        required_templates_version: '',
        python_version: `latentkit ${ctx.version} on Node.js ${process.versions.node}`,
        pytorch_version: 'onnxruntime-node',
        embedded_python: false,
        argv: redactedArgv(),
      },
      devices: [{ name: 'cpu', type: 'cpu', index: null, vram_total: 0, vram_free: 0, torch_vram_total: 0, torch_vram_free: 0 }],
    }));

    app.get('/features', async () => ({ supports_preview_metadata: true, max_upload_size: ctx.maxUploadBytes }));
    app.get('/extensions', async () => []);
    app.get('/embeddings', async () => host.embeddings());
    app.get('/models', async () => MODEL_FOLDERS);
    app.get<{ Params: { folder: string } }>('/models/:folder', async (req, reply) => {
      const { folder } = req.params;
      if (!isFolder(folder)) return sendError(reply, 404, `no model folder '${folder}'`);
      return host.listFiles(folder);
    });

    app.get<{ Params: { folder: string }; Querystring: { filename?: string } }>('/view_metadata/:folder', async (req, reply) => {
      const { folder } = req.params;
      const filename = req.query.filename;
      if (!isFolder(folder)) return sendError(reply, 404, `no model folder '${folder}'`);
      if (typeof filename !== 'string' || !filename.endsWith('.safetensors')) return sendError(reply, 404, 'filename must name a .safetensors file');
      let path: string;
      try {
        path = host.resolveFile(folder, filename);
      } catch (err) {
        return sendError(reply, 404, (err as Error).message);
      }
      const meta = await safetensorsMetadata(path);
      return meta ?? sendError(reply, 404, `${filename}: no safetensors header`);
    });

    app.post('/interrupt', async (req) => {
      // any body, even none or not JSON, means "interrupt whatever runs"
      const parsed = parseJsonBody(req.body);
      const id = parsed.ok && parsed.value && typeof parsed.value === 'object' ? (parsed.value as { prompt_id?: unknown }).prompt_id : undefined;
      runner.interrupt(typeof id === 'string' ? id : undefined);
      return {};
    });

    app.post('/free', async (req, reply) => {
      const body = validBody(reply, req.body, FreeBody);
      if (!body) return reply;
      if (body.unload_models || body.free_memory) runner.free({ unloadModels: body.unload_models, freeMemory: body.free_memory });
      return {};
    });
  };
}
