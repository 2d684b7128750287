// The browser UI: the Vite build in dist/web served at `/`, with the SPA fallback (a page path that
// is not a file gets index.html when a browser asks for HTML, so a reload on /gallery works). @fastify/static (through `send`)
// does the serving, which refuses paths that leave the folder; API prefixes never fall back to HTML.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import fastifyStatic from '@fastify/static';
import { sendError } from './http.js';

/** dist/web beside this module's package: src/server and dist/server are both two levels deep. */
export const WEB_ROOT = fileURLToPath(new URL('../../dist/web/', import.meta.url));

/** Paths that belong to the APIs: a miss there is a JSON 404, never the page. */
const API_PREFIX = /^\/(api|sdapi|v1|latentkit|ws|view|upload|history|queue|prompt|object_info|internal)(\/|$)/;

export function webUi(root: string = WEB_ROOT) {
  return async function plugin(app: FastifyInstance): Promise<void> {
    const built = existsSync(root);
    if (built) await app.register(fastifyStatic, { root, serve: false, cacheControl: false });
    app.get<{ Params: { '*': string } }>('/*', async (req, reply) => {
      const path = req.url.split('?')[0];
      // the app's not-found handler answers in each API family's shape (A1111's {detail}, OpenAI's {error: {…}})
      if (API_PREFIX.test(path)) return reply.callNotFound();
      if (!built) return sendError(reply, 404, 'the web UI is not built (run npm run build:web)');
      const rel = decodeURIComponent(req.params['*'] ?? '');
      const isAsset = /\.[a-z0-9]+$/i.test(rel);
      if (isAsset && existsSync(`${root}${rel}`.replace(/\\/g, '/'))) {
        // hashed file names never change: cache them for a year; index.html is always revalidated
        return reply.header('Cache-Control', rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache').sendFile(rel);
      }
      // only a browser navigating gets the page; API clients asking for an unknown path get JSON
      if (isAsset || !(req.headers.accept ?? '').includes('text/html')) return sendError(reply, 404, `no route GET ${path}`);
      return reply.header('Cache-Control', 'no-cache').sendFile('index.html');
    });
  };
}
