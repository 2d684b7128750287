// Dynamic prompts (the sd-dynamic-prompts extension's random mode, and ComfyUI's `{a|b}`):
// `{red|green|blue}` picks one, `{2$$a|b|c}` two different ones joined by ", ", `{1-3$$…}` a count
// in a range, `{2$$ and $$a|b|c}` a custom joiner, `{0.5::a|2::b}` weighted options, and
// `__name__` a line of the wildcard file name.txt (subfolders as `__folder/name__`). Choices come
// from a PRNG seeded with the image seed, so a seed always gives the same prompt; the resolved text
// is what gets encoded and what the image metadata records.
import { readFileSync, statSync } from 'node:fs';
import { resolve, sep } from 'node:path';

export interface DynamicPromptOptions {
  /** Folders searched for `name.txt` (first match wins). */
  readonly wildcardDirs?: readonly string[];
  /** Nesting limit for wildcards that expand to more syntax. */
  readonly maxDepth?: number;
}

/** mulberry32 over a 53-bit seed folded to 32 bits: small, fast, and the same on every platform. */
function rng(seed: number): () => number {
  let a = (Math.floor(seed) ^ Math.floor(seed / 2 ** 32)) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class DynamicPromptError extends Error {}

/** Index of the `}` closing the `{` at `open`, honouring nesting and `\` escapes; -1 when unclosed. */
function closing(s: string, open: number): number {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    if (s[i] === '\\') i++;
    else if (s[i] === '{') depth++;
    else if (s[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

/** Splits on top-level `|` (not inside nested braces, not escaped). */
function splitOptions(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[++i];
      continue;
    }
    if (c === '{') depth++;
    else if (c === '}') depth--;
    if (c === '|' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

class Resolver {
  private readonly random: () => number;
  private readonly cache = new Map<string, string[]>();

  constructor(seed: number, private readonly opts: DynamicPromptOptions) {
    this.random = rng(seed);
  }

  private wildcard(name: string): string[] {
    const hit = this.cache.get(name);
    if (hit) return hit;
    for (const dir of this.opts.wildcardDirs ?? []) {
      const base = resolve(dir);
      const file = resolve(base, `${name}.txt`);
      if (!file.startsWith(base + sep)) continue;
      try {
        if (!statSync(file).isFile()) continue;
      } catch {
        continue;
      }
      const lines = readFileSync(file, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
      this.cache.set(name, lines);
      return lines;
    }
    const where = this.opts.wildcardDirs?.length ? `in ${this.opts.wildcardDirs.join(', ')}` : '(no wildcards folder given: --wildcards DIR)';
    throw new DynamicPromptError(`wildcard __${name}__: no file ${name}.txt ${where}`);
  }

  private pick<T>(items: readonly T[], weights?: readonly number[]): T {
    if (!weights) return items[Math.floor(this.random() * items.length)];
    const total = weights.reduce((a, b) => a + b, 0);
    let r = this.random() * total;
    for (let i = 0; i < items.length; i++) {
      r -= weights[i];
      if (r < 0) return items[i];
    }
    return items[items.length - 1];
  }

  private variants(body: string, depth: number): string {
    let count = 1;
    let max = 1;
    let joiner = ', ';
    let rest = body;
    const m = /^(\d+)?(?:-(\d+)?)?\$\$/.exec(rest);
    if (m) {
      const lo = m[1] !== undefined ? Number(m[1]) : 1;
      const hi = m[2] !== undefined ? Number(m[2]) : m[0].includes('-') ? Infinity : lo;
      count = lo;
      max = hi;
      rest = rest.slice(m[0].length);
      const sep2 = rest.indexOf('$$');
      if (sep2 >= 0 && !rest.slice(0, sep2).includes('|')) {
        joiner = rest.slice(0, sep2);
        rest = rest.slice(sep2 + 2);
      }
    }
    const options = splitOptions(rest).map((o) => {
      const w = /^\s*(\d+(?:\.\d+)?|\.\d+)::/.exec(o);
      return w ? { text: o.slice(w[0].length), weight: Number(w[1]) } : { text: o, weight: 1 };
    });
    const n = Math.min(options.length, count + (max > count ? Math.floor(this.random() * (Math.min(max, options.length) - count + 1)) : 0));
    const pool = [...options];
    const chosen: string[] = [];
    for (let i = 0; i < n; i++) {
      const o = this.pick(pool, pool.map((p) => p.weight));
      pool.splice(pool.indexOf(o), 1);
      chosen.push(this.expand(o.text, depth + 1));
    }
    return chosen.join(joiner);
  }

  expand(text: string, depth = 0): string {
    if (depth > (this.opts.maxDepth ?? 20)) throw new DynamicPromptError('dynamic prompt nests too deep (a wildcard that includes itself?)');
    let out = '';
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === '\\' && (text[i + 1] === '{' || text[i + 1] === '}' || text[i + 1] === '|')) {
        out += text[++i];
      } else if (c === '{') {
        const end = closing(text, i);
        // An unclosed brace stays text, as the prompt syntaxes downstream read it.
        if (end < 0) {
          out += c;
          continue;
        }
        out += this.variants(text.slice(i + 1, end), depth);
        i = end;
      } else if (c === '_' && text.startsWith('__', i)) {
        const end = text.indexOf('__', i + 2);
        const name = end > i + 2 ? text.slice(i + 2, end) : '';
        if (name && /^[\w\-./ ]+$/u.test(name) && !name.includes('..')) {
          out += this.expand(this.pick(this.wildcard(name)), depth + 1);
          i = end + 1;
        } else out += c;
      } else out += c;
    }
    return out;
  }
}

/** Whether a prompt uses any dynamic-prompt syntax (so plain prompts are passed through untouched). */
export function hasDynamicSyntax(text: string): boolean {
  return /[{]|__[\w\-./ ]+__/u.test(text);
}

/** Resolves every `{…}` and `__wildcard__` of a prompt, reproducibly for a seed. */
export function resolveDynamicPrompt(text: string, seed: number, opts: DynamicPromptOptions = {}): string {
  if (!hasDynamicSyntax(text)) return text;
  return new Resolver(seed, opts).expand(text);
}
