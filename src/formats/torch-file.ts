// PyTorch checkpoints (.ckpt .pt .pth .bin) opened without Python and without running the pickle.
//
// Two containers exist. torch ≥ 1.6 writes a zip: `<folder>/data.pkl` holds the object tree and
// `<folder>/data/<key>` each storage's raw bytes, normally stored uncompressed, so tensors are read by
// byte range straight from the file. Older torch wrote one stream: five pickles (magic number,
// protocol version, sys_info, the object tree, the storage key list) followed by every storage as an
// 8-byte element count and its bytes. Both put persistent ids in the object tree where tensors
// reference storages; pickle.ts turns those into lazy references and nothing is read until asked.

import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import type { Entry, ZipFile } from 'yauzl';
import { DTYPE_SIZE, numel } from '../tensor/dtype.js';
import { Tensor, fromStrided } from '../tensor/tensor.js';
import type { StateDict, TensorInfo } from './state-dict.js';
import {
  PickleRefusedError, PickleTruncatedError, PyDict, PyGlobal, PyObject, StorageRef, TensorRef,
  describe, isTuple, storageTypeOf, unpickleAt, type PyValue,
} from './pickle.js';

export type TorchFormat = 'zip' | 'legacy';

/** A PyTorch checkpoint opened for reading. Tensor keys are the state dict's, nested dicts joined by '.'. */
export interface TorchFile extends StateDict {
  readonly format: TorchFormat;
  /** The whole unpickled object, tensors as TensorRef (read them with readTensor). */
  readonly root: PyValue;
  /** The wrapper entry the tensors came from ('state_dict' for Lightning .ckpt), or null. */
  readonly stateDictKey: string | null;
  /** Every non-tensor value in the root by dotted path ('global_step', 'name', 'string_to_token.*'). */
  readonly objects: ReadonlyMap<string, PyValue>;
  tensorRef(key: string): TensorRef | undefined;
  /** Reads any tensor found in `root`, e.g. optimizer state outside the state dict. */
  readTensor(ref: TensorRef, label?: string): Promise<Tensor>;
}

export interface OpenTorchFileOptions {
  /** Largest pickle accepted (data.pkl, or the pickled head of a legacy file). Default 1 GiB. */
  maxPickleBytes?: number;
}

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;
/**
 * Checkpoints wrap their tensors under one of these keys: Lightning 'state_dict', BasicSR/ESRGAN
 * 'params_ema' (preferred over 'params'), training scripts 'model' / 'net'. Only a dict holding tensors counts.
 */
const WRAPPER_KEYS = ['state_dict', 'params_ema', 'params-ema', 'params', 'model', 'net'];
const PARAMETER_DICT = 'torch.nn.modules.container.ParameterDict';
const MAX_NESTING = 100;
const MAX_ZIP_ENTRIES = 1_000_000;
/** fs reads are limited to 2 GiB a call. */
const READ_CHUNK = 1 << 30;

interface StorageBackend {
  /** Fills `dst` with bytes [start, end) of the stored data of storage `key`. */
  read(key: string, start: number, end: number, label: string, dst: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

async function readExact(fh: FileHandle, dst: Uint8Array, position: number, short: () => Error): Promise<void> {
  let done = 0;
  while (done < dst.byteLength) {
    const { bytesRead } = await fh.read(dst, done, Math.min(dst.byteLength - done, READ_CHUNK), position + done);
    if (bytesRead === 0) throw short();
    done += bytesRead;
  }
}

// ---------------------------------------------------------------------------------------------------
// zip container

function zipError(path: string, e: unknown): Error {
  return new Error(`${path}: cannot read the zip archive: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

class ZipBackend implements StorageBackend {
  private readonly starts = new Map<string, Promise<number>>();

  constructor(
    private readonly path: string,
    private readonly fh: FileHandle,
    private readonly zip: ZipFile,
    private readonly entries: Map<string, Entry>,
    private readonly dir: string,
  ) {}

  static async open(path: string): Promise<{ zip: ZipFile; entries: Map<string, Entry> }> {
    let zip: ZipFile;
    try {
      // yauzl closes the descriptor it reads through when the ZipFile closes, so it gets its own.
      zip = await new Promise<ZipFile>((resolve, reject) => {
        yauzl.open(path, {
          lazyEntries: true, autoClose: false, decodeStrings: true, validateEntrySizes: true, strictFileNames: false,
        }, (err, z) => (err ? reject(err) : resolve(z)));
      });
    } catch (e) {
      throw zipError(path, e);
    }
    const entries = new Map<string, Entry>();
    try {
      await new Promise<void>((resolve, reject) => {
        zip.on('entry', (e: Entry) => {
          if (entries.size >= MAX_ZIP_ENTRIES) {
            reject(new Error(`more than ${MAX_ZIP_ENTRIES} entries`));
            return;
          }
          entries.set(e.fileName, e);
          zip.readEntry();
        });
        zip.on('end', () => resolve());
        zip.on('error', reject);
        zip.readEntry();
      });
    } catch (e) {
      zip.close();
      throw zipError(path, e);
    }
    return { zip, entries };
  }

  /** Absolute file position of an entry's data: the local header's own name and extra lengths decide it. */
  dataStart(entry: Entry): Promise<number> {
    let p = this.starts.get(entry.fileName);
    if (!p) {
      p = new Promise<number>((resolve, reject) => {
        this.zip.readLocalFileHeader(entry, { minimal: true }, (err, h) => (err ? reject(zipError(this.path, err)) : resolve(h.fileDataStart)));
      });
      this.starts.set(entry.fileName, p);
    }
    return p;
  }

  /** Reads [start, end) of an entry's uncompressed data. */
  async readEntry(entry: Entry, start: number, end: number, dst: Uint8Array, what: string): Promise<void> {
    const short = (): Error => new Error(`${this.path}: ${what}: the zip entry ${entry.fileName} is cut short`);
    if (entry.isEncrypted()) throw new Error(`${this.path}: ${what}: the zip entry ${entry.fileName} is encrypted`);
    if (entry.compressionMethod === 0) {
      await readExact(this.fh, dst, (await this.dataStart(entry)) + start, short);
      return;
    }
    if (entry.compressionMethod !== 8) {
      throw new Error(`${this.path}: ${what}: the zip entry ${entry.fileName} uses unsupported compression method ${entry.compressionMethod}`);
    }
    // Deflated entries cannot be entered mid-stream: inflate from the start, keep only the range.
    let stream: Readable;
    try {
      stream = await new Promise<Readable>((resolve, reject) => {
        this.zip.openReadStream(entry, (err, s) => (err ? reject(err) : resolve(s)));
      });
    } catch (e) {
      throw zipError(this.path, e);
    }
    let pos = 0;
    let filled = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        const a = Math.max(start, pos);
        const b = Math.min(end, pos + chunk.length);
        if (a < b) {
          dst.set(chunk.subarray(a - pos, b - pos), a - start);
          filled += b - a;
        }
        pos += chunk.length;
        if (pos >= end) break;
      }
    } catch (e) {
      throw new Error(`${this.path}: ${what}: cannot inflate the zip entry ${entry.fileName}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    if (filled !== end - start) throw short();
  }

  async read(key: string, start: number, end: number, label: string, dst: Uint8Array): Promise<void> {
    const name = `${this.dir}/data/${key}`;
    const entry = this.entries.get(name);
    if (!entry) throw new Error(`${this.path}: tensor '${label}': its storage '${key}' is missing from the archive (no entry ${name})`);
    if (end > entry.uncompressedSize) {
      throw new Error(`${this.path}: tensor '${label}': the storage entry ${name} is truncated: it holds ${entry.uncompressedSize} bytes, the tensor needs ${end}`);
    }
    await this.readEntry(entry, start, end, dst, `tensor '${label}'`);
  }

  async close(): Promise<void> {
    this.zip.close();
  }
}

function zipPersistentLoad(): (pid: PyValue) => PyValue {
  const storages = new Map<string, StorageRef>();
  return (pid) => {
    if (!Array.isArray(pid)) throw new Error(`persistent id is a ${describe(pid)}, expected a tuple`);
    const t = pid as PyValue[];
    if (t[0] !== 'storage') throw new Error(`unsupported persistent id kind ${typeof t[0] === 'string' ? `'${t[0]}'` : describe(t[0])}`);
    if (t.length !== 5) throw new Error(`a storage persistent id has 5 fields, this one ${t.length}`);
    const [, type, rawKey, location, rawNumel] = t;
    const key = storageKey(rawKey);
    const cached = storages.get(key);
    if (cached) return cached;
    const ref = makeStorage(key, type, location, rawNumel);
    storages.set(key, ref);
    return ref;
  };
}

function storageKey(v: PyValue): string {
  if (typeof v === 'string' && v.length > 0 && v.length <= 256) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return String(v);
  throw new Error(`a storage key must be a short str, got ${describe(v)}`);
}

function makeStorage(key: string, type: PyValue, location: PyValue, rawNumel: PyValue, byteOffset = 0, viewNumel?: number): StorageRef {
  const info = storageTypeOf(type);
  if (!info) throw new Error(`unknown storage dtype: storage '${key}' has type ${describe(type)}`);
  if (!info.dtype) throw new Error(`unknown storage dtype: storage '${key}' is ${info.torchName}, which latentkit cannot read`);
  if (typeof rawNumel !== 'number' || !Number.isSafeInteger(rawNumel) || rawNumel < 0) {
    throw new Error(`storage '${key}' has a bad element count (${describe(rawNumel)})`);
  }
  const elements = viewNumel ?? rawNumel;
  // An UntypedStorage counts bytes; every other storage type counts elements.
  const nbytes = info.untyped ? elements : elements * DTYPE_SIZE[info.dtype];
  return new StorageRef(key, info.dtype, info.torchName, byteOffset, nbytes, typeof location === 'string' ? location : '');
}

// ---------------------------------------------------------------------------------------------------
// legacy container

interface LegacyStorage {
  dataStart: number;
  /** Bytes the file really holds for it (less than declared when the file is truncated). */
  available: number;
  declared: number;
}

class LegacyBackend implements StorageBackend {
  constructor(private readonly path: string, private readonly fh: FileHandle, private readonly layout: Map<string, LegacyStorage>) {}

  async read(key: string, start: number, end: number, label: string, dst: Uint8Array): Promise<void> {
    const s = this.layout.get(key);
    if (!s) throw new Error(`${this.path}: tensor '${label}': its storage '${key}' is missing (the file ends before it)`);
    if (end > s.available) {
      throw new Error(`${this.path}: tensor '${label}': storage '${key}' is truncated: the file holds ${s.available} of its ${s.declared} bytes, the tensor needs ${end}`);
    }
    await readExact(this.fh, dst, s.dataStart + start, () => new Error(`${this.path}: tensor '${label}': storage '${key}' is cut short`));
  }

  async close(): Promise<void> {}
}

interface LegacyHead {
  root: PyValue;
  roots: Map<string, StorageRef>;
  keys: string[];
  end: number;
}

function legacyPersistentLoad(roots: Map<string, StorageRef>): (pid: PyValue) => PyValue {
  const views = new Map<string, StorageRef>();
  return (pid) => {
    if (!Array.isArray(pid)) throw new Error(`persistent id is a ${describe(pid)}, expected a tuple`);
    const t = pid as PyValue[];
    if (t[0] === 'module') {
      throw new PickleRefusedError('the checkpoint contains a pickled nn.Module (code), not only data', '', 'module');
    }
    if (t[0] !== 'storage' || t.length !== 6) throw new Error('unsupported persistent id: expected (\'storage\', type, key, location, numel, view)');
    const [, type, rawKey, location, rawNumel, view] = t;
    const key = storageKey(rawKey);
    let root = roots.get(key);
    if (!root) {
      root = makeStorage(key, type, location, rawNumel);
      roots.set(key, root);
    }
    if (view === null) return root;
    if (!isTuple(view) || view.length !== 3) throw new Error(`storage '${key}' has a malformed view description`);
    const viewKey = storageKey(view[0]);
    const cached = views.get(viewKey);
    if (cached) return cached;
    const offset = view[1];
    const size = view[2];
    if (typeof offset !== 'number' || typeof size !== 'number' || !Number.isSafeInteger(offset) || !Number.isSafeInteger(size) || offset < 0 || size < 0) {
      throw new Error(`storage view '${viewKey}' has a bad offset or size`);
    }
    const elem = DTYPE_SIZE[root.dtype];
    if ((offset + size) * elem > root.nbytes) throw new Error(`storage view '${viewKey}' reaches past its storage '${key}'`);
    const ref = makeStorage(key, type, location, rawNumel, offset * elem, size);
    views.set(viewKey, ref);
    return ref;
  };
}

function notTorch(path: string, detail: string, cause?: unknown): Error {
  return new Error(`${path}: not a PyTorch checkpoint (neither a zip archive nor a legacy torch.save stream): ${detail}`, { cause });
}

/** Parses the five pickles at the start of a legacy file. Throws PickleTruncatedError when `head` is too short. */
function parseLegacyHead(path: string, head: Uint8Array): LegacyHead {
  let magic;
  try {
    magic = unpickleAt(head, { source: path });
  } catch (e) {
    if (e instanceof PickleRefusedError || e instanceof PickleTruncatedError) throw e;
    throw notTorch(path, e instanceof Error ? e.message.replace(`${path}: `, '') : String(e), e);
  }
  if (magic.value !== LEGACY_MAGIC) throw notTorch(path, 'it does not start with torch\'s magic number');
  const proto = unpickleAt(head, { source: path, offset: magic.end });
  if (proto.value !== LEGACY_PROTOCOL) throw new Error(`${path}: unsupported legacy torch.save protocol version ${String(proto.value)}`);
  const sys = unpickleAt(head, { source: path, offset: proto.end });
  if (sys.value instanceof PyDict && sys.value.get('little_endian') === false) {
    throw new Error(`${path}: unsupported: this checkpoint was saved on a big-endian machine`);
  }
  const roots = new Map<string, StorageRef>();
  const main = unpickleAt(head, { source: path, offset: sys.end, persistentLoad: legacyPersistentLoad(roots) });
  const list = unpickleAt(head, { source: path, offset: main.end });
  if (!Array.isArray(list.value)) throw new Error(`${path}: malformed legacy checkpoint: the storage key list is a ${describe(list.value)}`);
  const keys = (list.value as PyValue[]).map((k) => {
    try {
      return storageKey(k);
    } catch (e) {
      throw new Error(`${path}: malformed legacy checkpoint: ${(e as Error).message}`, { cause: e });
    }
  });
  return { root: main.value, roots, keys, end: list.end };
}

async function openLegacy(path: string, fh: FileHandle, size: number, maxPickle: number): Promise<{ root: PyValue; backend: StorageBackend }> {
  // The pickled head has no length prefix: read a prefix, and read more when the pickle runs past it.
  let headLen = Math.min(size, 1 << 20);
  let head: LegacyHead;
  for (;;) {
    const buf = new Uint8Array(headLen);
    await readExact(fh, buf, 0, () => new Error(`${path}: the file shrank while being read`));
    try {
      head = parseLegacyHead(path, buf);
      break;
    } catch (e) {
      if (!(e instanceof PickleTruncatedError) || headLen >= size || e.needEnd > size) throw e;
      if (headLen >= maxPickle) throw new Error(`${path}: the pickled part of this legacy checkpoint is larger than ${maxPickle} bytes`, { cause: e });
      headLen = Math.min(size, maxPickle, Math.max(headLen * 4, e.needEnd + 65536));
    }
  }
  const layout = new Map<string, LegacyStorage>();
  let pos = head.end;
  const count = new Uint8Array(8);
  for (const key of head.keys) {
    const root = head.roots.get(key);
    if (!root) throw new Error(`${path}: malformed legacy checkpoint: storage '${key}' is listed but the pickle never uses it`);
    if (pos + 8 > size) break;
    await readExact(fh, count, pos, () => new Error(`${path}: the file shrank while being read`));
    const n = new DataView(count.buffer).getBigUint64(0, true);
    const declared = Number(n) * DTYPE_SIZE[root.dtype];
    if (!Number.isSafeInteger(declared)) throw new Error(`${path}: malformed legacy checkpoint: storage '${key}' claims ${n} elements`);
    const dataStart = pos + 8;
    layout.set(key, { dataStart, declared, available: Math.max(0, Math.min(declared, size - dataStart)) });
    pos = dataStart + declared;
  }
  return { root: head.root, backend: new LegacyBackend(path, fh, layout) };
}

// ---------------------------------------------------------------------------------------------------
// state dict extraction

function keyString(k: PyValue): string | undefined {
  if (typeof k === 'string') return k;
  if ((typeof k === 'number' && Number.isInteger(k)) || typeof k === 'bigint') return String(k);
  if (typeof k === 'boolean') return k ? 'True' : 'False';
  if (k instanceof PyGlobal) return k.qualifiedName;
  return undefined;
}

/** Visits every leaf under `v`, descending dicts, lists, tuples and ParameterDicts. */
function walk(path: string, v: PyValue, prefix: string, depth: number, onPath: Set<object>, leaf: (key: string, v: PyValue) => void): void {
  const join = (k: string): string => (prefix ? `${prefix}.${k}` : k);
  const descend = (children: Iterable<[string, PyValue]>, container: object): void => {
    if (onPath.has(container)) return; // a cycle through the memo: nothing new below
    if (depth >= MAX_NESTING) throw new Error(`${path}: the checkpoint nests containers deeper than ${MAX_NESTING} levels`);
    onPath.add(container);
    for (const [k, x] of children) walk(path, x, join(k), depth + 1, onPath, leaf);
    onPath.delete(container);
  };
  if (v instanceof PyDict) {
    descend((function* () {
      for (const [k, x] of v) {
        const ks = keyString(k);
        if (ks !== undefined) yield [ks, x] as [string, PyValue];
      }
    })(), v);
  } else if (Array.isArray(v)) {
    descend((v as PyValue[]).map((x, i) => [String(i), x] as [string, PyValue]), v);
  } else if (v instanceof PyObject && v.pyClass === PARAMETER_DICT) {
    // Textual-inversion files from the original repo keep string_to_param as an nn.ParameterDict.
    const parts: [string, PyValue][] = [];
    for (const attr of ['_parameters', '_buffers']) {
      const d = v.attributes.get(attr);
      if (d instanceof PyDict) for (const [k, x] of d) if (typeof k === 'string') parts.push([k, x]);
    }
    descend(parts, v);
  } else {
    leaf(prefix, v);
  }
}

function containsTensor(path: string, v: PyValue): boolean {
  let found = false;
  walk(path, v, '', 0, new Set(), (_k, x) => { if (x instanceof TensorRef) found = true; });
  return found;
}

function extract(path: string, root: PyValue): { tensors: Map<string, TensorRef>; objects: Map<string, PyValue>; stateDictKey: string | null } {
  let stateDictKey: string | null = null;
  let source = root;
  if (root instanceof PyDict) {
    for (const w of WRAPPER_KEYS) {
      const v = root.get(w);
      if (v instanceof PyDict && containsTensor(path, v)) {
        stateDictKey = w;
        source = v;
        break;
      }
    }
  }
  const tensors = new Map<string, TensorRef>();
  walk(path, source, '', 0, new Set(), (k, v) => {
    if (!(v instanceof TensorRef) || k === '') return;
    if (tensors.has(k)) throw new Error(`${path}: two tensors would both be named '${k}'`);
    tensors.set(k, v);
  });
  const objects = new Map<string, PyValue>();
  walk(path, root, '', 0, new Set(), (k, v) => {
    if (!(v instanceof TensorRef) && k !== '' && !objects.has(k)) objects.set(k, v);
  });
  return { tensors, objects, stateDictKey };
}

// ---------------------------------------------------------------------------------------------------
// the file

class TorchFileImpl implements TorchFile {
  readonly metadata: Readonly<Record<string, string>> = Object.freeze({});
  private closed = false;

  constructor(
    readonly path: string,
    readonly format: TorchFormat,
    readonly root: PyValue,
    readonly stateDictKey: string | null,
    private readonly tensors: Map<string, TensorRef>,
    readonly objects: ReadonlyMap<string, PyValue>,
    private readonly backend: StorageBackend,
    private readonly fh: FileHandle,
  ) {}

  keys(): string[] {
    return [...this.tensors.keys()];
  }

  has(key: string): boolean {
    return this.tensors.has(key);
  }

  info(key: string): TensorInfo | undefined {
    const t = this.tensors.get(key);
    return t ? { dtype: t.dtype, shape: t.shape } : undefined;
  }

  tensorRef(key: string): TensorRef | undefined {
    return this.tensors.get(key);
  }

  async read(key: string): Promise<Tensor> {
    const t = this.tensors.get(key);
    if (!t) throw new Error(`${this.path}: no tensor named '${key}'`);
    return this.readTensor(t, key);
  }

  async readTensor(ref: TensorRef, label = `storage ${ref.storage.key} at offset ${ref.storageOffset}`): Promise<Tensor> {
    if (this.closed) throw new Error(`${this.path}: tensor '${label}': the file is closed`);
    const { dtype, shape, stride, storageOffset, storage } = ref;
    const size = DTYPE_SIZE[dtype];
    const n = numel(shape);
    if (!Number.isSafeInteger(n * size)) throw new Error(`${this.path}: tensor '${label}' has an impossible shape [${shape.join(', ')}]`);
    if (n === 0) return new Tensor(dtype, shape);
    let last = storageOffset;
    for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
    const start = storage.byteOffset + storageOffset * size;
    const end = storage.byteOffset + (last + 1) * size;
    if (!Number.isSafeInteger(end) || end > storage.byteOffset + storage.nbytes) {
      throw new Error(`${this.path}: tensor '${label}' (offset ${storageOffset}, shape [${shape.join(', ')}], stride [${stride.join(', ')}]) reaches past the end of its storage '${storage.key}' (${storage.nbytes / size} ${dtype} elements)`);
    }
    let contiguous = true;
    let expect = 1;
    for (let i = shape.length - 1; i >= 0; i--) {
      if (shape[i] !== 1 && stride[i] !== expect) { contiguous = false; break; }
      expect *= shape[i];
    }
    const alloc = <T>(make: () => T): T => {
      try {
        return make();
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
        throw new Error(`${this.path}: tensor '${label}' of shape [${shape.join(', ')}] is too large to hold in memory`, { cause: e });
      }
    };
    if (contiguous) {
      // Straight into the tensor's own buffer: no second copy of the weights.
      const t = alloc(() => new Tensor(dtype, shape));
      await this.backend.read(storage.key, start, end, label, t.bytes());
      return t;
    }
    const buf = alloc(() => new Uint8Array(end - start));
    await this.backend.read(storage.key, start, end, label, buf);
    return alloc(() => fromStrided(dtype, shape, stride, 0, buf));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.backend.close();
    await this.fh.close();
  }
}

async function readZipRoot(path: string, fh: FileHandle, maxPickle: number): Promise<{ root: PyValue; backend: StorageBackend }> {
  const { zip, entries } = await ZipBackend.open(path);
  try {
    const pkls = [...entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkls.length === 0) throw new Error(`${path}: not a PyTorch checkpoint: the zip archive has no <folder>/data.pkl`);
    if (pkls.length > 1) throw new Error(`${path}: ambiguous PyTorch checkpoint: the zip archive holds several data.pkl (${pkls.slice(0, 4).join(', ')})`);
    const dir = pkls[0].slice(0, -'/data.pkl'.length);
    const backend = new ZipBackend(path, fh, zip, entries, dir);

    const order = entries.get(`${dir}/byteorder`);
    if (order && order.uncompressedSize <= 16) {
      const b = new Uint8Array(order.uncompressedSize);
      await backend.readEntry(order, 0, b.length, b, 'byteorder');
      if (new TextDecoder().decode(b).trim() === 'big') throw new Error(`${path}: unsupported: this checkpoint was saved on a big-endian machine`);
    }

    const pkl = entries.get(pkls[0]) as Entry;
    if (pkl.uncompressedSize > maxPickle) throw new Error(`${path}: ${pkls[0]} is ${pkl.uncompressedSize} bytes, more than the ${maxPickle} accepted`);
    const bytes = new Uint8Array(pkl.uncompressedSize);
    await backend.readEntry(pkl, 0, bytes.length, bytes, pkls[0]);
    const { value } = unpickleAt(bytes, { source: path, persistentLoad: zipPersistentLoad() });
    return { root: value, backend };
  } catch (e) {
    zip.close();
    throw e;
  }
}

function refusedWithPath(path: string, e: unknown): unknown {
  // Loaders that refuse without knowing the file get it added here.
  if (e instanceof PickleRefusedError && !e.message.startsWith(path)) {
    return new PickleRefusedError(`${path}: refused to load: ${e.message}`, path, e.global);
  }
  return e;
}

/**
 * Opens a PyTorch checkpoint without executing it. Tensors are found through the pickle and read from
 * disk only by `read`. Throws, naming the file, for anything outside the whitelist of data types.
 */
export async function openTorchFile(path: string, options: OpenTorchFileOptions = {}): Promise<TorchFile> {
  const maxPickle = options.maxPickleBytes ?? 1 << 30;
  const fh = await open(path, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = new Uint8Array(Math.min(size, 512));
    await readExact(fh, head, 0, () => new Error(`${path}: the file shrank while being read`));
    if (size === 0) throw new Error(`${path}: the file is empty`);
    const isZip = head[0] === 0x50 && head[1] === 0x4b && ((head[2] === 3 && head[3] === 4) || (head[2] === 5 && head[3] === 6));
    const isTar = head.length >= 262 && String.fromCharCode(...head.subarray(257, 262)) === 'ustar';
    let format: TorchFormat;
    let opened: { root: PyValue; backend: StorageBackend };
    if (isZip) {
      format = 'zip';
      opened = await readZipRoot(path, fh, maxPickle);
    } else if (isTar) {
      throw new Error(`${path}: unsupported: this is a tar-format checkpoint from torch before 0.4; load and re-save it with a current torch`);
    } else if (size >= 9 && head[8] === 0x7b && new DataView(head.buffer).getBigUint64(0, true) < BigInt(size)) {
      throw new Error(`${path}: not a PyTorch checkpoint: this looks like a safetensors file`);
    } else {
      format = 'legacy';
      opened = await openLegacy(path, fh, size, maxPickle);
    }
    try {
      const { tensors, objects, stateDictKey } = extract(path, opened.root);
      return new TorchFileImpl(path, format, opened.root, stateDictKey, tensors, objects, opened.backend, fh);
    } catch (e) {
      await opened.backend.close();
      throw e;
    }
  } catch (e) {
    await fh.close();
    throw refusedWithPath(path, e);
  }
}
