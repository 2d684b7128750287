// AUTOMATIC1111's prompt syntax (stable-diffusion-webui v1.10.1, modules/prompt_parser.py and
// modules/extra_networks.py), reimplemented to give the same results on the same text:
// emphasis `(x)` `[x]` `(x:w)` and BREAK; prompt editing `[a:b:when]`, alternation `[a|b]`;
// composable `AND` with weights; `<lora:…>` extra networks; `#` comments.
//
// A1111 parses schedules with a lark Earley grammar and falls back to the unchanged prompt when the
// grammar rejects it. The grammar only ever gives one bracket extent per `[` / `(`, so a
// backtracking recursive-descent parser that prefers a bracket construct over reading the bracket
// as a stray character finds the same tree (checked against every public reference case).
import { pyFloat, RE_WS, WB_AFTER, WB_BEFORE } from './py.js';

export type AttentionSegment = [text: string, weight: number];

/** Raised where A1111 raises (e.g. `(word:1.2.3)` → ValueError from `float()`). */
export class PromptSyntaxError extends Error {
  override readonly name = 'ValueError';
}

// ------------------------------------------------------------------------------ attention

const RE_ATTENTION = new RegExp(
  [
    '\\\\\\(', '\\\\\\)', '\\\\\\[', '\\\\\\]', '\\\\\\\\', '\\\\', '\\(', '\\[',
    `:[${RE_WS}]*([+-]?[.\\p{Nd}]+)[${RE_WS}]*\\)`, '\\)', '\\]', '[^\\\\()\\[\\]:]+', ':',
  ].join('|'),
  'gu',
);
const RE_BREAK = new RegExp(`[${RE_WS}]*${WB_BEFORE}BREAK${WB_AFTER}[${RE_WS}]*`, 'u');
const ROUND = 1.1;
const SQUARE = 1 / 1.1;

/**
 * `parse_prompt_attention`: text segments with their emphasis weight. BREAK is `["BREAK", -1]`;
 * unbalanced openers apply to the end; adjacent segments of equal weight are merged.
 */
export function parseAttention(text: string): AttentionSegment[] {
  const res: AttentionSegment[] = [];
  const round: number[] = [];
  const square: number[] = [];
  const multiplyFrom = (start: number, m: number) => {
    for (let p = start; p < res.length; p++) res[p][1] *= m;
  };
  for (const m of text.matchAll(RE_ATTENTION)) {
    const t = m[0];
    const weight = m[1];
    if (t.startsWith('\\')) res.push([t.slice(1), 1.0]);
    else if (t === '(') round.push(res.length);
    else if (t === '[') square.push(res.length);
    else if (weight !== undefined && round.length) {
      let w: number;
      try {
        w = pyFloat(weight);
      } catch (err) {
        throw new PromptSyntaxError((err as Error).message, { cause: err });
      }
      multiplyFrom(round.pop()!, w);
    } else if (t === ')' && round.length) multiplyFrom(round.pop()!, ROUND);
    else if (t === ']' && square.length) multiplyFrom(square.pop()!, SQUARE);
    else {
      t.split(RE_BREAK).forEach((part, i) => {
        if (i > 0) res.push(['BREAK', -1]);
        res.push([part, 1.0]);
      });
    }
  }
  for (const pos of round) multiplyFrom(pos, ROUND);
  for (const pos of square) multiplyFrom(pos, SQUARE);
  if (res.length === 0) res.push(['', 1.0]);
  for (let i = 0; i + 1 < res.length;) {
    if (res[i][1] === res[i + 1][1]) {
      res[i][0] += res[i + 1][0];
      res.splice(i + 1, 1);
    } else i++;
  }
  return res;
}

// ------------------------------------------------------------------------------ schedules

type Node =
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'scheduled'; readonly before: Node[] | null; readonly after: Node[]; readonly number: string; when?: number }
  | { readonly kind: 'alternate'; readonly options: Node[][] };

const WS_AT = new RegExp(`[${RE_WS}]+`, 'uy');
// lark's common.SIGNED_NUMBER, matched the way Python's `re` matches the compiled alternation.
const NUMBER_AT = /[+-]?(?:[0-9]+[eE][+-]?[0-9]+|(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+)/y;

class ScheduleParser {
  constructor(private readonly s: string) {}

  private matchAt(re: RegExp, pos: number): string | undefined {
    re.lastIndex = pos;
    return re.exec(this.s)?.[0];
  }

  /** One `plain` character (or an escape pair) at pos; 0 when the grammar has no terminal for it. */
  private plainLength(pos: number): number {
    const c = this.s[pos];
    if (c === '\\') return pos + 1 < this.s.length && this.s[pos + 1] !== '\n' ? 2 : 0;
    return '[]():|'.includes(c) ? 0 : 1;
  }

  /** `prompt`: elements until a character only an enclosing rule can take. */
  prompt(pos: number): { nodes: Node[]; pos: number } {
    const nodes: Node[] = [];
    let text = '';
    const flush = () => {
      if (text) nodes.push({ kind: 'text', text });
      text = '';
    };
    while (pos < this.s.length) {
      const c = this.s[pos];
      if (c === '[' || c === '(') {
        const el = this.bracket(pos);
        if (!el) break;
        flush();
        nodes.push(...el.nodes);
        pos = el.pos;
        continue;
      }
      const n = this.plainLength(pos);
      if (n === 0) break;
      text += this.s.slice(pos, pos + n);
      pos += n;
    }
    flush();
    return { nodes, pos };
  }

  /** `:` [WHITESPACE] NUMBER [WHITESPACE] `]` starting at the colon; returns the number and the end. */
  private when(pos: number): { number: string; pos: number } | undefined {
    if (this.s[pos] !== ':') return undefined;
    pos++;
    pos += this.matchAt(WS_AT, pos)?.length ?? 0;
    const number = this.matchAt(NUMBER_AT, pos);
    if (!number) return undefined;
    pos += number.length;
    pos += this.matchAt(WS_AT, pos)?.length ?? 0;
    return this.s[pos] === ']' ? { number, pos: pos + 1 } : undefined;
  }

  /** emphasized, scheduled or alternate at an opening bracket, or undefined when none fits. */
  bracket(pos: number): { nodes: Node[]; pos: number } | undefined {
    const open = this.s[pos];
    const first = this.prompt(pos + 1);
    const next = this.s[first.pos];
    if (open === '(') {
      if (next === ')') return { nodes: [{ kind: 'text', text: '(' }, ...first.nodes, { kind: 'text', text: ')' }], pos: first.pos + 1 };
      if (next !== ':') return undefined;
      const second = this.prompt(first.pos + 1);
      if (this.s[second.pos] !== ')') return undefined;
      return {
        nodes: [{ kind: 'text', text: '(' }, ...first.nodes, { kind: 'text', text: ':' }, ...second.nodes, { kind: 'text', text: ')' }],
        pos: second.pos + 1,
      };
    }
    if (next === ']') return { nodes: [{ kind: 'text', text: '[' }, ...first.nodes, { kind: 'text', text: ']' }], pos: first.pos + 1 };
    if (next === '|') {
      const options = [first.nodes];
      let p = first.pos;
      while (this.s[p] === '|') {
        const opt = this.prompt(p + 1);
        options.push(opt.nodes);
        p = opt.pos;
      }
      return this.s[p] === ']' ? { nodes: [{ kind: 'alternate', options }], pos: p + 1 } : undefined;
    }
    if (next !== ':') return undefined;
    const toOnly = this.when(first.pos);
    if (toOnly) return { nodes: [{ kind: 'scheduled', before: null, after: first.nodes, number: toOnly.number }], pos: toOnly.pos };
    const second = this.prompt(first.pos + 1);
    const w = this.when(second.pos);
    if (!w) return undefined;
    return { nodes: [{ kind: 'scheduled', before: first.nodes, after: second.nodes, number: w.number }], pos: w.pos };
  }

  /** `start`: prompt elements and stray `[ ] ( ) :`; undefined when the grammar rejects the text. */
  start(): Node[] | undefined {
    const nodes: Node[] = [];
    let pos = 0;
    while (pos < this.s.length) {
      const c = this.s[pos];
      if (c === '[' || c === '(') {
        const el = this.bracket(pos);
        if (el) {
          nodes.push(...el.nodes);
          pos = el.pos;
          continue;
        }
      }
      if ('[]():'.includes(c)) {
        nodes.push({ kind: 'text', text: c });
        pos++;
        continue;
      }
      const n = this.plainLength(pos);
      if (n === 0) return undefined;
      nodes.push({ kind: 'text', text: this.s.slice(pos, pos + n) });
      pos += n;
    }
    return nodes;
  }
}

export interface ScheduleOptions {
  /** Steps of a hires-fix second pass: switch points are then read on that pass's own timeline. */
  readonly hiresSteps?: number;
  /** A1111's "use old prompt editing timelines" compatibility option. */
  readonly useOldScheduling?: boolean;
}

export type ScheduleEntry = [endAtStep: number, text: string];

function visit(nodes: readonly Node[], f: (n: Node) => void): void {
  for (const n of nodes) {
    f(n);
    if (n.kind === 'scheduled') {
      if (n.before) visit(n.before, f);
      visit(n.after, f);
    } else if (n.kind === 'alternate') n.options.forEach((o) => visit(o, f));
  }
}

function textAt(nodes: readonly Node[], step: number): string {
  let out = '';
  for (const n of nodes) {
    if (n.kind === 'text') out += n.text;
    else if (n.kind === 'scheduled') out += step <= n.when! ? (n.before ? textAt(n.before, step) : '') : textAt(n.after, step);
    else out += textAt(n.options[(step - 1) % n.options.length], step);
  }
  return out;
}

/**
 * `get_learned_conditioning_prompt_schedules` for one prompt: `[end_at_step, text]` pairs, the
 * text shown while the sampler's step counter is ≤ end_at_step.
 */
export function promptSchedule(prompt: string, baseSteps: number, opts: ScheduleOptions = {}): ScheduleEntry[] {
  const hires = opts.hiresSteps !== undefined && !opts.useOldScheduling;
  const steps = hires ? opts.hiresSteps! : baseSteps;
  const intOffset = hires ? baseSteps : 0;
  const fltOffset = hires ? 1.0 : 0;
  const tree = new ScheduleParser(prompt).start();
  if (!tree) return [[steps, prompt]];
  const points = new Set<number>([steps]);
  visit(tree, (n) => {
    if (n.kind === 'alternate') {
      for (let i = 1; i <= steps; i++) points.add(i);
    } else if (n.kind === 'scheduled') {
      let v = Number(n.number);
      if (opts.useOldScheduling) v = v < 1 ? v * steps : v;
      else v = n.number.includes('.') ? (v - fltOffset) * steps : v - intOffset;
      n.when = Math.min(steps, Math.trunc(v));
      if (n.when >= 1) points.add(n.when);
    }
  });
  return [...points].sort((a, b) => a - b).map((t) => [t, textAt(tree, t)]);
}

// ------------------------------------------------------------------------------ AND

const RE_AND = new RegExp(`${WB_BEFORE}AND${WB_AFTER}`, 'u');
const RE_WEIGHT = new RegExp(`^([\\s\\S]*?)(?:[${RE_WS}]*:[${RE_WS}]*([-+]?(?:\\p{Nd}+\\.?|\\p{Nd}*\\.\\p{Nd}+)))?[${RE_WS}]*$`, 'u');

export interface MulticondPrompt {
  /** Per sub-prompt: index into `flat` and its weight. */
  readonly indexes: [index: number, weight: number][];
  /** Distinct sub-prompt texts. */
  readonly flat: string[];
}

/** `get_multicond_prompt_list` for one prompt: the `AND` split, each part's trailing `:weight` taken off. */
export function splitAnd(prompt: string): MulticondPrompt {
  const flat: string[] = [];
  const indexes: [number, number][] = [];
  for (const sub of prompt.split(RE_AND)) {
    const m = RE_WEIGHT.exec(sub);
    const text = m ? m[1] : sub;
    const weight = m && m[2] !== undefined ? pyFloat(m[2]) : 1.0;
    let index = flat.indexOf(text);
    if (index < 0) index = flat.push(text) - 1;
    indexes.push([index, weight]);
  }
  return { indexes, flat };
}

// ------------------------------------------------------------------------------ comments

/** `# comments` as A1111's prompt-comments option (on by default) strips them: whole lines, then line ends. */
export function stripComments(text: string): string {
  return text.replace(/(^|\n)#[^\n]*(\n|$)/g, '\n').replace(/#[^\n]*(\n|$)/g, '\n');
}

