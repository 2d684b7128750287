// Text normalisation in front of the CLIP tokenizer, matching what openai/CLIP's simple_tokenizer.py
// does before its regex: ftfy.fix_text (ftfy 6.3.1 defaults), html.unescape twice, strip, collapse
// whitespace, lower-case. Every step mirrors the Python behaviour it replaces, because a single
// differing character changes the token ids and therefore the image.
//
// ftfy coverage. Implemented exactly: HTML entity decoding (ftfy's own rules, including the
// "not when the line so far contains '<'" switch that stays off for the following lines),
// C1 controls as Windows-1252, Latin ligatures, full/half-width forms, curly quotes, line breaks,
// lone surrogates, ANSI terminal escapes, invisible control characters, NFC, and the
// repeat-until-stable loop.
// Mojibake repair covers UTF-8 that was decoded as Latin-1 or Windows-1252 (the common case:
// "cafÃ©", "â€œ…â€\x9d"), for the whole line or for runs inside an otherwise correct line, repeated
// for double encoding. Not covered: ftfy's badness heuristic (we accept a re-decoding when the
// bytes are valid UTF-8 and the result passes a simpler plausibility test, see `plausible`), the other
// single-byte code pages it tries (windows-1250/1251/1253/1254/1257, iso-8859-2, macroman, cp437),
// restoring spaces that stood for U+00A0, U+FFFD-damaged ("lossy") sequences, and CESU-8 /
// Java-style UTF-8. Prompts with those artefacts may tokenize differently from openai's.

import { FTFY_UPPERCASE_ENTITY_NAMES, HTML5_ENTITIES_PACKED } from './html-entities.js';

// ---------------------------------------------------------------- character classes

// What the `regex` module's \s matches (Unicode White_Space). JavaScript's \s differs: it adds
// U+FEFF and lacks U+0085.
const PY_REGEX_WS = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
// str.strip() uses str.isspace(), which also counts the information separators U+001C..U+001F.
const PY_STR_WS = PY_REGEX_WS + '\\x1c-\\x1f';

/** Character-class body (for use inside `[...]`) equal to Python `regex`'s `\s`. */
export const PY_WHITESPACE_CLASS = PY_REGEX_WS;

const WS_RUN = new RegExp(`[${PY_REGEX_WS}]+`, 'g');
const STRIP = new RegExp(`^[${PY_STR_WS}]+|[${PY_STR_WS}]+$`, 'g');

/** Python's `str.strip()` with no argument. */
export function pyStrip(s: string): string {
  return s.replace(STRIP, '');
}

/** openai's `whitespace_clean`: every whitespace run becomes one space, then strip. */
export function whitespaceClean(s: string): string {
  return pyStrip(s.replace(WS_RUN, ' '));
}

// ---------------------------------------------------------------- HTML entities

interface EntityTables {
  /** html.entities.html5: names with and without ';' (legacy forms). */
  html5: Map<string, string>;
  /** ftfy's table: '&name;' for the ';' names, plus the all-caps variants it accepts. */
  ftfy: Map<string, string>;
}

let entityTables: EntityTables | undefined;

function entities(): EntityTables {
  if (entityTables) return entityTables;
  const html5 = new Map<string, string>();
  for (const item of HTML5_ENTITIES_PACKED.split(' ')) {
    if (!item) continue;
    const eq = item.lastIndexOf('=');
    const cps = item.slice(eq + 1).split('+').map((h) => parseInt(h, 16));
    html5.set(item.slice(0, eq), String.fromCodePoint(...cps));
  }
  const ftfy = new Map<string, string>();
  for (const [name, value] of html5) if (name.endsWith(';')) ftfy.set(`&${name}`, value);
  for (const name of FTFY_UPPERCASE_ENTITY_NAMES.split(' ')) {
    if (!name) continue;
    ftfy.set(`&${name.toUpperCase()};`, html5.get(`${name};`)!.toUpperCase());
  }
  entityTables = { html5, ftfy };
  return entityTables;
}

// Bytes 0x80..0x9F in Windows-1252, the five unassigned ones kept as C1 controls: both Python's
// html._invalid_charrefs and ftfy's "sloppy-windows-1252". Spelled out because Node 20's
// TextDecoder('windows-1252') is broken (it returns an empty string for these bytes).
const CP1252_HIGH: string[] = (
  '20ac 0081 201a 0192 201e 2026 2020 2021 02c6 2030 0160 2039 0152 008d 017d 008f ' +
  '0090 2018 2019 201c 201d 2022 2013 2014 02dc 2122 0161 203a 0153 009d 017e 0178'
).split(' ').map((h) => String.fromCharCode(parseInt(h, 16)));

function isInvalidCodepoint(n: number): boolean {
  // html._invalid_codepoints: these decode to nothing instead of a character.
  return (n >= 0x1 && n <= 0x8) || n === 0xb || (n >= 0xe && n <= 0x1f) || (n >= 0x7f && n <= 0x9f) ||
    (n >= 0xfdd0 && n <= 0xfdef) || (n & 0xfffe) === 0xfffe;
}

function numericCharref(digits: string, hex: boolean): string {
  const num = hex ? parseInt(digits, 16) : parseInt(digits, 10);
  if (num === 0) return '\ufffd';
  if (num === 0x0d) return '\r';
  if (num >= 0x80 && num <= 0x9f) return CP1252_HIGH[num - 0x80];
  if ((num >= 0xd800 && num <= 0xdfff) || num > 0x10ffff) return '\ufffd';
  if (isInvalidCodepoint(num)) return '';
  return String.fromCodePoint(num);
}

// Python's html module pattern; `u` makes {1,32} count code points as Python does.
const CHARREF = /&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/gu;

/** Python's `html.unescape`. */
export function pyHtmlUnescape(s: string): string {
  if (!s.includes('&')) return s;
  const { html5 } = entities();
  return s.replace(CHARREF, (_m, ref: string) => {
    if (ref[0] === '#') {
      const hex = ref[1] === 'x' || ref[1] === 'X';
      return numericCharref(ref.slice(hex ? 2 : 1).replace(/;$/, ''), hex);
    }
    const whole = html5.get(ref);
    if (whole !== undefined) return whole;
    // Longest legacy (semicolon-less) name that prefixes the reference, as the HTML spec says.
    for (let x = ref.length - 1; x > 1; x--) {
      const v = html5.get(ref.slice(0, x));
      if (v !== undefined) return v + ref.slice(x);
    }
    return '&' + ref;
  });
}

const FTFY_ENTITY = /&#?[0-9A-Za-z]{1,24};/g;

/** ftfy's `unescape_html`: only semicolon-terminated references, plus some all-caps names. */
export function ftfyUnescapeHtml(s: string): string {
  if (!s.includes('&')) return s;
  const { ftfy } = entities();
  return s.replace(FTFY_ENTITY, (m) => {
    const v = ftfy.get(m);
    if (v !== undefined) return v;
    if (m.startsWith('&#')) {
      const u = pyHtmlUnescape(m);
      // A reference only partly consumed is not one ftfy trusts.
      return u.includes(';') ? m : u;
    }
    return m;
  });
}

// ---------------------------------------------------------------- single-byte encodings

const CP1252_ENCODE = new Map<number, number>();
for (let b = 0; b < 256; b++) {
  const ch = b >= 0x80 && b <= 0x9f ? CP1252_HIGH[b - 0x80] : String.fromCharCode(b);
  CP1252_ENCODE.set(ch.codePointAt(0)!, b);
}
// In ftfy's sloppy codecs byte 0x1A stands for U+FFFD, so a literal U+001A rules the codec out.
CP1252_ENCODE.delete(0x1a);

type ByteEncoder = (cp: number) => number | undefined;
const latin1: ByteEncoder = (cp) => (cp <= 0xff ? cp : undefined);
const cp1252: ByteEncoder = (cp) => CP1252_ENCODE.get(cp);

function encodeBytes(text: string, enc: ByteEncoder): Uint8Array | null {
  const out = new Uint8Array(text.length);
  let n = 0;
  for (const ch of text) {
    const b = enc(ch.codePointAt(0)!);
    if (b === undefined) return null;
    out[n++] = b;
  }
  return out.subarray(0, n);
}

// ignoreBOM: Python keeps a decoded EF BB BF as U+FEFF, so we must not swallow it.
const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8Strict(bytes: Uint8Array): string | null {
  try {
    return UTF8_STRICT.decode(bytes);
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- mojibake

// UTF-8 lead and continuation bytes as the characters Latin-1 / Windows-1252 turn them into.
function byteClass(lo: number, hi: number): string {
  let s = '';
  for (const [cp, b] of CP1252_ENCODE) if (b >= lo && b <= hi) s += String.fromCodePoint(cp);
  for (let b = lo; b <= hi; b++) if (b >= 0x80 && b <= 0x9f) s += String.fromCharCode(b);
  return '[' + [...new Set(s)].map((c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0')).join('') + ']';
}
const CONT = byteClass(0x80, 0xbf);
const UTF8_RUN = new RegExp(
  `(?<!${CONT})(?:${byteClass(0xc2, 0xdf)}${CONT}|${byteClass(0xe0, 0xef)}${CONT}{2}|${byteClass(0xf0, 0xf4)}${CONT}{3})+`,
  'g',
);
const C1 = /[\x80-\x9f]/g;
// eslint-disable-next-line no-control-regex
const NON_ASCII = /[^\x00-\x7f]/;

// Our stand-in for ftfy's badness heuristic. Two Latin-1 characters form valid UTF-8 by accident
// easily ("CAFÉ…" would become "cafʌ"), three or four hardly ever. So a re-decoding is accepted
// only if every character that came from a 2-byte sequence is one that mojibake usually hides:
// Latin-1 / Latin Extended-A, or a Greek, Cyrillic, Hebrew or Arabic letter (not IPA, modifier
// letters, combining marks, Armenian, Syriac or symbols).
const PLAUSIBLE_2BYTE = /^[\u00a0-\u017f]$|^(?=[\u0370-\u052f\u0590-\u06ff])\p{L}$/u;

function plausible(decoded: string): boolean {
  for (const ch of decoded) {
    const cp = ch.codePointAt(0)!;
    if (cp >= 0x80 && cp < 0x800 && !PLAUSIBLE_2BYTE.test(ch)) return false;
  }
  return true;
}

function redecode(text: string): string | null {
  for (const enc of [latin1, cp1252]) {
    const bytes = encodeBytes(text, enc);
    if (!bytes) continue;
    const fixed = decodeUtf8Strict(bytes);
    if (fixed !== null) return plausible(fixed) ? fixed : null;
  }
  return null;
}

function fixEncodingStep(text: string): string {
  if (!NON_ASCII.test(text)) return text;
  const whole = redecode(text);
  if (whole !== null) return whole;
  // Mojibake embedded in otherwise correct text (strings concatenated from different sources).
  const runs = text.replace(UTF8_RUN, (run) => (run.length < text.length ? redecode(run) ?? run : run));
  if (runs !== text) return runs;
  return text.replace(C1, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80]);
}

/** ftfy's `fix_encoding` (see the coverage note at the top of this file). */
export function fixEncoding(text: string): string {
  for (;;) {
    const next = fixEncodingStep(text);
    if (next === text) return text;
    text = next;
  }
}

// ---------------------------------------------------------------- the character-level fixes

// Latin ligatures and the legacy digraph letters, spelled out (ﬅ keeps its long s, unlike NFKC).
const LIGATURES: Record<string, string> = {
  'Ĳ': 'IJ', 'ĳ': 'ij', 'ŉ': 'ʼn', 'Ǳ': 'DZ', 'ǲ': 'Dz', 'ǳ': 'dz', 'Ǆ': 'DŽ', 'ǅ': 'Dž', 'ǆ': 'dž',
  'Ǉ': 'LJ', 'ǈ': 'Lj', 'ǉ': 'lj', 'Ǌ': 'NJ', 'ǋ': 'Nj', 'ǌ': 'nj',
  'ﬀ': 'ff', 'ﬁ': 'fi', 'ﬂ': 'fl', 'ﬃ': 'ffi', 'ﬄ': 'ffl', 'ﬅ': 'ſt', 'ﬆ': 'st',
};
const LIGATURE_RE = new RegExp(`[${Object.keys(LIGATURES).join('')}]`, 'g');

// Full-width ASCII, half-width katakana/hangul and U+3000 to their ordinary forms; only the
// U+FF01..U+FFEF block is touched, so other compatibility characters (², ½, Ⅻ) stay.
const WIDTH = new Map<string, string>([['\u3000', ' ']]);
for (let cp = 0xff01; cp < 0xfff0; cp++) {
  const ch = String.fromCharCode(cp);
  const alt = ch.normalize('NFKC');
  if (alt !== ch) WIDTH.set(ch, alt);
}
const WIDTH_RE = /[\u3000\uff01-\uffef]/g;

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc]/g;
// Python's \d is any decimal digit, not only ASCII.
// eslint-disable-next-line no-control-regex
const ANSI_ESCAPE = /\x1b\[((?:\p{Nd}|;)*)([a-zA-Z])/gu;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function fixCharacters(text: string): string {
  return text
    .replace(C1, (c) => CP1252_HIGH[c.charCodeAt(0) - 0x80])
    .replace(LIGATURE_RE, (c) => LIGATURES[c])
    .replace(WIDTH_RE, (c) => WIDTH.get(c) ?? c)
    .replace(/[\u201c-\u201f]/g, '"')
    .replace(/[\u02bc\u2018-\u201b]/g, "'")
    .replace(/\r\n|[\r\u2028\u2029\x85]/g, '\n')
    .replace(LONE_SURROGATE, '\ufffd')
    .replace(ANSI_ESCAPE, '')
    .replace(CONTROL_CHARS, '');
}

function fixSegment(text: string, unescapeHtml: boolean): string {
  for (;;) {
    const before = text;
    if (unescapeHtml) text = ftfyUnescapeHtml(text);
    text = fixEncoding(text);
    text = fixCharacters(text).normalize('NFC');
    if (text === before) return text;
  }
}

const MAX_SEGMENT = 1_000_000;

/** ftfy 6.3.1 `fix_text` with its default configuration (coverage: see the top of this file). */
export function ftfyFixText(text: string): string {
  // "auto" HTML unescaping: once a line contains '<' the text is taken to be HTML, and ftfy keeps
  // that decision for the rest of the text.
  let unescapeHtml = true;
  let out = '';
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos) + 1;
    if (end === 0) end = text.length;
    if (end - pos > MAX_SEGMENT) end = Math.min(end, advanceCodePoints(text, pos, MAX_SEGMENT));
    const segment = text.slice(pos, end);
    if (unescapeHtml && segment.includes('<')) unescapeHtml = false;
    out += fixSegment(segment, unescapeHtml);
    pos = end;
  }
  return out;
}

function advanceCodePoints(s: string, pos: number, n: number): number {
  while (n-- > 0 && pos < s.length) pos += (s.codePointAt(pos)! > 0xffff ? 2 : 1);
  return pos;
}

/**
 * The full openai/CLIP cleaning: `whitespace_clean(basic_clean(text)).lower()`. The result is the
 * string the pre-tokenizer regex runs on.
 */
export function clipCleanText(text: string): string {
  const basic = pyStrip(pyHtmlUnescape(pyHtmlUnescape(ftfyFixText(text))));
  // toLowerCase applies the same full case mapping (İ → i̇) and final-sigma rule as str.lower().
  return whitespaceClean(basic).toLowerCase();
}
