import { startServer } from '/work/wt16/test/server/helpers.ts';
const s = await startServer();
for (const p of ['/', '/gallery', '/api/nothing', '/..%2f..%2fpackage.json', '/assets/..%2f..%2f..%2fpackage.json', '/%2e%2e/%2e%2e/package.json']) {
  const t = performance.now();
  const r = await fetch(s.url + p, { headers: { accept: 'text/html' } });
  const b = await r.text();
  console.log(p, r.status, (performance.now() - t).toFixed(0), b.slice(0, 60).replace(/\n/g, ' '));
}
await s.close();
