// Python's text forms of values, because ComfyUI's validation messages print values with str()/repr()
// and clients compare those messages (`Value 150.0 bigger than max of 100.0`).
import { pyFloatRepr } from '../text/py.js';

/** repr() of a float: always a decimal point or an exponent, exponents with two digits at least. */
export const pyFloat = pyFloatRepr;

/** repr() of a str: single quotes unless the text holds one and no double quote. */
export function pyStrRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of s) {
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else out += ch;
  }
  return quote + out + quote;
}

/** A JSON value as Python would hold it, for repr(). `floats` says whether a number is a float. */
export function pyRepr(v: unknown, isFloat = false): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return isFloat ? pyFloat(v) : Number.isInteger(v) ? String(v) : pyFloat(v);
  if (typeof v === 'string') return pyStrRepr(v);
  if (Array.isArray(v)) return `[${v.map((x) => pyRepr(x)).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v as object).map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`).join(', ')}}`;
  return String(v);
}

/** str(): as repr() except that a str prints bare. */
export function pyStr(v: unknown, isFloat = false): string {
  return typeof v === 'string' ? v : pyRepr(v, isFloat);
}

/** Python's type name of a JSON value, for TypeError messages. */
export function pyTypeName(v: unknown): string {
  if (v === null || v === undefined) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'string') return 'str';
  if (Array.isArray(v)) return 'list';
  return 'dict';
}

export class PyConversionError extends Error {}

/** int(v) with Python's rules (int("5") = 5, int(5.7) = 5, int("5.7") fails). */
export function pyInt(v: unknown): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') {
    if (Number.isNaN(v)) throw new PyConversionError('cannot convert float NaN to integer');
    if (!Number.isFinite(v)) throw new PyConversionError('cannot convert float infinity to integer');
    return Math.trunc(v);
  }
  if (typeof v === 'string') {
    const t = v.trim();
    if (/^[+-]?\d+(_\d+)*$/.test(t)) return Number(t.replace(/_/g, ''));
    throw new PyConversionError(`invalid literal for int() with base 10: ${pyStrRepr(v)}`);
  }
  throw new PyConversionError(`int() argument must be a string, a bytes-like object or a real number, not '${pyTypeName(v)}'`);
}

/** float(v) with Python's rules. */
export function pyFloatOf(v: unknown): number {
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const t = v.trim().replace(/_/g, '');
    const special = /^([+-]?)(inf|infinity|nan)$/i.exec(t);
    if (special) return special[2].toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity;
    if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t)) return Number(t);
    throw new PyConversionError(`could not convert string to float: ${pyStrRepr(v)}`);
  }
  throw new PyConversionError(`float() argument must be a string or a real number, not '${pyTypeName(v)}'`);
}

/** bool(v): Python truthiness ("false" is true). */
export function pyBool(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v as object).length > 0;
  return true;
}
