// A1111's "parameters" text (the infotext): prompt lines, an optional "Negative prompt:" part, and a
// last line of `Key: value` pairs where a value containing commas is JSON-quoted.

export interface Infotext {
  prompt: string;
  negativePrompt: string;
  params: Record<string, string>;
}

// key: a word then words, spaces, dashes, slashes; value: a JSON string or everything up to the comma
const PARAM = /\s*([\w][\w \-/]*):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)/g;

function parseParamLine(line: string): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  let n = 0;
  for (const m of line.matchAll(PARAM)) {
    let v = m[2].trim();
    if (v.startsWith('"')) {
      try { v = JSON.parse(v) as string; } catch { /* keep it quoted, as A1111 does on bad JSON */ }
    }
    out[m[1].trim()] = v;
    n++;
  }
  // a prompt line with one colon ("style: photo") is not a parameter line; A1111 wants 3+ pairs
  return n >= 3 ? out : undefined;
}

export function parseInfotext(text: string): Infotext {
  const lines = text.trim().split('\n');
  const params = parseParamLine(lines[lines.length - 1] ?? '');
  if (params) lines.pop();
  const prompt: string[] = [];
  const negative: string[] = [];
  let inNegative = false;
  for (const line of lines) {
    if (!inNegative && line.startsWith('Negative prompt:')) {
      inNegative = true;
      negative.push(line.slice('Negative prompt:'.length).trimStart());
    } else (inNegative ? negative : prompt).push(line);
  }
  return { prompt: prompt.join('\n').trim(), negativePrompt: negative.join('\n').trim(), params: params ?? {} };
}

const quote = (v: string) => (/[,:\n"]/.test(v) ? JSON.stringify(v) : v);

export function formatInfotext(info: Infotext): string {
  const pairs = Object.entries(info.params).filter(([, v]) => v !== '').map(([k, v]) => `${k}: ${quote(v)}`).join(', ');
  return [info.prompt, info.negativePrompt ? `Negative prompt: ${info.negativePrompt}` : '', pairs].filter(Boolean).join('\n');
}
