// A pickle reader that never runs code from the file.
//
// Python's unpickler imports whatever module.name a pickle asks for and calls it, so a `.ckpt` can run
// `os.system` the moment it is loaded. This machine understands every data opcode of protocols 0–5 but
// resolves GLOBAL / STACK_GLOBAL / INST only through SAFE_GLOBALS: a fixed table from "module.name" to
// TypeScript stand-ins that build plain values. A name outside the table stops the load at the opcode
// that names it, before anything could call it. Nothing here imports, evaluates or dispatches on
// strings taken from the file.

import type { DType } from '../tensor/dtype.js';
import { DTYPE_SIZE } from '../tensor/dtype.js';
import { halfToFloat } from '../tensor/half.js';

// ---------------------------------------------------------------------------------------------------
// Values

/**
 * A Python value as plain TypeScript: None → null, bool → boolean, int → number (bigint beyond 2^53),
 * float → number, str → string, bytes / bytearray → Uint8Array, list → array, tuple → frozen array,
 * dict → PyDict (a Map), set → Set, frozenset → PyFrozenSet. Whitelisted globals, placeholder
 * objects and lazy torch storages / tensors have classes of their own.
 */
export type PyValue =
  | null | boolean | number | bigint | string | Uint8Array
  | PyValue[] | PyTuple
  | PyDict | Set<PyValue>
  | PyGlobal | PyObject | StorageRef | TensorRef;

export type PyTuple = readonly PyValue[];

/** dict and collections.OrderedDict. A Map, so no key from the file can reach Object.prototype. */
export class PyDict extends Map<PyValue, PyValue> {
  /** 'dict' or the whitelisted class that made it ('collections.OrderedDict'). */
  readonly pyClass: string;
  /** Instance attributes set by BUILD: torch state dicts carry `_metadata` this way. */
  readonly attributes = new Map<string, PyValue>();

  constructor(pyClass = 'dict') {
    super();
    this.pyClass = pyClass;
  }
}

export class PyFrozenSet extends Set<PyValue> {}

/** An instance of a whitelisted class that is kept as inert data (Lightning callbacks, numpy arrays…). */
export class PyObject {
  readonly attributes = new Map<string, PyValue>();
  /** The raw BUILD state, whatever its shape (numpy keeps a tuple here). */
  state: PyValue | undefined = undefined;

  constructor(
    readonly pyClass: string,
    readonly args: readonly PyValue[],
    readonly kwargs: PyDict | null = null,
  ) {}
}

/** A storage named by a persistent id: where tensor bytes live, never read during unpickling. */
export class StorageRef {
  constructor(
    /** The storage's key in its container (zip entry `data/<key>`, legacy storage key). */
    readonly key: string,
    /** Element type the storage was saved as (u8 for an UntypedStorage). */
    readonly dtype: DType,
    /** How the pickle named the type, for messages ('torch.HalfStorage'). */
    readonly torchType: string,
    /** Start of this storage inside the stored bytes of `key` (non-zero only for legacy views). */
    readonly byteOffset: number,
    /** Length in bytes as the pickle declares it. */
    readonly nbytes: number,
    readonly location: string,
  ) {}
}

/** A tensor as `_rebuild_tensor*` describes it: a strided view into a storage. Offsets count elements. */
export class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly dtype: DType,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
    readonly requiresGrad: boolean,
    readonly isParameter: boolean,
  ) {}

  withParameter(requiresGrad: boolean): TensorRef {
    return new TensorRef(this.storage, this.dtype, this.storageOffset, this.shape, this.stride, requiresGrad, true);
  }
}

/** What a storage class or dtype global stands for. `dtype` is null for types latentkit cannot hold. */
export interface StorageTypeInfo {
  readonly torchName: string;
  readonly dtype: DType | null;
  /** UntypedStorage: counts bytes, and the tensor's dtype comes from elsewhere. */
  readonly untyped: boolean;
}

type Args = readonly PyValue[];

interface GlobalSpec {
  /** REDUCE / OBJ / INST: `f(*args)`. Absent: the global may only be named, never called. */
  readonly call?: (args: Args, kwargs: PyDict | null) => PyValue;
  /** NEWOBJ / NEWOBJ_EX: `cls.__new__(cls, *args)`; only classes have it. */
  readonly construct?: (args: Args, kwargs: PyDict | null) => PyValue;
  readonly storageType?: StorageTypeInfo;
  /** torch.Tensor / Parameter, acceptable as the `new_type` of `_rebuild_from_type_v2`. */
  readonly tensorType?: boolean;
  /** A tensor rebuild function, acceptable as the `func` of `_rebuild_from_type_v2`. */
  readonly rebuildsTensor?: boolean;
}

/** A whitelisted global as it sits on the stack. */
export class PyGlobal {
  constructor(readonly module: string, readonly name: string, /** @internal */ readonly spec: GlobalSpec) {}

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

export function isTuple(v: PyValue | undefined): v is PyTuple {
  return Array.isArray(v) && Object.isFrozen(v);
}

export function isList(v: PyValue | undefined): v is PyValue[] {
  return Array.isArray(v) && !Object.isFrozen(v);
}

/** The storage type a persistent id or `_rebuild_tensor_v3` names, if it is one. */
export function storageTypeOf(v: PyValue | undefined): StorageTypeInfo | undefined {
  return v instanceof PyGlobal ? v.spec.storageType : undefined;
}

/** A short Python-ish name for a value's type, for error messages. */
export function describe(v: PyValue | undefined): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'None';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'bigint') return 'int';
  if (typeof v === 'string') return 'str';
  if (v instanceof Uint8Array) return 'bytes';
  if (Array.isArray(v)) return Object.isFrozen(v) ? 'tuple' : 'list';
  if (v instanceof PyDict) return v.pyClass;
  if (v instanceof PyFrozenSet) return 'frozenset';
  if (v instanceof Set) return 'set';
  if (v instanceof PyGlobal) return `global '${v.qualifiedName}'`;
  if (v instanceof PyObject) return `${v.pyClass} object`;
  if (v instanceof StorageRef) return `storage '${v.key}'`;
  return 'tensor';
}

// ---------------------------------------------------------------------------------------------------
// Errors

/** Any failure to read a pickle. The message starts with the file it came from. */
export class PickleError extends Error {
  constructor(message: string, readonly source: string) {
    super(message);
    this.name = 'PickleError';
  }
}

/** The pickle asked for something that would run code (or could not be proven not to). */
export class PickleRefusedError extends PickleError {
  constructor(message: string, source: string, readonly global: string) {
    super(message, source);
    this.name = 'PickleRefusedError';
  }
}

/** The input ended before the pickle did. `needEnd` is the first byte position that would have helped. */
export class PickleTruncatedError extends PickleError {
  constructor(message: string, source: string, readonly needEnd: number) {
    super(message, source);
    this.name = 'PickleTruncatedError';
  }
}

/** Thrown by stand-ins and persistent loaders; the machine adds the file and the position. */
class DataError extends Error {}

// ---------------------------------------------------------------------------------------------------
// Conversions used by the stand-ins

function toInt(v: PyValue | undefined, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new DataError(`${what} must be an int, got ${describe(v)}`);
}

function toIndex(v: PyValue | undefined, what: string): number {
  const n = toInt(v, what);
  if (n < 0) throw new DataError(`${what} must not be negative, got ${n}`);
  return n;
}

function toIndexList(v: PyValue | undefined, what: string): number[] {
  if (!Array.isArray(v)) throw new DataError(`${what} must be a tuple of ints, got ${describe(v)}`);
  return (v as PyValue[]).map((x, i) => toIndex(x, `${what}[${i}]`));
}

function items(v: PyValue | undefined, what: string): PyValue[] {
  if (Array.isArray(v)) return [...(v as PyValue[])];
  if (v instanceof Set) return [...v];
  if (v instanceof PyDict) return [...v.keys()];
  throw new DataError(`${what} expects an iterable, got ${describe(v)}`);
}

function arity(name: string, args: Args, min: number, max = min): void {
  if (args.length < min || args.length > max) {
    const want = min === max ? `${min}` : `${min} to ${max}`;
    throw new DataError(`${name} takes ${want} arguments, the pickle passes ${args.length}`);
  }
}

function noKwargs(name: string, kwargs: PyDict | null): void {
  if (kwargs && kwargs.size > 0) throw new DataError(`${name} does not take keyword arguments here`);
}

function latin1(s: string, what: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) throw new DataError(`${what}: character U+${c.toString(16)} is not latin-1`);
    out[i] = c;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// The whitelist

function rebuildTensor(name: string, args: Args, dtypeArg?: PyValue): TensorRef {
  const storage = args[0];
  if (!(storage instanceof StorageRef)) {
    throw new DataError(`${name} expects a storage as its first argument, got ${describe(storage)}`);
  }
  const offset = toIndex(args[1], `${name} storage_offset`);
  const shape = toIndexList(args[2], `${name} size`);
  const stride = toIndexList(args[3], `${name} stride`);
  if (shape.length !== stride.length) {
    throw new DataError(`${name}: size [${shape.join(', ')}] and stride [${stride.join(', ')}] differ in length`);
  }
  let dtype = storage.dtype;
  if (dtypeArg !== undefined) {
    const info = storageTypeOf(dtypeArg);
    if (!info) throw new DataError(`${name} expects a dtype, got ${describe(dtypeArg)}`);
    if (!info.dtype) throw new DataError(`unsupported tensor dtype ${info.torchName}`);
    dtype = info.dtype;
  }
  // A byte storage reinterpreted as a wider type must hold whole elements from its offset on.
  if (storage.nbytes % DTYPE_SIZE[dtype] !== 0 && storage.dtype !== dtype) {
    throw new DataError(`${name}: a ${storage.nbytes}-byte storage cannot hold ${dtype} elements`);
  }
  const requiresGrad = args.length > 4 && args[4] === true;
  return new TensorRef(storage, dtype, offset, shape, stride, requiresGrad, false);
}

function asTensor(v: PyValue | undefined, what: string): TensorRef {
  if (!(v instanceof TensorRef)) throw new DataError(`${what} expects a tensor, got ${describe(v)}`);
  return v;
}

function placeholder(pyClass: string): GlobalSpec {
  const make = (args: Args, kwargs: PyDict | null): PyValue => new PyObject(pyClass, args, kwargs);
  return { call: make, construct: make };
}

function decodeNumpyScalar(dtype: PyValue | undefined, raw: PyValue | undefined): PyValue | undefined {
  if (!(dtype instanceof PyObject) || dtype.pyClass !== 'numpy.dtype' || !(raw instanceof Uint8Array)) return undefined;
  const code = dtype.args[0];
  const order = isTuple(dtype.state ?? null) ? (dtype.state as PyTuple)[1] : '<';
  if (typeof code !== 'string' || order === '>') return undefined;
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const want: Record<string, number> = { f8: 8, f4: 4, f2: 2, i8: 8, i4: 4, i2: 2, i1: 1, u8: 8, u4: 4, u2: 2, u1: 1, b1: 1 };
  if (!Object.hasOwn(want, code) || raw.byteLength !== want[code]) return undefined;
  switch (code) {
    case 'f8': return view.getFloat64(0, true);
    case 'f4': return view.getFloat32(0, true);
    case 'f2': return halfToFloat(view.getUint16(0, true));
    case 'i8': { const b = view.getBigInt64(0, true); return Number.isSafeInteger(Number(b)) ? Number(b) : b; }
    case 'u8': { const b = view.getBigUint64(0, true); return Number.isSafeInteger(Number(b)) ? Number(b) : b; }
    case 'i4': return view.getInt32(0, true);
    case 'u4': return view.getUint32(0, true);
    case 'i2': return view.getInt16(0, true);
    case 'u2': return view.getUint16(0, true);
    case 'i1': return view.getInt8(0);
    case 'u1': return view.getUint8(0);
    default: return view.getUint8(0) !== 0;
  }
}

function buildWhitelist(): Map<string, GlobalSpec> {
  const table = new Map<string, GlobalSpec>();
  const add = (names: string | string[], spec: GlobalSpec): void => {
    for (const n of Array.isArray(names) ? names : [names]) table.set(n, spec);
  };

  // Containers.
  const ordered = (args: Args, kwargs: PyDict | null): PyValue => {
    arity('OrderedDict', args, 0, 1);
    noKwargs('OrderedDict', kwargs);
    const d = new PyDict('collections.OrderedDict');
    if (args.length === 1) {
      const src = args[0];
      if (src instanceof PyDict) for (const [k, v] of src) d.set(k, v);
      else {
        for (const pair of items(src, 'OrderedDict')) {
          if (!Array.isArray(pair) || pair.length !== 2) throw new DataError('OrderedDict expects (key, value) pairs');
          d.set(pair[0], pair[1]);
        }
      }
    }
    return d;
  };
  add('collections.OrderedDict', { call: ordered, construct: () => new PyDict('collections.OrderedDict') });

  const makeSet = (frozen: boolean) => (args: Args, kwargs: PyDict | null): PyValue => {
    arity(frozen ? 'frozenset' : 'set', args, 0, 1);
    noKwargs('set', kwargs);
    const s = frozen ? new PyFrozenSet() : new Set<PyValue>();
    if (args.length === 1) for (const x of items(args[0], 'set')) s.add(x);
    return s;
  };
  add(['builtins.set', '__builtin__.set'], { call: makeSet(false), construct: () => new Set<PyValue>() });
  add(['builtins.frozenset', '__builtin__.frozenset'], { call: makeSet(true), construct: () => new PyFrozenSet() });

  // bytes / bytearray from bytes or a latin-1 str only: an int argument would allocate that many bytes.
  const makeBytes = (name: string) => (args: Args, kwargs: PyDict | null): PyValue => {
    noKwargs(name, kwargs);
    arity(name, args, 0, 2);
    if (args.length === 0) return new Uint8Array(0);
    const src = args[0];
    if (src instanceof Uint8Array && args.length === 1) return src.slice();
    if (typeof src === 'string' && args.length === 2 && typeof args[1] === 'string'
      && ['latin1', 'latin-1', 'iso-8859-1', 'iso8859-1'].includes(args[1].toLowerCase())) {
      return latin1(src, name);
    }
    throw new DataError(`${name} is only accepted with bytes or a latin-1 str, got ${describe(src)}`);
  };
  add(['builtins.bytearray', '__builtin__.bytearray'], { call: makeBytes('bytearray') });
  add(['builtins.bytes', '__builtin__.bytes'], { call: makeBytes('bytes') });

  // Protocol 2 writes bytes as _codecs.encode(str, 'latin1').
  add('_codecs.encode', {
    call: (args, kwargs) => {
      noKwargs('_codecs.encode', kwargs);
      arity('_codecs.encode', args, 1, 3);
      const [s, enc = 'utf-8'] = args;
      if (typeof s !== 'string' || typeof enc !== 'string') throw new DataError('_codecs.encode expects (str, encoding)');
      const e = enc.toLowerCase().replace('_', '-');
      if (['latin1', 'latin-1', 'iso-8859-1', 'iso8859-1'].includes(e)) return latin1(s, '_codecs.encode');
      if (e === 'utf-8' || e === 'utf8') return new TextEncoder().encode(s);
      throw new DataError(`_codecs.encode with encoding '${enc}' is not supported`);
    },
  });

  // Tensors.
  add('torch._utils._rebuild_tensor', {
    rebuildsTensor: true,
    call: (args, kw) => { noKwargs('_rebuild_tensor', kw); arity('_rebuild_tensor', args, 4); return rebuildTensor('_rebuild_tensor', args); },
  });
  add('torch._utils._rebuild_tensor_v2', {
    rebuildsTensor: true,
    call: (args, kw) => { noKwargs('_rebuild_tensor_v2', kw); arity('_rebuild_tensor_v2', args, 6, 7); return rebuildTensor('_rebuild_tensor_v2', args); },
  });
  // Used by torch ≥ 2.1 for dtypes without a legacy storage class (fp8, uint16…): storage is untyped.
  add('torch._utils._rebuild_tensor_v3', {
    rebuildsTensor: true,
    call: (args, kw) => { noKwargs('_rebuild_tensor_v3', kw); arity('_rebuild_tensor_v3', args, 7, 8); return rebuildTensor('_rebuild_tensor_v3', args, args[6]); },
  });
  add('torch._utils._rebuild_parameter', {
    rebuildsTensor: true,
    call: (args, kw) => {
      noKwargs('_rebuild_parameter', kw);
      arity('_rebuild_parameter', args, 3);
      return asTensor(args[0], '_rebuild_parameter').withParameter(args[1] === true);
    },
  });
  add('torch._utils._rebuild_parameter_with_state', {
    rebuildsTensor: true,
    call: (args, kw) => {
      noKwargs('_rebuild_parameter_with_state', kw);
      arity('_rebuild_parameter_with_state', args, 4);
      return asTensor(args[0], '_rebuild_parameter_with_state').withParameter(args[1] === true);
    },
  });
  // Tensors with Python attributes: (func, new_type, args, state). Only tensor types and rebuild
  // functions are accepted, so this cannot become a generic "call f with args".
  add('torch._tensor._rebuild_from_type_v2', {
    call: (args, kw) => {
      noKwargs('_rebuild_from_type_v2', kw);
      arity('_rebuild_from_type_v2', args, 4);
      const [func, newType, inner] = args;
      if (!(func instanceof PyGlobal) || !func.spec.rebuildsTensor || !func.spec.call) {
        throw new DataError(`_rebuild_from_type_v2 expects a tensor rebuild function, got ${describe(func)}`);
      }
      if (!(newType instanceof PyGlobal) || !newType.spec.tensorType) {
        throw new DataError(`_rebuild_from_type_v2 only rebuilds torch.Tensor or Parameter, got ${describe(newType)}`);
      }
      if (!Array.isArray(inner)) throw new DataError('_rebuild_from_type_v2 expects an argument tuple');
      const t = asTensor(func.spec.call(inner as PyValue[], null), '_rebuild_from_type_v2');
      return newType.name === 'Parameter' ? t.withParameter(t.requiresGrad) : t;
    },
  });
  add('torch.Tensor', { tensorType: true });
  const parameter = (args: Args, kwargs: PyDict | null): PyValue => {
    noKwargs('Parameter', kwargs);
    arity('Parameter', args, 1, 2);
    return asTensor(args[0], 'Parameter').withParameter(args.length < 2 || args[1] === true);
  };
  add('torch.nn.parameter.Parameter', { tensorType: true, call: parameter, construct: parameter });
  add('torch.Size', {
    call: (args, kw) => {
      noKwargs('torch.Size', kw);
      arity('torch.Size', args, 0, 1);
      return Object.freeze(args.length ? toIndexList(items(args[0], 'torch.Size'), 'torch.Size') : []);
    },
  });
  add('torch.device', {
    call: (args, kw) => {
      arity('torch.device', args, 1, 2);
      if (typeof args[0] !== 'string') throw new DataError('torch.device expects a device name');
      return new PyObject('torch.device', args, kw);
    },
  });

  // Storage classes name the element type of a persistent id; they are never called.
  const storages: Record<string, DType> = {
    FloatStorage: 'f32', HalfStorage: 'f16', BFloat16Storage: 'bf16', DoubleStorage: 'f64',
    LongStorage: 'i64', IntStorage: 'i32', ShortStorage: 'i16', CharStorage: 'i8', ByteStorage: 'u8',
    BoolStorage: 'bool',
  };
  for (const [name, dtype] of Object.entries(storages)) {
    add(`torch.${name}`, { storageType: { torchName: `torch.${name}`, dtype, untyped: false } });
  }
  for (const name of ['torch.storage.UntypedStorage', 'torch.UntypedStorage']) {
    add(name, { storageType: { torchName: name, dtype: 'u8', untyped: true } });
  }
  // dtype objects pickle as GLOBAL torch.float16 etc. Types latentkit has no DType for are still
  // nameable, so a file using them fails with "unsupported dtype" rather than a refused global.
  const dtypes: Record<string, DType | null> = {
    float32: 'f32', float16: 'f16', bfloat16: 'bf16', float64: 'f64', int64: 'i64', int32: 'i32',
    int16: 'i16', int8: 'i8', uint8: 'u8', bool: 'bool', float8_e4m3fn: 'f8e4m3', float8_e5m2: 'f8e5m2',
    uint16: null, uint32: null, uint64: null, complex32: null, complex64: null, complex128: null,
    float8_e4m3fnuz: null, float8_e5m2fnuz: null,
  };
  for (const [name, dtype] of Object.entries(dtypes)) {
    add(`torch.${name}`, { storageType: { torchName: `torch.${name}`, dtype, untyped: false } });
  }

  // numpy values appear in Lightning checkpoints (scores, RNG state). Scalars of plain types become
  // numbers; arrays stay opaque.
  const scalar: GlobalSpec = {
    call: (args, kw) => {
      noKwargs('numpy scalar', kw);
      arity('numpy scalar', args, 1, 2);
      return decodeNumpyScalar(args[0], args[1]) ?? new PyObject('numpy.scalar', args);
    },
  };
  add(['numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar'], scalar);
  add('numpy.dtype', placeholder('numpy.dtype'));
  add('numpy.ndarray', { construct: (args) => new PyObject('numpy.ndarray', args) });
  add(['numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct'], {
    call: (args, kw) => {
      noKwargs('_reconstruct', kw);
      arity('_reconstruct', args, 3);
      const cls = args[0];
      if (!(cls instanceof PyGlobal) || cls.qualifiedName !== 'numpy.ndarray') {
        throw new DataError(`numpy _reconstruct only builds numpy.ndarray, got ${describe(cls)}`);
      }
      return new PyObject('numpy.ndarray', args.slice(1));
    },
  });

  // Training-framework objects that ride along in real checkpoints; kept as inert data.
  add([
    'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint',
    'lightning.pytorch.callbacks.model_checkpoint.ModelCheckpoint',
  ], placeholder('pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint'));
  add('torch.nn.modules.container.ParameterDict', placeholder('torch.nn.modules.container.ParameterDict'));
  return table;
}

const WHITELIST = buildWhitelist();

/** Every "module.name" a pickle may import. Anything else is refused. */
export const SAFE_GLOBALS: readonly string[] = Object.freeze([...WHITELIST.keys()].sort());

// ---------------------------------------------------------------------------------------------------
// The machine

export interface UnpickleOptions {
  /** Named in every error message (normally the checkpoint's path). */
  source?: string;
  /** Where the pickle starts in `data` (several pickles can follow each other). */
  offset?: number;
  /** Resolves PERSID / BINPERSID ids; without it a pickle that uses them is refused. */
  persistentLoad?: (pid: PyValue) => PyValue;
  /** Deepest MARK nesting accepted. */
  maxDepth?: number;
  /** Most values on the stack at once. */
  maxStack?: number;
}

export interface UnpickleResult {
  value: PyValue;
  /** Position just after the STOP opcode. */
  end: number;
}

const OPNAMES: Record<number, string> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT',
  0x4a: 'BININT', 0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID',
  0x51: 'BINPERSID', 0x52: 'REDUCE', 0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND', 0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT',
  0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET', 0x69: 'INST', 0x6a: 'LONG_BINGET',
  0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT', 0x72: 'LONG_BINPUT',
  0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1',
  0x86: 'TUPLE2', 0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4',
  0x42: 'BINBYTES', 0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8',
  0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET', 0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX',
  0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME', 0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

/** Python caps int('…') at 4300 digits; beyond that BigInt parsing turns quadratic. */
const MAX_INT_DIGITS = 4300;
const MAX_LONG_BYTES = 4096;
/** Attribute names that would reach JavaScript object machinery if ever copied onto a plain object. */
const FORBIDDEN_ATTRIBUTES = new Set(['__proto__', 'constructor', 'prototype']);

const utf8 = new TextDecoder('utf-8', { fatal: true });

function isHashable(v: PyValue): boolean {
  return !(isList(v) || v instanceof PyDict || (v instanceof Set && !(v instanceof PyFrozenSet)));
}

/** Bytes as latin-1 text, in slices so huge inputs cannot overflow the argument list. */
function latin1Text(b: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < b.length; i += 8192) parts.push(String.fromCharCode(...b.subarray(i, i + 8192)));
  return parts.join('');
}

function clip(s: string): string {
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

class Machine {
  private pos: number;
  private readonly stack: PyValue[] = [];
  private readonly marks: number[] = [];
  private readonly memo = new Map<number, PyValue>();
  private readonly source: string;
  private readonly maxDepth: number;
  private readonly maxStack: number;
  private opStart = 0;
  private op = 0;

  private readonly data: Uint8Array;

  constructor(data: Uint8Array, private readonly options: UnpickleOptions) {
    // A Buffer's slice() is a view; a plain Uint8Array's is a copy, which is what bytes values need.
    this.data = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.pos = options.offset ?? 0;
    this.source = options.source ?? 'pickle';
    this.maxDepth = options.maxDepth ?? 2048;
    this.maxStack = options.maxStack ?? 4_000_000;
  }

  run(): UnpickleResult {
    try {
      return this.loop();
    } catch (e) {
      if (e instanceof PickleError) throw e;
      const msg = e instanceof Error ? e.message : String(e);
      const name = OPNAMES[this.op] ?? `0x${this.op.toString(16)}`;
      throw new PickleError(`${this.source}: ${msg} (opcode ${name} at byte ${this.opStart} of the pickle)`, this.source);
    }
  }

  // ----- input

  private truncated(needEnd: number, what: string): never {
    const name = OPNAMES[this.op] ?? 'opcode';
    throw new PickleTruncatedError(
      `${this.source}: the pickle is truncated: ${name} at byte ${this.opStart} ${what}, but the input ends at byte ${this.data.length}`,
      this.source, needEnd,
    );
  }

  private take(n: number): Uint8Array {
    if (n > this.data.length - this.pos) this.truncated(this.pos + n, `needs ${n} more bytes`);
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  private u8(): number {
    if (this.pos >= this.data.length) this.truncated(this.pos + 1, 'needs 1 more byte');
    return this.data[this.pos++];
  }

  private view(n: number): DataView {
    const b = this.take(n);
    return new DataView(b.buffer, b.byteOffset, n);
  }

  /** A length prefix; checked against what is left before anything is allocated. */
  private length(bytes: 1 | 4 | 8, signed = false): number {
    let n: number;
    if (bytes === 1) n = this.u8();
    else if (bytes === 4) { const v = this.view(4); n = signed ? v.getInt32(0, true) : v.getUint32(0, true); }
    else {
      const big = this.view(8).getBigUint64(0, true);
      n = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
    }
    if (n < 0) throw new DataError(`negative length ${n}`);
    if (n > this.data.length - this.pos) this.truncated(this.pos + n, `claims ${n} bytes of data`);
    return n;
  }

  private line(): Uint8Array {
    const nl = this.data.indexOf(0x0a, this.pos);
    if (nl < 0) this.truncated(this.data.length + 1, 'has no end of line');
    const out = this.data.subarray(this.pos, nl);
    this.pos = nl + 1;
    return out;
  }

  private asciiLine(): string {
    return latin1Text(this.line());
  }

  private utf8Line(): string {
    return decodeUtf8(this.line());
  }

  // ----- stack

  private base(): number {
    return this.marks.length ? this.marks[this.marks.length - 1] : 0;
  }

  private push(v: PyValue): void {
    if (this.stack.length >= this.maxStack) throw new DataError(`the pickle stack grew past ${this.maxStack} values`);
    this.stack.push(v);
  }

  private pop(): PyValue {
    if (this.stack.length <= this.base()) throw new DataError('malformed pickle: stack underflow');
    return this.stack.pop() as PyValue;
  }

  private top(): PyValue {
    if (this.stack.length <= this.base()) throw new DataError('malformed pickle: stack underflow');
    return this.stack[this.stack.length - 1];
  }

  private popMark(): PyValue[] {
    if (!this.marks.length) throw new DataError('malformed pickle: no MARK to pop to');
    const at = this.marks.pop() as number;
    return this.stack.splice(at);
  }

  // ----- globals

  private resolve(module: string, name: string): PyGlobal {
    const qualified = `${module}.${name}`;
    const spec = WHITELIST.get(qualified);
    if (!spec) {
      throw new PickleRefusedError(
        `${this.source}: refused to load: the pickle imports global '${clip(qualified)}', which is not on the list of types a checkpoint may contain`,
        this.source, qualified,
      );
    }
    return new PyGlobal(module, name, spec);
  }

  private call(fn: PyValue, args: PyValue, kwargs: PyDict | null, how: 'call' | 'construct'): PyValue {
    if (!(fn instanceof PyGlobal)) throw new DataError(`malformed pickle: cannot call ${describe(fn)}`);
    if (!Array.isArray(args)) throw new DataError(`malformed pickle: arguments must be a tuple, got ${describe(args)}`);
    const impl = fn.spec[how];
    if (!impl) {
      const what = how === 'call' ? 'called' : 'instantiated with NEWOBJ';
      throw new DataError(`the pickle tries to use ${fn.qualifiedName} in a way it cannot be (${what})`);
    }
    return impl(args as PyValue[], kwargs);
  }

  private build(inst: PyValue, state: PyValue): void {
    // A tensor's own state (requires_grad, hooks) carries nothing a state dict needs.
    if (inst instanceof TensorRef) return;
    let attrs: Map<string, PyValue>;
    if (inst instanceof PyDict) attrs = inst.attributes;
    else if (inst instanceof PyObject) {
      inst.state = state;
      attrs = inst.attributes;
    } else {
      throw new DataError(`malformed pickle: BUILD cannot set state on ${describe(inst)}`);
    }
    const parts: PyValue[] = isTuple(state) && state.length === 2 ? [state[0], state[1]] : [state];
    for (const part of parts) {
      if (!(part instanceof PyDict)) continue;
      for (const [k, v] of part) {
        if (typeof k !== 'string') throw new DataError(`malformed pickle: attribute name must be a str, got ${describe(k)}`);
        if (FORBIDDEN_ATTRIBUTES.has(k)) {
          throw new PickleRefusedError(
            `${this.source}: refused to load: the pickle sets attribute '${k}' on ${describe(inst)}`,
            this.source, k,
          );
        }
        attrs.set(k, v);
      }
    }
  }

  private setItem(d: PyValue, k: PyValue, v: PyValue): void {
    if (!(d instanceof PyDict)) throw new DataError(`malformed pickle: SETITEM on ${describe(d)}`);
    if (!isHashable(k)) throw new DataError(`malformed pickle: unhashable dict key of type ${describe(k)}`);
    d.set(k, v);
  }

  private persistent(pid: PyValue): PyValue {
    const load = this.options.persistentLoad;
    if (!load) throw new DataError('the pickle refers to external data (a persistent id), which this container does not provide');
    return load(pid);
  }

  // ----- the loop

  private loop(): UnpickleResult {
    const { data } = this;
    for (;;) {
      this.opStart = this.pos;
      if (this.pos >= data.length) {
        this.op = 0;
        this.truncated(this.pos + 1, 'expected another opcode');
      }
      const op = data[this.pos++];
      this.op = op;
      switch (op) {
        case 0x80: { // PROTO
          const v = this.u8();
          if (v > 5) throw new DataError(`unsupported pickle protocol ${v}`);
          break;
        }
        case 0x95: // FRAME: framing is a buffering hint; only its claimed size needs checking.
          this.length(8);
          break;
        case 0x2e: { // STOP
          const value = this.pop();
          return { value, end: this.pos };
        }

        // --- constants
        case 0x4e: this.push(null); break;
        case 0x88: this.push(true); break;
        case 0x89: this.push(false); break;
        case 0x4a: this.push(this.view(4).getInt32(0, true)); break;
        case 0x4b: this.push(this.u8()); break;
        case 0x4d: this.push(this.view(2).getUint16(0, true)); break;
        case 0x8a: this.push(decodeLong(this.take(this.length(1)))); break;
        case 0x8b: {
          const n = this.length(4, true);
          if (n > MAX_LONG_BYTES) throw new DataError(`an integer of ${n} bytes is too large`);
          this.push(decodeLong(this.take(n)));
          break;
        }
        case 0x49: { // INT: protocol 0 spells True / False as I01 / I00
          const s = this.asciiLine();
          if (s === '01') this.push(true);
          else if (s === '00') this.push(false);
          else this.push(parseIntText(s));
          break;
        }
        case 0x4c: { // LONG
          const s = this.asciiLine();
          this.push(parseIntText(s.endsWith('L') ? s.slice(0, -1) : s));
          break;
        }
        case 0x46: this.push(parseFloatText(this.asciiLine())); break;
        case 0x47: this.push(this.view(8).getFloat64(0, false)); break;

        // --- strings and bytes
        case 0x53: this.push(decodeBytesString(unquote(this.line()))); break;
        case 0x54: this.push(decodeBytesString(this.take(this.length(4, true)))); break;
        case 0x55: this.push(decodeBytesString(this.take(this.length(1)))); break;
        case 0x56: this.push(decodeRawUnicodeEscape(this.line())); break;
        case 0x58: this.push(decodeUtf8(this.take(this.length(4)))); break;
        case 0x8c: this.push(decodeUtf8(this.take(this.length(1)))); break;
        case 0x8d: this.push(decodeUtf8(this.take(this.length(8)))); break;
        case 0x42: this.push(this.take(this.length(4)).slice()); break;
        case 0x43: this.push(this.take(this.length(1)).slice()); break;
        case 0x8e: this.push(this.take(this.length(8)).slice()); break;
        case 0x96: this.push(this.take(this.length(8)).slice()); break;
        case 0x97: case 0x98:
          throw new DataError('out-of-band buffers (pickle protocol 5) are not supported in checkpoints');

        // --- containers
        case 0x5d: this.push([]); break;
        case 0x29: this.push(Object.freeze([])); break;
        case 0x7d: this.push(new PyDict()); break;
        case 0x8f: this.push(new Set<PyValue>()); break;
        case 0x6c: this.push(this.popMark()); break;
        case 0x74: this.push(Object.freeze(this.popMark())); break;
        case 0x85: { const a = this.pop(); this.push(Object.freeze([a])); break; }
        case 0x86: { const b = this.pop(); const a = this.pop(); this.push(Object.freeze([a, b])); break; }
        case 0x87: {
          const c = this.pop(); const b = this.pop(); const a = this.pop();
          this.push(Object.freeze([a, b, c]));
          break;
        }
        case 0x64: { // DICT
          const flat = this.popMark();
          if (flat.length % 2) throw new DataError('malformed pickle: DICT with an odd number of items');
          const d = new PyDict();
          for (let i = 0; i < flat.length; i += 2) this.setItem(d, flat[i], flat[i + 1]);
          this.push(d);
          break;
        }
        case 0x91: { // FROZENSET
          const s = new PyFrozenSet();
          for (const x of this.popMark()) s.add(x);
          this.push(s);
          break;
        }
        case 0x61: { // APPEND
          const v = this.pop();
          const list = this.top();
          if (!isList(list)) throw new DataError(`malformed pickle: APPEND to ${describe(list)}`);
          list.push(v);
          break;
        }
        case 0x65: { // APPENDS
          const vs = this.popMark();
          const list = this.top();
          if (!isList(list)) throw new DataError(`malformed pickle: APPENDS to ${describe(list)}`);
          for (const v of vs) list.push(v);
          break;
        }
        case 0x73: { // SETITEM
          const v = this.pop();
          const k = this.pop();
          this.setItem(this.top(), k, v);
          break;
        }
        case 0x75: { // SETITEMS
          const flat = this.popMark();
          if (flat.length % 2) throw new DataError('malformed pickle: SETITEMS with an odd number of items');
          const d = this.top();
          for (let i = 0; i < flat.length; i += 2) this.setItem(d, flat[i], flat[i + 1]);
          break;
        }
        case 0x90: { // ADDITEMS
          const vs = this.popMark();
          const s = this.top();
          if (!(s instanceof Set) || s instanceof PyFrozenSet) throw new DataError(`malformed pickle: ADDITEMS to ${describe(s)}`);
          for (const v of vs) s.add(v);
          break;
        }

        // --- stack manipulation
        case 0x28: // MARK
          if (this.marks.length >= this.maxDepth) throw new DataError(`the pickle nests deeper than ${this.maxDepth} levels`);
          this.marks.push(this.stack.length);
          break;
        case 0x30: // POP: with nothing above the mark, Python drops the mark itself
          if (this.stack.length > this.base()) this.stack.pop();
          else this.popMark();
          break;
        case 0x31: this.popMark(); break;
        case 0x32: this.push(this.top()); break;

        // --- memo
        case 0x70: this.memo.set(parseMemoIndex(this.asciiLine()), this.top()); break;
        case 0x71: this.memo.set(this.u8(), this.top()); break;
        case 0x72: this.memo.set(this.view(4).getUint32(0, true), this.top()); break;
        case 0x94: this.memo.set(this.memo.size, this.top()); break;
        case 0x67: this.push(this.memoGet(parseMemoIndex(this.asciiLine()))); break;
        case 0x68: this.push(this.memoGet(this.u8())); break;
        case 0x6a: this.push(this.memoGet(this.view(4).getUint32(0, true))); break;

        // --- globals and calls
        case 0x63: { // GLOBAL
          const module = this.utf8Line();
          const name = this.utf8Line();
          this.push(this.resolve(module, name));
          break;
        }
        case 0x93: { // STACK_GLOBAL
          const name = this.pop();
          const module = this.pop();
          if (typeof module !== 'string' || typeof name !== 'string') {
            throw new DataError('malformed pickle: STACK_GLOBAL needs two str values');
          }
          this.push(this.resolve(module, name));
          break;
        }
        case 0x69: { // INST: the class is checked before its arguments are even looked at
          const module = this.utf8Line();
          const name = this.utf8Line();
          const cls = this.resolve(module, name);
          this.push(this.call(cls, this.popMark(), null, 'call'));
          break;
        }
        case 0x6f: { // OBJ
          const args = this.popMark();
          if (!args.length) throw new DataError('malformed pickle: OBJ without a class');
          const cls = args.shift() as PyValue;
          this.push(this.call(cls, args, null, 'call'));
          break;
        }
        case 0x52: { // REDUCE
          const args = this.pop();
          const fn = this.pop();
          this.push(this.call(fn, args, null, 'call'));
          break;
        }
        case 0x81: { // NEWOBJ
          const args = this.pop();
          const cls = this.pop();
          this.push(this.call(cls, args, null, 'construct'));
          break;
        }
        case 0x92: { // NEWOBJ_EX
          const kwargs = this.pop();
          const args = this.pop();
          const cls = this.pop();
          if (!(kwargs instanceof PyDict)) throw new DataError('malformed pickle: NEWOBJ_EX keyword arguments must be a dict');
          this.push(this.call(cls, args, kwargs, 'construct'));
          break;
        }
        case 0x62: { // BUILD
          const state = this.pop();
          this.build(this.top(), state);
          break;
        }
        case 0x50: this.push(this.persistent(this.asciiLine())); break;
        case 0x51: { const pid = this.pop(); this.push(this.persistent(pid)); break; }
        case 0x82: case 0x83: case 0x84: {
          const code = op === 0x82 ? this.u8() : op === 0x83 ? this.view(2).getUint16(0, true) : this.view(4).getInt32(0, true);
          // The extension registry maps codes to arbitrary importable names; nothing here can vouch for them.
          throw new PickleRefusedError(
            `${this.source}: refused to load: the pickle imports a global through extension code ${code}, which is not on the list of types a checkpoint may contain`,
            this.source, `extension code ${code}`,
          );
        }
        default:
          throw new DataError(`malformed pickle: unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
      }
    }
  }

  private memoGet(i: number): PyValue {
    if (!this.memo.has(i)) throw new DataError(`malformed pickle: memo entry ${i} was never stored`);
    return this.memo.get(i) as PyValue;
  }
}

// ---------------------------------------------------------------------------------------------------
// Decoders

function decodeUtf8(b: Uint8Array): string {
  try {
    return utf8.decode(b);
  } catch {
    throw new DataError('malformed pickle: a string is not valid UTF-8');
  }
}

/** Python 2 str: torch.load decodes it as UTF-8; bytes that are not UTF-8 stay bytes. */
function decodeBytesString(b: Uint8Array): string | Uint8Array {
  try {
    return utf8.decode(b);
  } catch {
    return b.slice();
  }
}

function decodeLong(b: Uint8Array): number | bigint {
  const n = b.length;
  if (n === 0) return 0;
  if (n <= 6) {
    let v = 0;
    for (let i = n - 1; i >= 0; i--) v = v * 256 + b[i];
    return b[n - 1] & 0x80 ? v - 2 ** (8 * n) : v;
  }
  let hex = '';
  for (let i = n - 1; i >= 0; i--) hex += b[i].toString(16).padStart(2, '0');
  let v = BigInt(`0x${hex}`);
  if (b[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
  return Number.isSafeInteger(Number(v)) && BigInt(Number(v)) === v ? Number(v) : v;
}

function parseIntText(s: string): number | bigint {
  const t = s.trim();
  if (!/^[+-]?\d+$/.test(t)) throw new DataError(`malformed pickle: '${clip(t)}' is not an integer`);
  if (t.length > MAX_INT_DIGITS) throw new DataError(`an integer of ${t.length} digits is too large`);
  const v = BigInt(t);
  return Number.isSafeInteger(Number(v)) ? Number(v) : v;
}

function parseFloatText(s: string): number {
  const t = s.trim().toLowerCase();
  if (/^[+-]?(inf|infinity)$/.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/.test(t)) return NaN;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(t)) throw new DataError(`malformed pickle: '${clip(t)}' is not a float`);
  return Number(t);
}

function parseMemoIndex(s: string): number {
  const t = s.trim();
  if (!/^\d+$/.test(t) || t.length > 15) throw new DataError(`malformed pickle: bad memo index '${clip(t)}'`);
  return Number(t);
}

/** STRING's argument is a Python repr: quoted, with backslash escapes. */
function unquote(b: Uint8Array): Uint8Array {
  const q = b[0];
  if (b.length < 2 || (q !== 0x22 && q !== 0x27) || b[b.length - 1] !== q) {
    throw new DataError('malformed pickle: the STRING opcode argument must be quoted');
  }
  const body = b.subarray(1, b.length - 1);
  const out: number[] = [];
  const simple: Record<number, number> = {
    0x5c: 0x5c, 0x27: 0x27, 0x22: 0x22, 0x61: 7, 0x62: 8, 0x66: 12, 0x6e: 10, 0x72: 13, 0x74: 9, 0x76: 11,
  };
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== 0x5c || i + 1 >= body.length) { out.push(c); continue; }
    const e = body[++i];
    if (Object.hasOwn(simple, e)) out.push(simple[e]);
    else if (e === 0x0a) { /* line continuation */ }
    else if (e === 0x78) {
      const hex = String.fromCharCode(body[i + 1] ?? 0, body[i + 2] ?? 0);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new DataError('malformed pickle: bad \\x escape in STRING');
      out.push(parseInt(hex, 16));
      i += 2;
    } else if (e >= 0x30 && e <= 0x37) {
      let v = e - 0x30;
      for (let k = 0; k < 2 && body[i + 1] >= 0x30 && body[i + 1] <= 0x37; k++) v = v * 8 + (body[++i] - 0x30);
      out.push(v & 0xff);
    } else {
      out.push(0x5c, e);
    }
  }
  return Uint8Array.from(out);
}

/** Protocol 0 UNICODE: latin-1 text where an odd run of backslashes before u/U starts an escape. */
function decodeRawUnicodeEscape(b: Uint8Array): string {
  const parts: string[] = [];
  let i = 0;
  while (i < b.length) {
    if (b[i] !== 0x5c) {
      let j = i;
      while (j < b.length && b[j] !== 0x5c) j++;
      parts.push(latin1Text(b.subarray(i, j)));
      i = j;
      continue;
    }
    let j = i;
    while (j < b.length && b[j] === 0x5c) j++;
    const run = j - i;
    const next = b[j];
    if (run % 2 === 1 && (next === 0x75 || next === 0x55)) {
      parts.push('\\'.repeat(run - 1));
      const digits = next === 0x75 ? 4 : 8;
      const hex = String.fromCharCode(...b.subarray(j + 1, j + 1 + digits));
      if (hex.length !== digits || !/^[0-9a-fA-F]+$/.test(hex)) throw new DataError('malformed pickle: truncated \\u escape in UNICODE');
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff) throw new DataError('malformed pickle: \\U escape beyond U+10FFFF');
      parts.push(String.fromCodePoint(cp));
      i = j + 1 + digits;
    } else {
      parts.push('\\'.repeat(run));
      i = j;
    }
  }
  return parts.join('');
}

// ---------------------------------------------------------------------------------------------------
// Entry points

/** Reads one pickle starting at `options.offset` and says where it ended. */
export function unpickleAt(data: Uint8Array, options: UnpickleOptions = {}): UnpickleResult {
  return new Machine(data, options).run();
}

/** Reads one pickle. Throws PickleRefusedError for anything outside SAFE_GLOBALS. */
export function unpickle(data: Uint8Array, options: UnpickleOptions = {}): PyValue {
  return unpickleAt(data, options).value;
}
