// ComfyUI's prompt weighting syntax (comfy/sd1_clip.py): only `( )` and `(text:w)`. Nesting
// multiplies by 1.1 per level, but an explicit `:w` REPLACES the weight it is given instead of
// multiplying it (`((x:2))` is 2.0 here, 2.2 in A1111). `\(` and `\)` are escapes; everything else
// (`[ ]`, BREAK, AND, `|`, `<lora:…>`) is plain text.
import { pyFloat } from './py.js';

export type WeightedSegment = [text: string, weight: number];

const ESC_CLOSE = '\0\u0001';
const ESC_OPEN = '\0\u0002';

/** Hides `\(` `\)` from the parenthesis parser behind two-character markers. */
export function escapeImportant(text: string): string {
  return text.replaceAll('\\)', ESC_CLOSE).replaceAll('\\(', ESC_OPEN);
}

export function unescapeImportant(text: string): string {
  return text.replaceAll(ESC_CLOSE, ')').replaceAll(ESC_OPEN, '(');
}

/** Splits on top-level parenthesis groups: `"a (b (c)) d"` → `["a ", "(b (c))", " d"]`. */
export function parseParentheses(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of text) {
    if (ch === '(') {
      if (depth === 0) {
        if (cur) out.push(cur);
        cur = '(';
      } else cur += ch;
      depth++;
    } else if (ch === ')') {
      depth--;
      if (depth === 0) {
        out.push(cur + ')');
        cur = '';
      } else cur += ch;
    } else cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

/** `token_weights`: segments of the escaped text with their weights (markers still in the text). */
export function tokenWeights(text: string, current: number): WeightedSegment[] {
  const out: WeightedSegment[] = [];
  for (let x of parseParentheses(text)) {
    let weight = current;
    if (x.length >= 2 && x.startsWith('(') && x.endsWith(')')) {
      x = x.slice(1, -1);
      const colon = x.lastIndexOf(':');
      weight *= 1.1;
      if (colon > 0) {
        try {
          weight = pyFloat(x.slice(colon + 1));
          x = x.slice(0, colon);
        } catch {
          // ComfyUI keeps the text and the ×1.1 when the number does not parse.
        }
      }
      out.push(...tokenWeights(x, weight));
    } else out.push([x, current]);
  }
  return out;
}

/** What ComfyUI tokenizes: weighted segments with the escapes turned back into parentheses. */
export function parseComfyWeights(prompt: string): WeightedSegment[] {
  return tokenWeights(escapeImportant(prompt), 1.0).map(([t, w]) => [unescapeImportant(t), w]);
}
