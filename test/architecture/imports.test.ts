// The layering of design.md, checked on the source: a layer imports only layers below it, and no
// module reaches itself again through its imports (type-only and dynamic imports included).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src', import.meta.url));
const LAYERS = ['tensor', 'formats', 'graph', 'runtime', 'models', 'text', 'sampling', 'adapters', 'pipelines', 'workflow', 'server', 'training', 'cli'];

function files(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) files(p, out);
    else if (p.endsWith('.ts') && !p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)[^'"]*?from\s+'(\.[^']+)'|import\(\s*'(\.[^']+)'\s*\)/g)) {
    const spec = m[1] ?? m[2];
    out.push(resolve(dirname(file), spec.replace(/\.js$/, '.ts')));
  }
  return out;
}

const layerOf = (file: string) => relative(SRC, file).split(/[\\/]/)[0];

test('src/ has no import cycle and no layer imports an upper one', () => {
  const all = files(SRC);
  const graph = new Map(all.map((f) => [f, imports(f)]));
  const upward: string[] = [];
  for (const [f, deps] of graph) {
    const from = LAYERS.indexOf(layerOf(f));
    for (const d of deps) {
      const to = LAYERS.indexOf(layerOf(d));
      if (from >= 0 && to > from) upward.push(`${relative(SRC, f)} → ${relative(SRC, d)}`);
    }
  }
  assert.deepEqual(upward, [], 'imports of an upper layer');
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const stack: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].map((x) => relative(SRC, x)).join(' → '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of all) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, [], 'import cycles');
  console.log(`# ${all.length} modules, no cycles, layers respected`);
});
