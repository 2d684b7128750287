// OpenAI's Images API (`/v1/images/generations`, `/edits`, `/variations`, `/v1/models`) over the same
// queue: each request becomes an A1111-style txt2img / img2img job of kind 'openai'. The server's
// `--auth-token` is the API key; errors use OpenAI's `{"error": {message, type, param, code}}`.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { z } from 'zod';
import { writeNewFile } from '../workflow/files.js';
import { A1111Error } from './a1111-http.js';
import type { A1111Payload, GenerationAnswer } from './a1111-jobs.js';
import type { A1111Catalog } from './a1111-models.js';
import { img2imgModel, txt2imgModel } from './a1111-schemas.js';
import { parseJsonBody, type ServerContext } from './http.js';
import { AbandonedError } from './runner.js';

/** Model names OpenAI clients send by default: they mean "the current checkpoint". */
const OPENAI_MODELS = new Set(['dall-e-2', 'dall-e-3', 'gpt-image-1', 'gpt-image-1-mini']);
/** Steps and strength of the requests OpenAI's fields do not describe. */
const DEFAULT_STEPS = 20;
const VARIATION_STRENGTH = 0.6;

class OpenAIError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly code: string | null = null, readonly type = status >= 500 ? 'server_error' : 'invalid_request_error') {
    super(message);
  }
}

function send(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof OpenAIError) return reply.code(err.status).send({ error: { message: err.message, type: err.type, param: err.param, code: err.code } });
  if (err instanceof A1111Error && err.status < 500) return reply.code(err.status === 413 ? 413 : 400).send({ error: { message: err.message, type: 'invalid_request_error', param: null, code: null } });
  const message = err instanceof A1111Error ? err.message : (err as Error)?.message ?? String(err);
  return reply.code(500).send({ error: { message, type: 'server_error', param: null, code: null } });
}

const GenerationBody = z.object({
  prompt: z.string({ error: 'prompt must be a string' }).min(1, { error: 'prompt must not be empty' }).max(4000, { error: 'prompt is longer than 4000 characters' }),
  model: z.string().nullable().optional(),
  n: z.number().int().min(1).max(10).nullable().optional(),
  size: z.string().nullable().optional(),
  response_format: z.enum(['url', 'b64_json']).nullable().optional(),
  user: z.string().nullable().optional(),
});

const FormFields = GenerationBody.extend({
  prompt: GenerationBody.shape.prompt.optional(),
  n: z.coerce.number().int().min(1).max(10).optional(),
});

function parseSize(size: string | null | undefined): { width: number; height: number } {
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(size ?? '1024x1024');
  const width = m ? Number(m[1]) : NaN;
  const height = m ? Number(m[2]) : NaN;
  if (!m || width < 8 || height < 8 || width > 4096 || height > 4096 || width % 8 || height % 8) {
    throw new OpenAIError(400, `'${size}' is not a supported size: give WxH, multiples of 8 from 8 to 4096`, 'size', 'invalid_size');
  }
  return { width, height };
}

function firstIssue(err: z.ZodError): OpenAIError {
  const i = err.issues[0];
  const param = i.path.length ? String(i.path[0]) : null;
  return new OpenAIError(400, param && i.code === 'invalid_type' && i.input === undefined ? `Missing required parameter: '${param}'.` : `Invalid '${param}': ${i.message}`, param, param && i.input === undefined ? 'missing_required_parameter' : 'invalid_value');
}

interface Upload {
  fields: Record<string, string>;
  files: Record<string, Buffer>;
}

/** The multipart form in memory (images are capped by the upload limit). */
async function readForm(req: FastifyRequest, maxBytes: number): Promise<Upload> {
  const form: Upload = { fields: {}, files: {} };
  if (!req.isMultipart()) throw new OpenAIError(400, 'expected multipart/form-data with an "image" file', 'image');
  for await (const part of req.parts({ limits: { fileSize: maxBytes, files: 4, fields: 32, fieldSize: 1 << 20 } })) {
    if (part.type === 'field') {
      if (typeof part.value === 'string') form.fields[part.fieldname] = part.value;
      continue;
    }
    const name = part.fieldname.replace(/\[\]$/, '');
    const buf = await part.toBuffer();
    if (part.file.truncated) throw new OpenAIError(413, `${name} is larger than the upload limit`, name);
    if (!form.files[name]) form.files[name] = buf;
  }
  return form;
}

/** OpenAI's mask (alpha 0 = edit) → A1111's (white = repaint), at the image's size. */
async function a1111Mask(image: Buffer, mask: Buffer | undefined): Promise<Buffer | undefined> {
  const meta = await sharp(image).metadata();
  const src = mask ?? image;
  const srcMeta = await sharp(src).metadata();
  if (!srcMeta.hasAlpha) {
    if (mask) throw new OpenAIError(400, 'mask must be a PNG with an alpha channel (transparent = edit)', 'mask');
    return undefined;
  }
  const { data, info } = await sharp(src).ensureAlpha().resize(meta.width, meta.height, { fit: 'fill' }).raw().toBuffer({ resolveWithObject: true });
  const out = Buffer.alloc(info.width * info.height);
  for (let i = 0; i < out.length; i++) out[i] = data[i * info.channels + 3] === 0 ? 255 : 0;
  if (!out.includes(255)) return undefined;
  return sharp(out, { raw: { width: info.width, height: info.height, channels: 1 } }).png().toBuffer();
}

export function openaiRoutes(ctx: ServerContext, catalog: A1111Catalog, authToken: string | undefined) {
  const { runner } = ctx;

  async function checkpointFor(model: string | null | undefined): Promise<string | undefined> {
    if (!model || OPENAI_MODELS.has(model)) return undefined;
    const hit = await catalog.find(model);
    if (!hit) throw new OpenAIError(404, `The model '${model}' does not exist`, 'model', 'model_not_found');
    return hit.title;
  }

  async function run(req: FastifyRequest, reply: FastifyReply, payload: A1111Payload, format: 'url' | 'b64_json'): Promise<unknown> {
    const { promptId, done } = runner.submit('openai', payload, { api: 'openai', route: payload.route });
    const onClose = () => { if (!reply.raw.writableFinished) runner.abandon(promptId); };
    reply.raw.on('close', onClose);
    try {
      const answer = await done as GenerationAnswer;
      const info = JSON.parse(answer.info) as { all_seeds: number[] };
      const data = [];
      for (const [i, png] of answer.pngs.entries()) {
        if (format === 'b64_json') { data.push({ b64_json: png.toString('base64') }); continue; }
        const dir = join(ctx.host.folders.output, 'openai');
        await mkdir(dir, { recursive: true });
        let name = '';
        do name = `${Date.now()}-${info.all_seeds[i]}-${randomBytes(3).toString('hex')}.png`; while (!await writeNewFile(dir, name, png));
        const origin = `${req.protocol}://${req.headers.host ?? 'localhost'}`;
        data.push({ url: `${origin}/view?filename=${encodeURIComponent(name)}&subfolder=openai&type=output` });
      }
      return { created: Math.floor(Date.now() / 1000), data };
    } catch (err) {
      if (err instanceof AbandonedError) return reply;
      return send(reply, err);
    } finally {
      reply.raw.off('close', onClose);
    }
  }

  /** An A1111 request body, through the A1111 model so it has every default the job expects. */
  function a1111Body<T>(model: { parse(b: unknown): { ok: true; value: T } | { ok: false } }, body: Record<string, unknown>): T {
    const r = model.parse(body);
    if (!r.ok) throw new OpenAIError(400, 'invalid request', null);
    return r.value;
  }

  return async function plugin(app: FastifyInstance): Promise<void> {
    app.addHook('onRequest', async (req, reply) => {
      if (authToken === undefined) return undefined;
      const auth = req.headers.authorization;
      const key = typeof auth === 'string' && /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, '').trim() : '';
      const a = Buffer.from(key);
      const b = Buffer.from(authToken);
      if (a.length === b.length && timingSafeEqual(a, b)) return undefined;
      return send(reply, new OpenAIError(401, key ? 'Incorrect API key provided.' : 'You didn\'t provide an API key (Authorization: Bearer <key>).', null, 'invalid_api_key'));
    });

    app.get('/models', async () => ({
      object: 'list',
      data: (await catalog.checkpoints()).map((c) => ({ id: c.model_name, object: 'model', created: 0, owned_by: 'latentkit' })),
    }));

    app.post('/images/generations', async (req, reply) => {
      try {
        const json = parseJsonBody(req.body);
        if (!json.ok) throw new OpenAIError(400, `We could not parse the JSON body of your request. (${json.message})`);
        const parsed = GenerationBody.safeParse(json.value ?? {});
        if (!parsed.success) throw firstIssue(parsed.error);
        const b = parsed.data;
        const { width, height } = parseSize(b.size);
        const ckpt = await checkpointFor(b.model);
        const body = a1111Body(txt2imgModel, {
          prompt: b.prompt, width, height, batch_size: b.n ?? 1, steps: DEFAULT_STEPS, sampler_name: 'DPM++ 2M', scheduler: 'karras',
          override_settings: ckpt ? { sd_model_checkpoint: ckpt } : {},
        });
        return await run(req, reply, { route: 'txt2img', body }, b.response_format ?? 'url');
      } catch (err) {
        return send(reply, err);
      }
    });

    for (const route of ['edits', 'variations'] as const) {
      app.post(`/images/${route}`, async (req, reply) => {
        try {
          const form = await readForm(req, ctx.maxUploadBytes);
          const parsed = FormFields.safeParse(form.fields);
          if (!parsed.success) throw firstIssue(parsed.error);
          const f = parsed.data;
          if (route === 'edits' && !f.prompt) throw new OpenAIError(400, 'Missing required parameter: \'prompt\'.', 'prompt', 'missing_required_parameter');
          const image = form.files.image;
          if (!image) throw new OpenAIError(400, 'Missing required parameter: \'image\'.', 'image', 'missing_required_parameter');
          const meta = await sharp(image).metadata().catch(() => undefined);
          if (!meta?.width || !meta.height || meta.width * meta.height > ctx.host.maxPixels) throw new OpenAIError(400, 'image is not a readable image within the pixel limit', 'image', 'invalid_image');
          const size = f.size ? parseSize(f.size) : { width: Math.floor(meta.width / 8) * 8, height: Math.floor(meta.height / 8) * 8 };
          const ckpt = await checkpointFor(f.model);
          const mask = route === 'edits' ? await a1111Mask(image, form.files.mask) : undefined;
          const body = a1111Body(img2imgModel, {
            prompt: f.prompt ?? '', init_images: [image.toString('base64')], mask: mask?.toString('base64') ?? null,
            width: size.width, height: size.height, batch_size: f.n ?? 1, steps: DEFAULT_STEPS, sampler_name: 'DPM++ 2M', scheduler: 'karras',
            // an edit repaints the transparent area from scratch; a variation keeps the composition
            denoising_strength: route === 'edits' ? (mask ? 1 : 0.75) : VARIATION_STRENGTH, inpainting_fill: 1, inpaint_full_res: false,
            override_settings: ckpt ? { sd_model_checkpoint: ckpt } : {},
          });
          return await run(req, reply, { route: 'img2img', body }, f.response_format ?? 'url');
        } catch (err) {
          return send(reply, err);
        }
      });
    }
  };
}
