// The gallery over the SQLite history: every saved output image, newest first, filterable by prompt,
// model, sampler and date, paged by a cursor; thumbnails made once with sharp and kept on disk; delete
// removes the files and the history record together.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { FastifyInstance } from 'fastify';
import sharp from 'sharp';
import { z } from 'zod';
import { resolveInside } from '../workflow/files.js';
import { paramsOf, type GalleryParams } from './gallery-params.js';
import { sendError, type ServerContext } from './http.js';

export interface GalleryImage extends GalleryParams {
  /** `promptId/node/index`: stable while the record lives. */
  id: string;
  promptId: string;
  filename: string;
  subfolder: string;
  /** Milliseconds since the epoch when the prompt started (0 when the record has no time). */
  time: number;
  /** The ComfyUI API graph, for "reuse in Workflow". */
  graph: unknown;
}

const Query = z.object({
  q: z.string().max(1000).optional(),
  model: z.string().max(1000).optional(),
  sampler: z.string().max(200).optional(),
  from: z.coerce.number().int().nonnegative().optional(),
  to: z.coerce.number().int().nonnegative().optional(),
  cursor: z.coerce.number().int().nonnegative().optional(),
  limit: z.coerce.number().int().min(1).max(200).optional(),
});

const ThumbQuery = z.object({
  filename: z.string().min(1).max(1000),
  subfolder: z.string().max(1000).optional(),
});

const THUMB_PX = 256;

interface HistoryEntry {
  prompt?: unknown[];
  outputs?: Record<string, { images?: { filename?: string; subfolder?: string; type?: string }[] }>;
  status?: { messages?: [string, { timestamp?: number }][] };
}

function imagesOf(promptId: string, raw: unknown): GalleryImage[] {
  const entry = raw as HistoryEntry;
  const graph = Array.isArray(entry.prompt) ? entry.prompt[2] : undefined;
  const params = paramsOf(graph);
  const start = entry.status?.messages?.find(([name]) => name === 'execution_start')?.[1]?.timestamp ?? 0;
  const out: GalleryImage[] = [];
  for (const [node, o] of Object.entries(entry.outputs ?? {})) {
    (o.images ?? []).forEach((img, k) => {
      if (img.type !== 'output' || typeof img.filename !== 'string') return;
      out.push({ ...params, id: `${promptId}/${node}/${k}`, promptId, filename: img.filename, subfolder: img.subfolder ?? '', time: start, graph });
    });
  }
  return out;
}

export function galleryRoutes(ctx: ServerContext, thumbDir: string) {
  const outputDir = ctx.host.folders.output;

  const outputPath = (subfolder: string, filename: string) => resolveInside(outputDir, posix.join(subfolder.replace(/\\/g, '/'), filename));

  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get('/latentkit/gallery', async (req, reply) => {
      const q = Query.safeParse(req.query);
      if (!q.success) return sendError(reply, 400, `invalid query: ${q.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      const { q: text, model, sampler, from, to, cursor = 0, limit = 48 } = q.data;
      const words = (text ?? '').toLowerCase().split(/\s+/).filter(Boolean);
      // a linear scan: the history holds at most MAX_HISTORY entries, parsed in a few milliseconds
      const all = ctx.store.historyNewestFirst().flatMap((r) => imagesOf(r.promptId, r.entry)).filter((im) =>
        words.every((w) => `${im.prompt} ${im.negativePrompt}`.toLowerCase().includes(w))
        && (!model || im.model.toLowerCase().includes(model.toLowerCase()))
        && (!sampler || im.sampler === sampler)
        && (from === undefined || im.time >= from)
        && (to === undefined || im.time <= to));
      const items = all.slice(cursor, cursor + limit);
      return { items, total: all.length, next: cursor + limit < all.length ? cursor + limit : null };
    });

    app.get('/latentkit/gallery/thumb', async (req, reply) => {
      const q = ThumbQuery.safeParse(req.query);
      if (!q.success) return sendError(reply, 400, 'filename is required');
      let path: string;
      try {
        path = outputPath(q.data.subfolder ?? '', q.data.filename);
      } catch (err) {
        return sendError(reply, 403, (err as Error).message);
      }
      const info = await stat(path).catch(() => undefined);
      if (!info?.isFile()) return sendError(reply, 404, `${q.data.filename}: not found`);
      // keyed by path and mtime: a file written again under the same name gets a fresh thumbnail
      const key = createHash('sha256').update(`${path}\0${info.mtimeMs}`).digest('hex').slice(0, 32);
      const thumb = join(thumbDir, `${key}.webp`);
      if (!existsSync(thumb)) {
        await mkdir(thumbDir, { recursive: true });
        const tmp = `${thumb}.${process.pid}.tmp`;
        try {
          await sharp(path, { limitInputPixels: ctx.host.maxPixels }).resize(THUMB_PX, THUMB_PX, { fit: 'inside', withoutEnlargement: true }).webp({ quality: 80 }).toFile(tmp);
        } catch (err) {
          await rm(tmp, { force: true });
          return sendError(reply, 415, `${q.data.filename}: ${(err as Error).message}`);
        }
        await rename(tmp, thumb);
      }
      return reply.header('Cache-Control', 'public, max-age=86400').type('image/webp').send(createReadStream(thumb));
    });

    app.delete<{ Params: { id: string } }>('/latentkit/gallery/:id', async (req, reply) => {
      const id = req.params.id;
      const entry = ctx.store.historyEntry(id);
      if (entry === undefined) return sendError(reply, 404, `no history entry ${id}`);
      const files = imagesOf(id, entry).map((im) => outputPath(im.subfolder, im.filename));
      // the record goes first: a crash between the two leaves an orphan file, never a record whose image is gone
      ctx.store.deleteHistory([id]);
      for (const f of files) await rm(f, { force: true });
      return { deleted: files.length };
    });
  };
}
