// Ctrl+↑/↓ on the prompt as A1111 does it: the selection (or the word under the caret) becomes
// `(text:1.1)`, and an existing `(text:w)` around it is stepped by ±0.1; at weight 1 the parentheses go.

export interface Edit { text: string; start: number; end: number }

const DELIMS = /[\s,.()[\]{}<>|:]/;

/** The word around the caret when nothing is selected (A1111 selects it the same way). */
function wordAt(text: string, pos: number): [number, number] {
  let a = pos;
  let b = pos;
  while (a > 0 && !DELIMS.test(text[a - 1])) a--;
  while (b < text.length && !DELIMS.test(text[b])) b++;
  return [a, b];
}

const fmt = (w: number) => String(Number(w.toFixed(2)));

export function editWeight(text: string, start: number, end: number, delta: number): Edit {
  if (start === end) [start, end] = wordAt(text, start);
  if (start === end) return { text, start, end };
  // already weighted: "(" before the selection and ":w)" after it
  const after = /^:(-?\d+(?:\.\d+)?)\)/.exec(text.slice(end));
  if (text[start - 1] === '(' && after) {
    const w = Number(after[1]) + delta;
    const inner = text.slice(start, end);
    if (Math.abs(w - 1) < 1e-9) {
      const out = text.slice(0, start - 1) + inner + text.slice(end + after[0].length);
      return { text: out, start: start - 1, end: end - 1 };
    }
    const out = `${text.slice(0, end)}:${fmt(w)})${text.slice(end + after[0].length)}`;
    return { text: out, start, end };
  }
  const inner = text.slice(start, end);
  const w = 1 + delta;
  const out = `${text.slice(0, start)}(${inner}:${fmt(w)})${text.slice(end)}`;
  return { text: out, start: start + 1, end: end + 1 };
}
