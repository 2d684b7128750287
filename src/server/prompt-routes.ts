// The web UI's prompt routes: the token counter (the server's CLIP tokenizer, so the browser never
// downloads the 1.6 MB vocabulary) and the prompt library with A1111 styles.csv import / export.
import type { FastifyInstance } from 'fastify';
import { parse } from 'csv-parse/sync';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import { ClipTokenizer } from '../text/clip-tokenizer.js';
import { countTokens } from '../text/token-count.js';
import { sendError, validBody } from './http.js';
import type { PromptStore } from './prompt-store.js';

const TokensBody = z.object({ text: z.string().max(100_000), steps: z.number().int().min(1).max(10_000).optional() });

const PromptBody = z.object({
  name: z.string().trim().min(1).max(500),
  prompt: z.string().max(100_000),
  negativePrompt: z.string().max(100_000).default(''),
  tags: z.array(z.string().trim().min(1).max(100)).max(50).default([]),
  isStyle: z.boolean().default(false),
});

const SearchQuery = z.object({
  q: z.string().max(1000).optional(),
  tag: z.string().max(100).optional(),
  styles: z.enum(['0', '1']).optional(),
});

const IdParams = z.object({ id: z.coerce.number().int().positive() });

const StylesCsv = z.object({ csv: z.string().max(10_000_000) });

export function promptRoutes(store: PromptStore) {
  let tokenizer: Promise<ClipTokenizer> | undefined;

  return async function plugin(app: FastifyInstance): Promise<void> {
    app.post('/latentkit/tokens', async (req, reply) => {
      const body = validBody(reply, req.body, TokensBody);
      if (!body) return reply;
      tokenizer ??= ClipTokenizer.load();
      try {
        return countTokens(await tokenizer, body.text, body.steps);
      } catch (err) {
        tokenizer = undefined;
        return sendError(reply, 503, `no CLIP vocabulary: ${(err as Error).message}`);
      }
    });

    app.get('/latentkit/prompts', async (req, reply) => {
      const q = SearchQuery.safeParse(req.query);
      if (!q.success) return sendError(reply, 400, 'q and tag must be short strings, styles 0 or 1');
      return store.search({ text: q.data.q, tag: q.data.tag, styles: q.data.styles === undefined ? undefined : q.data.styles === '1' });
    });

    app.post('/latentkit/prompts', async (req, reply) => {
      const body = validBody(reply, req.body, PromptBody);
      if (!body) return reply;
      return store.add(body);
    });

    app.put('/latentkit/prompts/:id', async (req, reply) => {
      const p = IdParams.safeParse(req.params);
      if (!p.success) return sendError(reply, 400, 'id must be a positive integer');
      const body = validBody(reply, req.body, PromptBody);
      if (!body) return reply;
      return store.update(p.data.id, body) ?? sendError(reply, 404, `no prompt ${p.data.id}`);
    });

    app.delete('/latentkit/prompts/:id', async (req, reply) => {
      const p = IdParams.safeParse(req.params);
      if (!p.success) return sendError(reply, 400, 'id must be a positive integer');
      return store.remove(p.data.id) ? {} : sendError(reply, 404, `no prompt ${p.data.id}`);
    });

    // A1111's styles.csv: header name,prompt,negative_prompt (quoted as Python's csv module writes it)
    app.post('/latentkit/styles.csv', async (req, reply) => {
      const body = validBody(reply, req.body, StylesCsv);
      if (!body) return reply;
      let rows: Record<string, string>[];
      try {
        rows = parse(body.csv, { columns: true, skip_empty_lines: true, relax_column_count: true, bom: true, trim: false });
      } catch (err) {
        return sendError(reply, 400, `styles.csv: ${(err as Error).message}`);
      }
      const styles = rows.filter((r) => (r.name ?? '').trim() !== '')
        .map((r) => ({ name: r.name.trim(), prompt: r.prompt ?? '', negativePrompt: r.negative_prompt ?? '' }));
      return { imported: store.importStyles(styles) };
    });

    app.get('/latentkit/styles.csv', async (_req, reply) => {
      const rows = store.search({ styles: true, limit: 100_000 }).reverse().map((s) => [s.name, s.prompt, s.negativePrompt]);
      return reply.type('text/csv; charset=utf-8').header('Content-Disposition', 'attachment; filename="styles.csv"')
        .send(stringify([['name', 'prompt', 'negative_prompt'], ...rows]));
    });
  };
}
