// The web UI's build: into dist/web, which `latentkit serve` serves at `/` (src/server/web-ui.ts).
// Vite 8 compiles TSX with Oxc itself, so no framework plugin is needed for a production build.
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    reportCompressedSize: true,
    chunkSizeWarningLimit: 400,
  },
  server: { proxy: { '^/(api|sdapi|latentkit|ws|view|upload|history|queue|prompt|object_info|interrupt|system_stats|embeddings|models)': { target: 'http://127.0.0.1:8188', ws: true } } },
});
