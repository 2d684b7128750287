// `latentkit prompt TEXT`: how a prompt will be read — A1111's token counter ("42/75"), the
// emphasis weights, the prompt-editing schedule and the 77-token chunks — without loading a model.
import { Command, Option } from 'commander';
import { chunkA1111, chunkComfy } from '../text/chunking.js';
import { ClipTokenizer } from '../text/clip-tokenizer.js';
import { parseExtraNetworks } from '../text/extra-networks.js';
import { countTokens } from '../text/token-count.js';
import { parseAttention, promptSchedule, splitAnd } from '../text/prompt-a1111.js';
import { escapeImportant, tokenWeights } from '../text/prompt-comfy.js';
import { intOption } from './options.js';

interface PromptFlags {
  syntax: 'a1111' | 'comfy';
  raw?: boolean;
  json?: boolean;
  steps: number;
  vocab?: string;
}

interface FieldError { error: string; message: string }

function attempt<T>(f: () => T): T | FieldError {
  try {
    return f();
  } catch (err) {
    return { error: (err as Error).name === 'Error' ? 'Error' : (err as Error).name, message: (err as Error).message };
  }
}

const isError = (v: unknown): v is FieldError => typeof v === 'object' && v !== null && 'error' in v && 'message' in v;

const NEG_ZERO = '\u0000-0.0\u0000';

/** JSON has no Infinity / NaN (written as strings, as the reference vectors do) and JSON.stringify loses −0. */
function jsonNumber(_key: string, v: unknown): unknown {
  if (typeof v !== 'number') return v;
  if (Object.is(v, -0)) return NEG_ZERO;
  return Number.isFinite(v) ? v : String(v);
}

export function promptJson(obj: unknown): string {
  return JSON.stringify(obj, jsonNumber).replaceAll(JSON.stringify(NEG_ZERO), '-0.0');
}

/** The `--json` object for a prompt (exported for tests and other front-ends). */
export function describePrompt(tokenizer: ClipTokenizer, text: string, opts: { syntax?: 'a1111' | 'comfy'; raw?: boolean; steps?: number } = {}): Record<string, unknown> {
  if (opts.raw) return { ids: tokenizer.encode(text) };
  if (opts.syntax === 'comfy') {
    return {
      weights: tokenWeights(escapeImportant(text), 1.0),
      chunks: chunkComfy(tokenizer, text).map((b) => ({ tokens: b.map(([t]) => t as number), multipliers: b.map(([, w]) => w) })),
    };
  }
  const chunked = attempt(() => chunkA1111(tokenizer, text));
  return {
    attention: attempt(() => parseAttention(text)),
    schedule: promptSchedule(text, opts.steps ?? 20),
    chunks: isError(chunked) ? chunked : chunked.chunks.map((c) => ({ tokens: c.tokens, multipliers: c.multipliers })),
    tokenCount: isError(chunked) ? null : chunked.tokenCount,
  };
}

const fmtWeight = (w: number) => (Number.isInteger(w) ? w.toFixed(1) : String(Number(w.toPrecision(6))));

function printText(tokenizer: ClipTokenizer, text: string, flags: PromptFlags): void {
  const out: string[] = [];
  if (flags.raw) {
    const ids = tokenizer.encode(text);
    out.push(`${ids.length} tokens: ${ids.join(' ')}`);
    out.push(ids.map((id) => tokenizer.tokenString(id)).join(' '));
  } else if (flags.syntax === 'comfy') {
    const batches = chunkComfy(tokenizer, text);
    const n = batches.reduce((a, b) => a + b.filter(([, , id]) => id > 0).length, 0);
    out.push(`tokens: ${n}/${75 * batches.length} (${batches.length} chunk${batches.length > 1 ? 's' : ''}, ComfyUI syntax)`);
    out.push('weights:');
    for (const [t, w] of tokenWeights(escapeImportant(text), 1.0)) out.push(`  ${fmtWeight(w).padStart(6)}  ${JSON.stringify(t.replaceAll('\0\u0001', ')').replaceAll('\0\u0002', '('))}`);
  } else {
    const { prompt: cleaned, networks } = parseExtraNetworks(text);
    const { indexes, flat } = splitAnd(cleaned);
    const perPart = flat.map((p) => ({ p, schedule: promptSchedule(p, flags.steps) }));
    const { count, max } = countTokens(tokenizer, text, flags.steps);
    out.push(`tokens: ${count}/${max}`);
    const nets = Object.entries(networks);
    if (nets.length) out.push(`extra networks: ${nets.map(([k, v]) => v.map((p) => `<${k}:${p.items.join(':')}>`).join(' ')).join(' ')}`);
    if (indexes.length > 1) out.push(`AND: ${indexes.map(([i, w]) => `${JSON.stringify(flat[i])} ×${fmtWeight(w)}`).join(', ')}`);
    for (const { p, schedule } of perPart) {
      if (indexes.length > 1) out.push(`part ${JSON.stringify(p)}:`);
      const last = schedule[schedule.length - 1][1];
      out.push(schedule.length > 1 ? `attention (last schedule entry):` : 'attention:');
      for (const [t, w] of parseAttention(last)) out.push(`  ${(t === 'BREAK' && w === -1 ? 'BREAK' : fmtWeight(w)).padStart(6)}  ${t === 'BREAK' && w === -1 ? '' : JSON.stringify(t)}`);
      if (schedule.length > 1) {
        out.push(`schedule (${flags.steps} steps):`);
        let from = 1;
        for (const [end, t] of schedule) {
          const start = from;
          from = end + 1;
          if (end < start) continue;
          out.push(`  steps ${start === end ? start : `${start}-${end}`}: ${JSON.stringify(t)}`);
        }
      }
      const { chunks } = chunkA1111(tokenizer, last);
      chunks.forEach((c, i) => {
        const words = c.tokens.slice(1, 76).map((id, k) => ({ id, m: c.multipliers[k + 1] })).filter(({ id }) => id !== tokenizer.eos);
        out.push(`chunk ${i + 1}: ${words.length} tokens: ${words.map(({ id, m }) => `${tokenizer.tokenString(id).replace('</w>', '')}${m === 1 ? '' : `(${fmtWeight(m)})`}`).join(' ')}`);
      });
    }
  }
  console.log(out.join('\n'));
}

// One process may describe many prompts (tests, a server); the vocabulary is read once per path.
const tokenizers = new Map<string, Promise<ClipTokenizer>>();

async function promptCommand(text: string, flags: PromptFlags): Promise<void> {
  const key = flags.vocab ?? '';
  let loading = tokenizers.get(key);
  if (!loading) {
    loading = ClipTokenizer.load({ path: flags.vocab, hint: 'pass --vocab DIR (a folder with vocab.json and merges.txt, or bpe_simple_vocab_16e6.txt.gz)' });
    tokenizers.set(key, loading);
    loading.catch(() => tokenizers.delete(key));
  }
  const tokenizer = await loading;
  if (flags.json) {
    const obj = describePrompt(tokenizer, text, flags);
    console.log(promptJson(obj));
    const err = Object.values(obj).find(isError);
    if (err) process.exitCode = 1;
    return;
  }
  printText(tokenizer, text, flags);
}

export function registerPrompt(program: Command): void {
  program.command('prompt')
    .argument('<text>', 'the prompt')
    .description('show how a prompt is read: token count, weights, schedule and chunks (no model needed)')
    .addOption(new Option('--syntax <name>', 'prompt syntax').choices(['a1111', 'comfy']).default('a1111'))
    .option('--raw', 'plain BPE ids, no syntax, no BOS/EOS')
    .option('--json', 'print one JSON object')
    .option('--steps <n>', 'sampling steps for the prompt-editing schedule', intOption('--steps', 1, 10000), 20)
    .option('--vocab <dir>', 'CLIP vocabulary: folder with vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz')
    .action(promptCommand);
}
