// Small pieces of Python semantics the prompt syntaxes depend on: the reference implementations use
// Python's `re` (Unicode \s, \d, \w, \b) and `float()`, and a prompt that parses differently here
// would condition differently.
import { PY_WHITESPACE_CLASS } from './text-clean.js';

/** Character-class body equal to Python `re`'s `\s` on str (str.isspace, which adds U+001C..U+001F). */
export const RE_WS = `${PY_WHITESPACE_CLASS}\\x1c-\\x1f`;
/** Character-class body close to Python `re`'s `\w` on str (str.isalnum() or '_'). */
export const RE_WORD = '\\p{L}\\p{N}_';
/** `\b` before / after a literal word, as Python's Unicode-aware word boundary. */
export const WB_BEFORE = `(?<![${RE_WORD}])`;
export const WB_AFTER = `(?![${RE_WORD}])`;

const ND = /\p{Nd}/u;

/** ASCII value of a Unicode decimal digit: Unicode keeps every Nd run as 0..9 in code-point order. */
function digitValue(ch: string): string {
  const cp = ch.codePointAt(0)!;
  if (cp >= 0x30 && cp <= 0x39) return ch;
  let start = cp;
  while (start > 0 && ND.test(String.fromCodePoint(start - 1))) start--;
  return String((cp - start) % 10);
}

const PY_FLOAT = /^[+-]?(?:(?:\d(?:_?\d)*)?\.?\d(?:_?\d)*|\d(?:_?\d)*\.)(?:[eE][+-]?\d(?:_?\d)*)?$/;
const PY_SPECIAL = /^([+-]?)(inf|infinity|nan)$/i;
const STRIP = new RegExp(`^[${RE_WS}]+|[${RE_WS}]+$`, 'gu');

export class PyValueError extends Error {
  override readonly name = 'ValueError';
}

/** Python's `float(str)`: surrounding whitespace, `_` between digits, inf/nan, any Unicode decimal digits. */
export function pyFloat(text: string): number {
  const s = [...text.replace(STRIP, '')].map((c) => (ND.test(c) ? digitValue(c) : c)).join('');
  const special = PY_SPECIAL.exec(s);
  if (special) {
    const v = special[2].toLowerCase() === 'nan' ? NaN : Infinity;
    return special[1] === '-' ? -v : v;
  }
  if (!PY_FLOAT.test(s)) throw new PyValueError(`could not convert string to float: '${text}'`);
  return Number(s.replaceAll('_', ''));
}

/** Python's `repr()`/`str()` of a float: always a point or an exponent (`7.0`, `5e-05`), as infotexts and messages print them. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  const abs = Math.abs(x);
  if (abs !== 0 && (abs >= 1e16 || abs < 1e-4)) {
    const [mant, exp] = x.toExponential().split('e');
    const e = Number(exp);
    return `${mant}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  const s = String(x);
  return Number.isInteger(x) ? `${s}.0` : s;
}
