import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { DTYPE_SIZE, type DType } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import type { StateDict, TensorInfo } from './state-dict.js';

/** The same limit as the reference Rust crate, so a file it rejects is rejected here too. */
export const MAX_HEADER_LENGTH = 100_000_000;

const FILE_TO_DTYPE: Readonly<Record<string, DType>> = {
  F64: 'f64', F32: 'f32', F16: 'f16', BF16: 'bf16',
  I64: 'i64', I32: 'i32', I16: 'i16', I8: 'i8', U8: 'u8', BOOL: 'bool',
  F8_E4M3: 'f8e4m3', F8_E5M2: 'f8e5m2',
};

const DTYPE_TO_FILE: Readonly<Record<DType, string>> = {
  f64: 'F64', f32: 'F32', f16: 'F16', bf16: 'BF16',
  i64: 'I64', i32: 'I32', i16: 'I16', i8: 'I8', u8: 'U8', bool: 'BOOL',
  f8e4m3: 'F8_E4M3', f8e5m2: 'F8_E5M2',
};

// Linux returns at most ~2 GiB per read/write syscall and Node range-checks lengths, so big tensors
// move in pieces well under both limits.
const IO_CHUNK = 1 << 30;

/** A tensor's header entry, with where its bytes lie in the file. */
export interface SafetensorsTensorInfo extends TensorInfo {
  /** Absolute byte range [begin, end) in the file (header offsets plus the data area start). */
  readonly dataOffsets: readonly [number, number];
}

/** An opened `.safetensors` file: header parsed and validated, tensor data read on demand. */
export interface SafetensorsFile extends StateDict {
  /** File size when opened. */
  readonly size: number;
  /** Byte offset where the tensor data area starts (8 + header length). */
  readonly dataStart: number;
  info(key: string): SafetensorsTensorInfo | undefined;
  /** The tensor's raw little-endian bytes, exactly as stored. */
  readBytes(key: string): Promise<Uint8Array>;
}

interface Entry {
  key: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

const quote = (key: string): string => JSON.stringify(key);
const describe = (v: unknown): string =>
  v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Element count, or undefined when it cannot be represented exactly (so it cannot match any byte range). */
function safeNumel(shape: readonly number[]): number | undefined {
  if (shape.includes(0)) return 0;
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return n;
}

function parseEntry(key: string, raw: unknown, fail: (msg: string) => never): Entry {
  const where = `tensor ${quote(key)}`;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    fail(`${where}: header entry is ${describe(raw)}, expected an object with dtype, shape and data_offsets`);
  }
  const o = raw as Record<string, unknown>;
  if (typeof o.dtype !== 'string') fail(`${where}: dtype is ${o.dtype === undefined ? 'missing' : describe(o.dtype)}, expected a string`);
  const dtype = Object.hasOwn(FILE_TO_DTYPE, o.dtype) ? FILE_TO_DTYPE[o.dtype] : undefined;
  if (dtype === undefined) {
    fail(`${where}: unknown dtype ${quote(o.dtype)} (supported: ${Object.keys(FILE_TO_DTYPE).join(', ')})`);
  }
  if (!Array.isArray(o.shape) || !o.shape.every(isCount)) {
    fail(o.shape === undefined
      ? `${where}: shape is missing`
      : `${where}: shape ${JSON.stringify(o.shape)} is not a list of non-negative integers`);
  }
  const shape = o.shape as number[];
  const offs = o.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every(isCount)) {
    fail(`${where}: data_offsets ${offs === undefined ? 'is missing' : `${JSON.stringify(offs)} is not a pair of non-negative integers`}`);
  }
  const [begin, end] = offs as [number, number];
  if (begin > end) fail(`${where}: data_offsets [${begin}, ${end}] begin after end`);
  const n = safeNumel(shape);
  const need = n === undefined ? undefined : n * DTYPE_SIZE[dtype];
  if (need === undefined || need !== end - begin) {
    fail(`${where}: shape [${shape.join(', ')}] of ${o.dtype} needs ${need ?? 'more than 2^53'} bytes, `
      + `but data_offsets [${begin}, ${end}] hold ${end - begin}`);
  }
  return { key, dtype, shape, begin, end };
}

function parseMetadata(raw: unknown, fail: (msg: string) => never): Record<string, string> {
  // The Rust crate reads `__metadata__` as an optional map, so an explicit null means "none".
  if (raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) fail(`__metadata__ is ${describe(raw)}, expected an object of strings`);
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (typeof v !== 'string') fail(`__metadata__ value for ${quote(k)} is ${describe(v)}, expected a string`);
  }
  return raw as Record<string, string>;
}

/**
 * The tensors must tile the data area exactly: sorted by range, each starts where the previous one
 * ended, the first at 0 and the last at the end of the file. This is what the Rust crate enforces
 * (InvalidOffset / MetadataIncompleteBuffer); it is what lets a reader trust any byte range it hands out.
 */
function checkLayout(entries: Entry[], dataSize: number, fail: (msg: string) => never): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let prev: Entry | undefined;
  for (const e of sorted) {
    const range = `tensor ${quote(e.key)} data_offsets [${e.begin}, ${e.end}]`;
    if (e.begin < expected) {
      fail(`${range} overlap tensor ${quote(prev!.key)} data_offsets [${prev!.begin}, ${prev!.end}]`);
    }
    if (e.begin > expected) {
      fail(`${range} leave a hole: data bytes ${expected}..${e.begin} belong to no tensor`);
    }
    expected = e.end;
    prev = e;
  }
  if (expected > dataSize) {
    const first = sorted.find((e) => e.end > dataSize)!;
    fail(`truncated: expected ${expected} bytes of tensor data, file has ${dataSize} `
      + `(tensor ${quote(first.key)} data_offsets [${first.begin}, ${first.end}] reach past the end of the file)`);
  }
  if (expected < dataSize) {
    fail(`${dataSize - expected} bytes of data after the last tensor: tensors cover ${expected} bytes of tensor data, file has ${dataSize}`);
  }
}

/** Fills `dst` from `position`, in pieces; throws on EOF rather than leaving part of `dst` stale. */
async function readFully(fh: FileHandle, dst: Uint8Array, position: number, what: () => string): Promise<void> {
  let done = 0;
  while (done < dst.byteLength) {
    const len = Math.min(IO_CHUNK, dst.byteLength - done);
    const { bytesRead } = await fh.read(dst, done, len, position + done);
    if (bytesRead === 0) {
      throw new Error(`${what()}: short read: got ${done} of ${dst.byteLength} bytes at file offset ${position} `
        + '(was the file truncated or replaced after it was opened?)');
    }
    done += bytesRead;
  }
}

class SafetensorsReader implements SafetensorsFile {
  private closed = false;

  constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly size: number,
    readonly dataStart: number,
    readonly metadata: Readonly<Record<string, string>>,
    private readonly entries: ReadonlyMap<string, SafetensorsTensorInfo>,
  ) {}

  keys(): string[] {
    return [...this.entries.keys()];
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  info(key: string): SafetensorsTensorInfo | undefined {
    return this.entries.get(key);
  }

  private lookup(key: string): SafetensorsTensorInfo {
    if (this.closed) throw new Error(`${this.path}: cannot read tensor ${quote(key)}: the file has been closed`);
    const info = this.entries.get(key);
    if (!info) throw new Error(`${this.path}: no tensor ${quote(key)} in this file (it has ${this.entries.size} tensors)`);
    return info;
  }

  async readBytes(key: string): Promise<Uint8Array> {
    const info = this.lookup(key);
    const [begin, end] = info.dataOffsets;
    const out = new Uint8Array(end - begin);
    await readFully(this.fh, out, begin, () => `${this.path}: tensor ${quote(key)}`);
    return out;
  }

  async read(key: string): Promise<Tensor> {
    const info = this.lookup(key);
    // Reading straight into the tensor's own storage avoids a second copy of every weight.
    const t = new Tensor(info.dtype, info.shape);
    await readFully(this.fh, t.bytes(), info.dataOffsets[0], () => `${this.path}: tensor ${quote(key)}`);
    return t;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }
}

/**
 * Opens a `.safetensors` file, reading and validating only its header. Any fault in the file is
 * reported as one Error whose message starts with the path.
 */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const fh = await fsp.open(path, 'r');
  try {
    return await parseHeader(path, fh);
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
}

async function parseHeader(path: string, fh: FileHandle): Promise<SafetensorsFile> {
  const notSt: (msg: string) => never = (msg) => { throw new Error(`${path}: not a safetensors file: ${msg}`); };
  const badHeader: (msg: string) => never = (msg) => { throw new Error(`${path}: invalid safetensors header: ${msg}`); };
  const bad: (msg: string) => never = (msg) => { throw new Error(`${path}: ${msg}`); };

  const { size } = await fh.stat();
  if (size < 8) notSt(`file is ${size} bytes, too short to hold the 8-byte header length`);
  const lenBuf = new Uint8Array(8);
  await readFully(fh, lenBuf, 0, () => `${path}: header length`);
  const n64 = new DataView(lenBuf.buffer).getBigUint64(0, true);
  if (n64 === 0n) notSt('header length is 0');
  if (n64 > BigInt(size - 8)) notSt(`header length ${n64} exceeds file size ${size}`);
  if (n64 > BigInt(MAX_HEADER_LENGTH)) notSt(`header length ${n64} exceeds the ${MAX_HEADER_LENGTH}-byte limit`);
  const n = Number(n64);

  const headerBytes = new Uint8Array(n);
  await readFully(fh, headerBytes, 8, () => `${path}: header`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    return notSt('header is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return notSt(`header is not valid JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    notSt(`header is ${json === null ? 'JSON null' : Array.isArray(json) ? 'a JSON array' : `a JSON ${typeof json}`}, expected a JSON object`);
  }

  let metadata: Record<string, string> = {};
  const list: Entry[] = [];
  for (const [key, raw] of Object.entries(json as Record<string, unknown>)) {
    if (key === '__metadata__') metadata = parseMetadata(raw, badHeader);
    else list.push(parseEntry(key, raw, badHeader));
  }
  const dataStart = 8 + n;
  checkLayout(list, size - dataStart, bad);

  const entries = new Map<string, SafetensorsTensorInfo>();
  for (const e of list) {
    entries.set(e.key, Object.freeze({
      dtype: e.dtype,
      shape: Object.freeze(e.shape),
      dataOffsets: Object.freeze([dataStart + e.begin, dataStart + e.end] as const),
    }));
  }
  return new SafetensorsReader(path, fh, size, dataStart, Object.freeze({ ...metadata }), entries);
}

// ---------------------------------------------------------------------------------------------------
// Writing

/**
 * A tensor written on demand: its dtype and shape are known up front (for the header) and its data is
 * produced only when the writer reaches it, so a merge of two 2 GB models never holds a third in memory.
 */
export interface LazyTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  produce(): Promise<Tensor>;
}

type Entry_ = Tensor | LazyTensor;

function isLazy(e: Entry_): e is LazyTensor {
  return typeof (e as LazyTensor).produce === 'function';
}
type TensorSource = Record<string, Entry_> | ReadonlyMap<string, Entry_>;

/** Code point order, as Python's sorted() and Rust's byte-wise string order give (UTF-16 order differs). */
function compareKeys(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done ? (y.done ? 0 : -1) : 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
}

interface Planned {
  key: string;
  tensor: Entry_;
  nbytes: number;
}

function plan(
  label: string, tensors: TensorSource, metadata: Record<string, string> | undefined,
): { header: Uint8Array; items: Planned[]; dataSize: number } {
  const fail: (msg: string) => never = (msg) => { throw new Error(`${label}: ${msg}`); };
  const pairs: [string, Entry_][] = tensors instanceof Map
    ? [...(tensors as ReadonlyMap<string, Entry_>).entries()]
    : Object.entries(tensors as Record<string, Entry_>);
  pairs.sort((a, b) => compareKeys(a[0], b[0]));
  // Built by hand rather than JSON.stringify of one object: JS objects move integer-like keys
  // ("0", "12") to the front, which would break the sorted order.
  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') fail(`metadata value for ${quote(k)} is ${describe(v)}, expected a string`);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  const items: Planned[] = [];
  let offset = 0;
  for (const [key, tensor] of pairs) {
    if (key === '__metadata__') fail('"__metadata__" is reserved in safetensors and cannot name a tensor');
    const size = Object.hasOwn(DTYPE_SIZE, tensor.dtype) ? DTYPE_SIZE[tensor.dtype] : undefined;
    if (size === undefined) fail(`tensor ${quote(key)}: dtype ${String(tensor.dtype)} cannot be stored in safetensors`);
    if (!tensor.shape.every(isCount)) fail(`tensor ${quote(key)}: shape ${JSON.stringify(tensor.shape)} is not a list of non-negative integers`);
    const n = safeNumel(tensor.shape);
    if (n === undefined) fail(`tensor ${quote(key)}: shape [${tensor.shape.join(', ')}] is too large`);
    const nbytes = n * size;
    parts.push(`${quote(key)}:${JSON.stringify({ dtype: DTYPE_TO_FILE[tensor.dtype], shape: tensor.shape, data_offsets: [offset, offset + nbytes] })}`);
    items.push({ key, tensor, nbytes });
    offset += nbytes;
  }
  let json = `{${parts.join(',')}}`;
  const utf8 = new TextEncoder();
  let header = utf8.encode(json);
  // Padding to 8 keeps the data area 8-byte aligned, so a reader that maps the file can view f64/i64 in place.
  const pad = (8 - (header.byteLength % 8)) % 8;
  if (pad) {
    json += ' '.repeat(pad);
    header = utf8.encode(json);
  }
  return { header, items, dataSize: offset };
}

function lengthPrefix(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n), true);
  return b;
}

function tensorBytes(label: string, p: Planned, tensor: Tensor): Uint8Array {
  let bytes: Uint8Array;
  try {
    if (tensor.dtype !== p.tensor.dtype) throw new Error(`it came out as ${tensor.dtype}, planned ${p.tensor.dtype}`);
    bytes = tensor.bytes();
  } catch (err) {
    throw new Error(`${label}: tensor ${quote(p.key)}: could not get its data: ${(err as Error).message}`, { cause: err });
  }
  if (bytes.byteLength !== p.nbytes) {
    throw new Error(`${label}: tensor ${quote(p.key)}: has ${bytes.byteLength} bytes of data, its ${p.tensor.dtype} shape `
      + `[${p.tensor.shape.join(', ')}] needs ${p.nbytes}`);
  }
  return bytes;
}

/** The whole file in memory: for tests and small files; use writeSafetensors for models. */
export function serializeSafetensors(tensors: TensorSource, metadata?: Record<string, string>): Uint8Array {
  const { header, items, dataSize } = plan('safetensors', tensors, metadata);
  const out = new Uint8Array(8 + header.byteLength + dataSize);
  out.set(lengthPrefix(header.byteLength), 0);
  out.set(header, 8);
  let pos = 8 + header.byteLength;
  for (const p of items) {
    if (isLazy(p.tensor)) throw new Error(`safetensors: tensor ${quote(p.key)} is produced on demand; use writeSafetensors`);
    out.set(tensorBytes('safetensors', p, p.tensor), pos);
    pos += p.nbytes;
  }
  return out;
}

async function writeFully(fh: FileHandle, src: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < src.byteLength) {
    const len = Math.min(IO_CHUNK, src.byteLength - done);
    const { bytesWritten } = await fh.write(src, done, len, position + done);
    done += bytesWritten;
  }
}

/**
 * Writes a `.safetensors` file (keys sorted, contiguous data, `__metadata__` only when given).
 * Data goes to a temporary file beside `path`, which replaces `path` only once complete and synced,
 * so a crash or a failing tensor never leaves a partial file and never loses the previous one.
 */
export async function writeSafetensors(
  path: string, tensors: TensorSource, metadata?: Record<string, string>, onProgress?: (done: number, total: number) => void,
): Promise<void> {
  const { header, items } = plan(path, tensors, metadata);
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const fh = await fsp.open(tmp, 'wx');
  let ok = false;
  try {
    await writeFully(fh, lengthPrefix(header.byteLength), 0);
    await writeFully(fh, header, 8);
    let pos = 8 + header.byteLength;
    for (const [i, p] of items.entries()) {
      const bytes = tensorBytes(path, p, isLazy(p.tensor) ? await p.tensor.produce() : p.tensor);
      try {
        await writeFully(fh, bytes, pos);
      } catch (err) {
        throw new Error(`${path}: writing tensor ${quote(p.key)} failed: ${(err as Error).message}`, { cause: err });
      }
      pos += p.nbytes;
      onProgress?.(i + 1, items.length);
    }
    // Without the sync, a power loss right after the rename can leave an empty or partial file at path.
    await fh.sync();
    ok = true;
  } finally {
    await fh.close().catch(() => undefined);
    if (!ok) await fsp.unlink(tmp).catch(() => undefined);
  }
  try {
    await fsp.rename(tmp, path);
  } catch (err) {
    await fsp.unlink(tmp).catch(() => undefined);
    throw err;
  }
}
