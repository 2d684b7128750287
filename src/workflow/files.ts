// Files the workflow reads and writes, kept inside their folders: path resolution that refuses `..`,
// absolute paths and symlinks leading out; ComfyUI's output naming (prefix placeholders, subfolder,
// `_00001_` counter, never overwrite); PNG writing with ComfyUI's `prompt`/`workflow` text chunks;
// image reading for LoadImage. No server imports: the server and the nodes both build on this.
import { randomBytes } from 'node:crypto';
import { existsSync, realpathSync } from 'node:fs';
import { link, mkdir, open, readdir, realpath, rm, unlink } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, normalize, relative, sep } from 'node:path';
import sharp, { type Metadata } from 'sharp';
import { withPngText } from '../formats/png-text.js';
import type { ImageBatch, SavedFile, SaveFileRequest, SaveImagesRequest } from './types.js';

/** A path that would leave its folder (`outside`) or is malformed (`invalid`). */
export class PathError extends Error {
  constructor(message: string, readonly kind: 'invalid' | 'outside') {
    super(message);
    this.name = 'PathError';
  }
}

/** The folders files may live in, by ComfyUI's `type`. */
export interface FileFolders {
  readonly input: string;
  readonly output: string;
  readonly temp: string;
}

export type FolderType = keyof FileFolders;

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** The real path of `path`, or of its deepest existing ancestor joined with the missing rest. */
function realpathOfExisting(path: string): string {
  let cur = path;
  const rest: string[] = [];
  for (;;) {
    try {
      return join(realpathSync(cur), ...rest.reverse());
    } catch {
      const parent = dirname(cur);
      if (parent === cur) return path;
      rest.push(basename(cur));
      cur = parent;
    }
  }
}

/**
 * `rel` (with `/` separators, possibly empty) inside `root`, refusing absolute paths, `..` escapes and
 * symlinks (of any existing part) that lead out of the folder. The answer is the lexical path, so a
 * symlink that stays inside keeps its name. Model folders pass `allowSymlinksOut`: users link their
 * model files in from elsewhere, and only names (never link targets) come from requests there.
 */
export function resolveInside(root: string, rel: string, opts: { allowSymlinksOut?: boolean } = {}): string {
  if (rel.includes('\0')) throw new PathError('path contains a NUL byte', 'invalid');
  if (isAbsolute(rel) || /^[\\/]/.test(rel) || /^[a-zA-Z]:/.test(rel)) throw new PathError(`${rel}: absolute paths are not allowed`, 'outside');
  const path = normalize(join(root, rel));
  if (!isInside(root, path)) throw new PathError(`${rel}: leaves its folder`, 'outside');
  if (opts.allowSymlinksOut) return path;
  const realRoot = realpathOfExisting(root);
  if (!isInside(realRoot, realpathOfExisting(path))) throw new PathError(`${rel}: a symlink leads out of its folder`, 'outside');
  return path;
}

/** Splits ComfyUI's annotated names: `x.png [output]` → `{name: 'x.png', type: 'output'}`. */
export function parseAnnotatedName(name: string): { name: string; type?: FolderType } {
  const m = /^(.*) \[(input|output|temp)\]$/.exec(name);
  return m ? { name: m[1], type: m[2] as FolderType } : { name };
}

// ---------------------------------------------------------------------------------------------------
// Python-compatible JSON, so the `prompt`/`workflow` chunks are byte-identical to ComfyUI's.

function pyString(s: string): string {
  // JSON.stringify escapes quotes, backslashes and controls as Python does; ensure_ascii also escapes
  // DEL and everything above it, as \uXXXX of the UTF-16 units (surrogate pairs for astral characters).
  return JSON.stringify(s).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `json.dumps(value)` with Python's defaults: `", "` and `": "` separators, non-ASCII as `\uXXXX`. */
export function pythonJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  switch (typeof value) {
    case 'string': return pyString(value);
    case 'boolean': return value ? 'true' : 'false';
    case 'bigint': return value.toString();
    case 'number':
      if (Number.isNaN(value)) return 'NaN';
      if (!Number.isFinite(value)) return value > 0 ? 'Infinity' : '-Infinity';
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
      const toJSON = (value as { toJSON?: () => unknown }).toJSON;
      if (typeof toJSON === 'function') return pythonJson(toJSON.call(value));
      const parts = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined && typeof v !== 'function')
        .map(([k, v]) => `${pyString(k)}: ${pythonJson(v)}`);
      return `{${parts.join(', ')}}`;
    }
    default: return 'null';
  }
}

// ---------------------------------------------------------------------------------------------------
// ComfyUI output naming.

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** `%width%`, `%height%`, `%year%` … `%second%` of a SaveImage prefix (server local time). */
export function expandPrefix(prefix: string, width: number, height: number, now = new Date()): string {
  const map: Record<string, string> = {
    '%width%': String(width), '%height%': String(height), '%year%': String(now.getFullYear()),
    '%month%': pad2(now.getMonth() + 1), '%day%': pad2(now.getDate()), '%hour%': pad2(now.getHours()),
    '%minute%': pad2(now.getMinutes()), '%second%': pad2(now.getSeconds()),
  };
  return prefix.replace(/%(width|height|year|month|day|hour|minute|second)%/g, (m) => map[m]);
}

/** Subfolder (with `/`) and base name of an expanded prefix; refuses prefixes that leave `root`. */
export function splitPrefix(root: string, prefix: string): { dir: string; subfolder: string; base: string } {
  const clean = prefix.replace(/\\/g, '/');
  const cut = clean.lastIndexOf('/');
  const subfolder = cut < 0 ? '' : normalize(clean.slice(0, cut)).replace(/\\/g, '/').replace(/^\.$/, '');
  const base = clean.slice(cut + 1);
  if (base === '' || base === '.' || base === '..') throw new PathError(`filename_prefix '${prefix}' has no file name part`, 'invalid');
  const dir = resolveInside(root, subfolder);
  return { dir, subfolder, base };
}

const TEMP_MARK = '.lk-part-';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** ComfyUI's counter: max over `<base>_<digits>_…` names (and our in-flight temp files) + 1. */
export function nextCounter(names: readonly string[], bases: readonly string[]): number {
  let max = 0;
  const res = bases.map((b) => new RegExp(`^(?:${escapeRegExp(TEMP_MARK)}[0-9a-f]+-)?${escapeRegExp(b)}_(\\d+)_`));
  for (const name of names) {
    for (const re of res) {
      const m = re.exec(name);
      if (m) max = Math.max(max, Number.parseInt(m[1], 10));
    }
  }
  return max + 1;
}

/** The tail of each folder's save chain: saves into one folder run one at a time within this process. */
const folderLocks = new Map<string, Promise<unknown>>();

async function withFolderLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const prev = folderLocks.get(dir) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => undefined);
  folderLocks.set(dir, tail);
  try {
    return await run;
  } finally {
    if (folderLocks.get(dir) === tail) folderLocks.delete(dir);
  }
}

/**
 * Writes `data` as `dir/name` without ever showing a partial file or replacing an existing one: the
 * bytes go to a hidden temp file first (synced), then are hard-linked under the final name, which
 * fails instead of overwriting. Returns false when the name is taken.
 */
export async function writeNewFile(dir: string, name: string, data: Uint8Array): Promise<boolean> {
  const tmp = join(dir, `${TEMP_MARK}${randomBytes(4).toString('hex')}-${name}`);
  const fh = await open(tmp, 'wx');
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await link(tmp, join(dir, name));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** Removes temp files a crash left behind (they never carry a final name, so nothing else is touched). */
export async function removeStaleTempFiles(root: string, depth = 8): Promise<number> {
  let removed = 0;
  let entries;
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(root, e.name);
    if (e.isFile() && e.name.startsWith(TEMP_MARK)) {
      await rm(p, { force: true });
      removed++;
    } else if (e.isDirectory() && depth > 0) removed += await removeStaleTempFiles(p, depth - 1);
  }
  return removed;
}

/** 8-bit RGB bytes of one image of a batch (values clamped, rounded like ComfyUI's `clip(255 * x)`). */
export function imageToRgb8(images: ImageBatch, index: number): Uint8Array {
  const { width, height, channels } = images;
  const px = width * height;
  const out = new Uint8Array(px * 3);
  const off = index * px * channels;
  for (let i = 0; i < px; i++) {
    for (let c = 0; c < 3; c++) {
      // float32 product as numpy makes it; astype(uint8) after clip truncates (np.clip(255. * i, 0, 255).astype(np.uint8)).
      const v = Math.fround(images.data[off + i * channels + Math.min(c, channels - 1)] * 255);
      out[i * 3 + c] = v <= 0 || Number.isNaN(v) ? 0 : v >= 255 ? 255 : Math.trunc(v);
    }
  }
  return out;
}

/** A PNG of raw RGB bytes with ComfyUI's text chunks (JSON as Python writes it). */
export async function encodePng(rgb: Uint8Array, width: number, height: number, pngInfo?: Readonly<Record<string, unknown>>, compressionLevel = 4): Promise<Buffer> {
  const png = await sharp(rgb, { raw: { width, height, channels: 3 } }).png({ compressionLevel }).toBuffer();
  if (!pngInfo || Object.keys(pngInfo).length === 0) return png;
  const text: Record<string, string> = {};
  for (const [k, v] of Object.entries(pngInfo)) text[k] = pythonJson(v);
  return withPngText(png, text);
}

/** SaveImage / PreviewImage: ComfyUI's names in `folders[req.type]`, one file per batch image. */
export async function saveImages(folders: FileFolders, req: SaveImagesRequest, now = new Date()): Promise<SavedFile[]> {
  const { images } = req;
  const pngs: Buffer[] = [];
  for (let b = 0; b < images.batch; b++) {
    pngs.push(await encodePng(imageToRgb8(images, b), images.width, images.height, req.pngInfo, req.compressLevel ?? 4));
  }
  const prefix = expandPrefix(req.prefix, images.width, images.height, now);
  return writeCounted(folders, req.type, req.prefix, prefix, pngs.map((data, b) => ({ data, batch: b })), 'png');
}

/** SaveLatent and the like: one file named as ComfyUI names outputs (`%width%` and `%height%` are 0). */
export async function saveFile(folders: FileFolders, req: SaveFileRequest, now = new Date()): Promise<SavedFile> {
  const prefix = expandPrefix(req.prefix, 0, 0, now);
  const [saved] = await writeCounted(folders, req.type ?? 'output', req.prefix, prefix, [{ data: req.data, batch: 0 }], req.extension);
  return saved;
}

/** Writes each file as `<base>_<counter:05d>_.<ext>` in the prefix's subfolder, counters after the highest present. */
async function writeCounted(folders: FileFolders, type: FolderType, given: string, prefix: string, files: readonly { data: Uint8Array; batch: number }[], ext: string): Promise<SavedFile[]> {
  const root = folders[type];
  await mkdir(root, { recursive: true });
  const { dir, subfolder, base } = splitPrefix(root, prefix);
  await mkdir(dir, { recursive: true });
  // mkdir may have followed a symlink made in between: check again on the real folder
  if (!isInside(await realpath(root), await realpath(dir))) throw new PathError(`filename_prefix '${given}' leaves the ${type} folder`, 'outside');
  const bases = files.map((f) => base.replaceAll('%batch_num%', String(f.batch)));
  return withFolderLock(dir, async () => {
    let counter = nextCounter(await readdir(dir), [...new Set(bases)]);
    const out: SavedFile[] = [];
    for (let b = 0; b < files.length; b++) {
      // another process may take a name between the scan and the write: skip to the next counter
      for (;;) {
        const name = `${bases[b]}_${String(counter).padStart(5, '0')}_.${ext}`;
        if (!existsSync(join(dir, name)) && await writeNewFile(dir, name, files[b].data)) {
          out.push({ filename: name, subfolder, type });
          break;
        }
        counter++;
      }
      counter++;
    }
    return out;
  });
}

// ---------------------------------------------------------------------------------------------------
// Reading images.

/** Images larger than this are refused before their pixels are decoded (decompression bombs). */
export const DEFAULT_MAX_PIXELS = 8192 * 8192;

/** Width, height and format from the file header only, refusing anything over `maxPixels`. */
export async function imageHeader(input: string | Buffer, maxPixels = DEFAULT_MAX_PIXELS): Promise<{ width: number; height: number; format: string; hasAlpha: boolean }> {
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new Error(`not a readable image (${(err as Error).message})`, { cause: err });
  }
  const { width, height, format } = meta;
  if (!width || !height || !format) throw new Error('not a readable image (no size in its header)');
  if (width * height > maxPixels) throw new ImageTooLargeError(width, height, maxPixels);
  return { width, height, format, hasAlpha: meta.hasAlpha === true };
}

export class ImageTooLargeError extends Error {
  constructor(readonly width: number, readonly height: number, readonly maxPixels: number) {
    super(`image is ${width}×${height} pixels, more than the limit of ${maxPixels}`);
    this.name = 'ImageTooLargeError';
  }
}

/**
 * LoadImage's reading: EXIF orientation applied, RGB floats 0..1 and the alpha channel when the file
 * has one (the node turns it into MASK = 1 − alpha).
 */
export async function readImageFile(path: string, maxPixels = DEFAULT_MAX_PIXELS): Promise<{ image: ImageBatch; alpha?: Float32Array }> {
  const head = await imageHeader(path, maxPixels);
  const { data, info } = await sharp(path, { limitInputPixels: maxPixels }).rotate().ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const px = info.width * info.height;
  const rgb = new Float32Array(px * 3);
  const alpha = head.hasAlpha ? new Float32Array(px) : undefined;
  for (let i = 0; i < px; i++) {
    rgb[i * 3] = data[i * 4] / 255;
    rgb[i * 3 + 1] = data[i * 4 + 1] / 255;
    rgb[i * 3 + 2] = data[i * 4 + 2] / 255;
    if (alpha) alpha[i] = data[i * 4 + 3] / 255;
  }
  return { image: { data: rgb, batch: 1, height: info.height, width: info.width, channels: 3 }, alpha };
}

/** An input name as LoadImage gets it (`x.png`, `sub/x.png`, `x.png [output]`) → its path in its folder. */
export function resolveImageName(folders: FileFolders, annotated: string): string {
  const { name, type } = parseAnnotatedName(annotated);
  if (name === '') throw new PathError('empty image name', 'invalid');
  return resolveInside(folders[type ?? 'input'], name.replace(/\\/g, '/'));
}
