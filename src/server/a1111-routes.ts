// A1111's `/sdapi/v1` API (1.10): generation routes become queue items of kind 'a1111' whose HTTP
// request waits for the answer; list, option and state routes answer at once — `/progress` from the
// shared progress state, never through the queue.
import { timingSafeEqual } from 'node:crypto';
import { freemem, totalmem } from 'node:os';
import { basename, extname } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { readPngText } from '../formats/png-text.js';
import { LATENT_UPSCALE_MODES } from '../pipelines/hires.js';
import { parseParameters } from '../pipelines/parameters.js';
import { decodeImage, errorBody, httpException } from './a1111-http.js';
import type { A1111Payload } from './a1111-jobs.js';
import type { A1111Catalog } from './a1111-models.js';
import type { ProgressState } from './a1111-progress.js';
import {
  extraBatchModel, extraSingleModel, img2imgModel, interrogateModel, jsonDecodeError, pngInfoModel, txt2imgModel, type Model,
} from './a1111-schemas.js';
import { parseJsonBody, type ServerContext } from './http.js';
import { AbandonedError } from './runner.js';

export interface A1111Context {
  readonly catalog: A1111Catalog;
  readonly progress: ProgressState;
  /** `--api-auth user:pass[,user2:pass2]`: HTTP Basic on every route. */
  readonly apiAuth?: readonly { user: string; pass: string }[];
  /** The server's `--auth-token` (also accepted as a Bearer token). */
  readonly authToken?: string;
  readonly cmdFlags: Record<string, unknown>;
}

/** `user:pass,user2:pass2` → credentials; the password may contain ':'. */
export function parseApiAuth(text: string): { user: string; pass: string }[] {
  return text.split(',').map((pair) => {
    const i = pair.indexOf(':');
    if (i <= 0) throw new Error(`--api-auth wants user:pass[,user2:pass2], got '${pair}'`);
    return { user: pair.slice(0, i), pass: pair.slice(i + 1) };
  });
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** A1111 sampler list (1.10, with the aliases it declares). */
const SAMPLERS: readonly [string, string[]][] = [
  ['DPM++ 2M', ['k_dpmpp_2m']], ['DPM++ SDE', ['k_dpmpp_sde']], ['DPM++ 2M SDE', ['k_dpmpp_2m_sde']],
  ['DPM++ 2M SDE Heun', ['k_dpmpp_2m_sde_heun']], ['DPM++ 2S a', ['k_dpmpp_2s_a']], ['DPM++ 3M SDE', ['k_dpmpp_3m_sde']],
  ['Euler a', ['k_euler_a']], ['Euler', ['k_euler']], ['LMS', ['k_lms']], ['Heun', ['k_heun']], ['DPM2', ['k_dpm_2']],
  ['DPM2 a', ['k_dpm_2_a']], ['DPM fast', ['k_dpm_fast']], ['DPM adaptive', ['k_dpm_ad']], ['Restart', ['restart']],
  ['DDIM', ['ddim']], ['PLMS', ['plms']], ['UniPC', ['unipc']], ['LCM', ['k_lcm']],
];
const SCHEDULERS: readonly [string, string, string[] | null, number][] = [
  ['automatic', 'Automatic', null, -1], ['uniform', 'Uniform', null, -1], ['karras', 'Karras', null, 7], ['exponential', 'Exponential', null, -1],
  ['polyexponential', 'Polyexponential', null, 1], ['sgm_uniform', 'SGM Uniform', ['SGMUniform'], -1], ['kl_optimal', 'KL Optimal', null, -1],
  ['align_your_steps', 'Align Your Steps', null, -1], ['simple', 'Simple', null, -1], ['normal', 'Normal', null, -1], ['ddim', 'DDIM', null, -1],
  ['beta', 'Beta', null, -1],
];

type Route = 'txt2img' | 'img2img' | 'extra-single-image' | 'extra-batch-images';

/** Infotext keys and the request fields they fill (A1111's `infotext` request field). */
const INFOTEXT_FIELDS: Record<string, string> = {
  'Negative prompt': 'negative_prompt', Steps: 'steps', Sampler: 'sampler_name', 'Schedule type': 'scheduler', 'CFG scale': 'cfg_scale',
  Seed: 'seed', 'Variation seed': 'subseed', 'Variation seed strength': 'subseed_strength', 'Denoising strength': 'denoising_strength',
  'Hires upscale': 'hr_scale', 'Hires steps': 'hr_second_pass_steps', 'Hires upscaler': 'hr_upscaler',
};

/** The request fields an infotext sets; the request's own keys win over them (the caller spreads them after). */
export function fieldsFromInfotext(text: string): Record<string, unknown> {
  const p = parseParameters(text);
  const out: Record<string, unknown> = { prompt: p.prompt };
  if (p.negativePrompt) out.negative_prompt = p.negativePrompt;
  for (const [k, v] of Object.entries(p.fields)) if (INFOTEXT_FIELDS[k]) out[INFOTEXT_FIELDS[k]] = v;
  const size = /^(\d+)x(\d+)$/.exec(p.fields.Size ?? '');
  if (size) { out.width = size[1]; out.height = size[2]; }
  if (p.fields['Hires upscale'] || p.fields['Hires upscaler']) out.enable_hr = true;
  return out;
}

export function a1111Routes(ctx: ServerContext, a: A1111Context) {
  const { runner, host } = ctx;

  function fail(reply: FastifyReply, err: unknown): FastifyReply {
    const { status, body } = errorBody(err);
    return reply.code(status).send(body);
  }

  /** The body through its request model; answers 422 itself (FastAPI's shape) when it does not fit. */
  function parse<T>(req: FastifyRequest, reply: FastifyReply, model: Model<T>): T | undefined {
    const json = parseJsonBody(req.body);
    if (!json.ok) {
      void reply.code(422).send({ detail: [jsonDecodeError(typeof req.body === 'string' ? req.body : '')] });
      return undefined;
    }
    const raw = json.value ?? {};
    const infotext = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>).infotext : undefined;
    const r = model.parse(typeof infotext === 'string' && infotext ? { ...fieldsFromInfotext(infotext), ...(raw as Record<string, unknown>) } : raw);
    if (!r.ok) {
      void reply.code(422).send({ detail: r.errors });
      return undefined;
    }
    return r.value;
  }

  /** Queues the job and waits; a client that hangs up before it starts takes it off the queue. */
  async function queued(req: FastifyRequest, reply: FastifyReply, payload: A1111Payload): Promise<unknown> {
    const taskId = 'force_task_id' in payload.body ? (payload.body as { force_task_id?: string | null }).force_task_id : undefined;
    // A1111's force_task_id names the job; it shows in /queue so callers can find theirs
    const { promptId, done } = runner.submit('a1111', payload, { api: 'a1111', route: payload.route, ...(taskId ? { task_id: taskId } : {}) });
    const onClose = () => { if (!reply.raw.writableFinished) runner.abandon(promptId); };
    reply.raw.on('close', onClose);
    try {
      const answer = await done as Record<string, unknown>;
      if (payload.route === 'txt2img' || payload.route === 'img2img') {
        const { pngs: _pngs, ...rest } = answer;
        return rest;
      }
      return answer;
    } catch (err) {
      if (err instanceof AbandonedError) return reply;
      return fail(reply, err);
    } finally {
      reply.raw.off('close', onClose);
    }
  }

  /** Scripts: only `alwayson_scripts` with nothing enabled, and the SD upscale script for img2img. */
  function checkScripts(body: { alwayson_scripts: Record<string, unknown> | null; script_name: string | null }, route: Route): void {
    for (const [title, value] of Object.entries(body.alwayson_scripts ?? {})) {
      const args = value && typeof value === 'object' ? (value as { args?: unknown }).args : undefined;
      const enabled = Array.isArray(args) && args.some((u) => u && typeof u === 'object' && (u as { enabled?: unknown }).enabled === true);
      // ControlNet has not landed: disabled units are accepted, enabled ones answered as A1111 without the extension
      if (title.toLowerCase() === 'controlnet' && !enabled) continue;
      throw httpException(422, `always on script ${title} not found`);
    }
    if (body.script_name && !(route === 'img2img' && body.script_name.trim().toLowerCase() === 'sd upscale')) {
      throw httpException(422, `Script '${body.script_name}' not found`);
    }
  }

  return async function plugin(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', async (req, reply) => {
      (req as { a1111Start?: bigint }).a1111Start = process.hrtime.bigint();
      if (!a.apiAuth?.length) return undefined;
      const auth = req.headers.authorization;
      if (a.authToken && typeof auth === 'string' && /^Bearer\s+/i.test(auth) && same(auth.replace(/^Bearer\s+/i, '').trim(), a.authToken)) return undefined;
      if (typeof auth !== 'string' || !/^Basic\s+/i.test(auth)) {
        return reply.code(401).header('WWW-Authenticate', 'Basic').send(errorBody(httpException(401, 'Not authenticated')).body);
      }
      const decoded = Buffer.from(auth.replace(/^Basic\s+/i, ''), 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      const user = decoded.slice(0, Math.max(i, 0));
      const pass = decoded.slice(i + 1);
      if (i < 0 || !a.apiAuth.some((c) => same(c.user, user) && same(c.pass, pass))) {
        return reply.code(401).header('WWW-Authenticate', 'Basic').send(errorBody(httpException(401, 'Incorrect username or password')).body);
      }
      return undefined;
    });
    app.addHook('onSend', async (req, reply, payload) => {
      const start = (req as { a1111Start?: bigint }).a1111Start;
      if (start !== undefined) void reply.header('X-Process-Time', String(Number(process.hrtime.bigint() - start) / 1e9));
      return payload;
    });

    app.post('/txt2img', async (req, reply) => {
      const body = parse(req, reply, txt2imgModel);
      if (!body) return reply;
      try {
        checkScripts(body, 'txt2img');
      } catch (err) {
        return fail(reply, err);
      }
      return queued(req, reply, { route: 'txt2img', body });
    });

    app.post('/img2img', async (req, reply) => {
      const body = parse(req, reply, img2imgModel);
      if (!body) return reply;
      try {
        if (!body.init_images?.length) throw httpException(404, 'Init image not found');
        checkScripts(body, 'img2img');
        // bad images fail now, before the request waits in the queue
        for (const s of body.init_images) await decodeImage(s, host.maxPixels);
        if (body.mask) await decodeImage(body.mask, host.maxPixels);
      } catch (err) {
        return fail(reply, err);
      }
      return queued(req, reply, { route: 'img2img', body });
    });

    app.post('/extra-single-image', async (req, reply) => {
      const body = parse(req, reply, extraSingleModel);
      if (!body) return reply;
      try {
        await decodeImage(body.image, host.maxPixels);
      } catch (err) {
        return fail(reply, err);
      }
      return queued(req, reply, { route: 'extra-single-image', body });
    });

    app.post('/extra-batch-images', async (req, reply) => {
      const body = parse(req, reply, extraBatchModel);
      if (!body) return reply;
      return queued(req, reply, { route: 'extra-batch-images', body });
    });

    app.post('/png-info', async (req, reply) => {
      const body = parse(req, reply, pngInfoModel);
      if (!body) return reply;
      if (!body.image) return fail(reply, httpException(404, 'Image not found'));
      let bytes: Buffer;
      try {
        bytes = await decodeImage(body.image, host.maxPixels);
      } catch (err) {
        return fail(reply, err);
      }
      let chunks: Record<string, string> = {};
      try {
        chunks = readPngText(bytes);
      } catch {
        // not a PNG (JPEG, WebP): no text chunks
      }
      const { parameters: info = '', ...items } = chunks;
      if (!info) return { info: '', items, parameters: {} };
      const p = parseParameters(info);
      const parameters: Record<string, unknown> = { Prompt: p.prompt, 'Negative prompt': p.negativePrompt };
      for (const [k, v] of Object.entries(p.fields)) {
        const size = k === 'Size' || k === 'Hires resize' ? /^(\d+)x(\d+)$/.exec(v) : null;
        if (size) { parameters[`${k}-1`] = size[1]; parameters[`${k}-2`] = size[2]; } else parameters[k] = v;
      }
      parameters['Clip skip'] ??= '1';
      parameters['Schedule type'] ??= 'Automatic';
      return { info, items, parameters };
    });

    app.post('/interrogate', async (req, reply) => {
      const body = parse(req, reply, interrogateModel);
      if (!body) return reply;
      return fail(reply, httpException(404, 'Model not found'));
    });

    app.get<{ Querystring: Record<string, string> }>('/progress', async (req) => {
      const skip = /^(1|true|yes|on)$/i.test(req.query.skip_current_image ?? '');
      return a.progress.answer(skip, runner.runningKind === 'comfy');
    });

    app.post('/interrupt', async () => {
      runner.interrupt();
      return {};
    });
    app.post('/skip', async () => {
      runner.skip();
      return null;
    });

    app.get('/options', async (_req, reply) => {
      try {
        return await a.catalog.getOptions();
      } catch (err) {
        return fail(reply, err);
      }
    });
    app.post('/options', async (req, reply) => {
      const json = parseJsonBody(req.body);
      if (!json.ok) return reply.code(422).send({ detail: [jsonDecodeError(String(req.body))] });
      if (typeof json.value !== 'object' || json.value === null || Array.isArray(json.value)) {
        return reply.code(422).send({ detail: [{ loc: ['body'], msg: 'value is not a valid dict', type: 'type_error.dict' }] });
      }
      try {
        await a.catalog.setOptions(json.value as Record<string, unknown>);
      } catch (err) {
        return fail(reply, err);
      }
      return null;
    });
    app.get('/cmd-flags', async () => a.cmdFlags);

    app.get('/samplers', async () => SAMPLERS.map(([name, aliases]) => ({ name, aliases, options: {} })));
    app.get('/schedulers', async () => SCHEDULERS.map(([name, label, aliases, rho]) => ({ name, label, aliases, default_rho: rho, need_inner_model: false })));
    app.get('/upscalers', async () => [
      { name: 'None', model_name: null, model_path: null, model_url: null, scale: 4 },
      { name: 'Lanczos', model_name: null, model_path: null, model_url: null, scale: 4 },
      { name: 'Nearest', model_name: null, model_path: null, model_url: null, scale: 4 },
      ...host.listFiles('upscale_models').map((f) => ({
        name: basename(f, extname(f)), model_name: basename(f, extname(f)), model_path: host.resolveFile('upscale_models', f), model_url: null, scale: 4,
      })),
    ]);
    app.get('/latent-upscale-modes', async () => Object.keys(LATENT_UPSCALE_MODES).map((name) => ({ name })));
    app.get('/sd-models', async (_req, reply) => {
      try {
        return await a.catalog.checkpoints();
      } catch (err) {
        return fail(reply, err);
      }
    });
    app.get('/sd-vae', async () => host.listFiles('vae').map((f) => ({ model_name: f, filename: host.resolveFile('vae', f) })));
    app.get('/hypernetworks', async () => host.listFiles('hypernetworks').map((f) => ({ name: basename(f, extname(f)), path: host.resolveFile('hypernetworks', f) })));
    app.get('/face-restorers', async () => []);
    app.get('/realesrgan-models', async () => []);
    app.get('/prompt-styles', async () => a.catalog.styles());
    app.get('/embeddings', async () => ({
      loaded: Object.fromEntries(host.embeddings().map((n) => [basename(n), { step: null, sd_checkpoint: null, sd_checkpoint_name: null, shape: 768, vectors: 1 }])),
      skipped: {},
    }));
    app.get('/loras', async () => host.listFiles('loras').map((f) => {
      const name = basename(f, extname(f));
      return { name, alias: name, path: host.resolveFile('loras', f), metadata: {} };
    }));
    for (const route of ['/refresh-checkpoints', '/refresh-vae', '/refresh-embeddings', '/refresh-loras', '/refresh-hypernetworks', '/unload-checkpoint', '/reload-checkpoint']) {
      app.post(route, async () => {
        a.catalog.refresh();
        return null;
      });
    }
    app.get('/memory', async () => {
      const total = totalmem();
      const free = freemem();
      return { ram: { free, used: total - free, total }, cuda: { error: 'latentkit runs on ONNX Runtime; no CUDA statistics' } };
    });
  };
}
