import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import {
  PickleError, PickleRefusedError, PickleTruncatedError, PyDict, PyFrozenSet, PyObject, SAFE_GLOBALS, StorageRef,
  TensorRef, isTuple, unpickle, type PyValue,
} from './pickle.js';
import { OP, PickleWriter, writeTensor } from '../../test/fixtures/pickle/builders.js';

const FIXTURES = 'test/fixtures/pickle';
const enc = new TextEncoder();

function marker(): string {
  return join(tmpdir(), `latentkit-pickle-test-${randomUUID()}`);
}

function assertPrototypeClean(): void {
  const probe: Record<string, unknown> = {};
  assert.equal(probe.polluted, undefined);
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted'), false);
  assert.equal(Object.getPrototypeOf(probe), Object.prototype);
}

/** Runs `load`, expects a refusal naming `global` and `source`, and proves the payload never ran. */
function assertRefused(load: () => unknown, global: string, source: string, markerPath: string): void {
  rmSync(markerPath, { force: true });
  assert.throws(load, (e: unknown) => {
    assert.ok(e instanceof PickleRefusedError, `expected a refusal, got ${String(e)}`);
    assert.equal(
      e.message,
      `${source}: refused to load: the pickle imports global '${global}', which is not on the list of types a checkpoint may contain`,
    );
    return true;
  });
  assert.equal(existsSync(markerPath), false, 'the payload ran');
  assertPrototypeClean();
}

// ---------------------------------------------------------------------------------------------------
// data opcodes, from Python's own pickler at every protocol

for (let proto = 0; proto <= 5; proto++) {
  test(`values pickled by Python at protocol ${proto} read back exactly`, () => {
    const path = `${FIXTURES}/values_p${proto}.pkl`;
    const v = unpickle(readFileSync(path), { source: path });
    assert.ok(v instanceof PyDict);
    assert.equal(v.get('int'), 1);
    assert.equal(v.get('neg'), -300);
    assert.equal(v.get('i32'), 2 ** 31 - 1);
    assert.equal(v.get('big'), 2n ** 80n);
    assert.equal(v.get('neg_big'), -(2n ** 70n));
    assert.equal(v.get('float'), 1.25);
    assert.equal(v.get('str'), 'h\u00e9llo \u2603');
    assert.equal(v.get('esc'), 'a\\b\nc');
    assert.deepEqual(v.get('bytes'), new Uint8Array([0, 1, 255]));
    assert.deepEqual(v.get('bytearray'), enc.encode('ab'));
    assert.deepEqual(v.get('list'), [1, [2, 3]]);
    assert.ok(isTuple(v.get('tuple')));
    assert.deepEqual(v.get('tuple'), [1, 2, 3, 4]);
    assert.deepEqual(v.get('small_tuples'), [[], [1], [1, 2], [1, 2, 3]]);
    assert.deepEqual([...(v.get('set') as Set<PyValue>)], [7]);
    assert.ok(v.get('frozenset') instanceof PyFrozenSet);
    assert.deepEqual([...(v.get('frozenset') as Set<PyValue>)], [8]);
    assert.equal(v.get('none'), null);
    assert.deepEqual(v.get('bools'), [true, false]);
    const od = v.get('od');
    assert.ok(od instanceof PyDict);
    assert.equal(od.pyClass, 'collections.OrderedDict');
    assert.deepEqual([...od.entries()], [['a', 1], ['b', 2]]);
    const shared = v.get('shared') as PyValue[];
    assert.equal(shared[0], shared[1], 'the memo keeps shared objects shared');
    assert.deepEqual([...(v.get('int_keys') as PyDict).entries()], [[1, 'one'], [2, 'two']]);
  });
}

test('protocol 0 text opcodes: INT bools, LONG, FLOAT, quoted STRING escapes, UNICODE escapes, PUT/GET', () => {
  const w = new PickleWriter().mark().op(OP.LIST).line('p0')
    .op(OP.INT).line('42').op(OP.APPEND)
    .op(OP.INT).line('01').op(OP.APPEND)
    .op(OP.INT).line('00').op(OP.APPEND)
    .op(OP.LONG).line('-12345678901234567890L').op(OP.APPEND)
    .op(OP.FLOAT).line('-2.5e-3').op(OP.APPEND)
    .op(OP.FLOAT).line('inf').op(OP.APPEND)
    .op(OP.STRING).line(String.raw`'it\'s\x41\n\101'`).op(OP.APPEND)
    .op(OP.UNICODE).raw(new Uint8Array([0x63, 0x61, 0x66, 0xe9, 0x20])).raw(String.raw`\u2603\\u`).raw('\n').op(OP.APPEND)
    .mark().op(OP.INT).line('1').op(OP.INT).line('2').op(OP.TUPLE).op(OP.PUT).line('1').op(OP.APPEND)
    .mark().op(OP.STRING).line(`'k'`).op(OP.INT).line('7').op(OP.DICT).op(OP.APPEND)
    .op(OP.GET).line('1').op(OP.APPEND)
    .op(OP.NONE).op(OP.APPEND)
    .stop();
  const v = unpickle(w.toBytes()) as PyValue[];
  assert.deepEqual(v.slice(0, 6), [42, true, false, -12345678901234567890n, -0.0025, Infinity]);
  assert.equal(v[6], "it'sA\nA");
  assert.equal(v[7], 'caf\u00e9 \u2603\\\\u');
  assert.deepEqual(v[8], [1, 2]);
  assert.deepEqual([...(v[9] as PyDict).entries()], [['k', 7]]);
  assert.equal(v[10], v[8]);
  assert.equal(v[11], null);
});

test('binary opcodes: every int width, LONG4, strings, bytes, memo widths, DUP / POP / POP_MARK', () => {
  const w = new PickleWriter().proto(2).op(OP.EMPTY_LIST).mark()
    .op(OP.BININT).u32(0xfffffffe)
    .op(OP.BININT1, 200)
    .op(OP.BININT2).u16(60000)
    .long1(-129n)
    .op(OP.LONG4).u32(2).op(0x00, 0x80) // -32768
    .float(Math.PI)
    .op(OP.BINSTRING).u32(2).raw('py')
    .op(OP.SHORT_BINSTRING, 1).raw('s')
    .op(OP.SHORT_BINBYTES, 2, 1, 2)
    .bytes(new Uint8Array([3]))
    .shortStr('x').op(OP.LONG_BINPUT).u32(70000)
    .op(OP.POP)
    .op(OP.LONG_BINGET).u32(70000)
    .str('dup').op(OP.DUP)
    .mark().int(1).int(2).op(OP.POP_MARK)
    .mark().op(OP.POP) // POP with nothing above the mark drops the mark
    .op(OP.APPENDS).stop();
  const v = unpickle(w.toBytes()) as PyValue[];
  assert.deepEqual(v, [-2, 200, 60000, -129, -32768, Math.PI, 'py', 's', new Uint8Array([1, 2]), new Uint8Array([3]), 'x', 'dup', 'dup']);
});

test('protocol 4/5 opcodes written by hand: FRAME, BINUNICODE8, BINBYTES8, BYTEARRAY8, sets, MEMOIZE, NEWOBJ_EX', () => {
  const body = new PickleWriter()
    .op(OP.EMPTY_DICT).op(OP.MEMOIZE).mark()
    .shortStr('s8').str8('long string')
    .shortStr('b8').op(OP.BINBYTES8).u64(3).raw(new Uint8Array([9, 8, 7]))
    .shortStr('ba').op(OP.BYTEARRAY8).u64(1).raw(new Uint8Array([5]))
    .shortStr('set').op(OP.EMPTY_SET).mark().int(1).int(2).op(OP.ADDITEMS)
    .shortStr('fs').mark().int(3).op(OP.FROZENSET)
    .shortStr('od').shortStr('collections').op(OP.MEMOIZE).shortStr('OrderedDict').op(OP.MEMOIZE).op(OP.STACK_GLOBAL)
    .op(OP.EMPTY_TUPLE).op(OP.EMPTY_DICT).op(OP.NEWOBJ_EX).mark().shortStr('z').int(1).op(OP.SETITEMS)
    .shortStr('again').op(OP.BINGET, 1)
    .op(OP.SETITEMS).stop().toBytes();
  const bytes = new PickleWriter().proto(5).op(OP.FRAME).u64(body.length).raw(body).toBytes();
  const v = unpickle(bytes) as PyDict;
  assert.equal(v.get('s8'), 'long string');
  assert.deepEqual(v.get('b8'), new Uint8Array([9, 8, 7]));
  assert.deepEqual(v.get('ba'), new Uint8Array([5]));
  assert.deepEqual([...(v.get('set') as Set<PyValue>)], [1, 2]);
  assert.deepEqual([...(v.get('fs') as Set<PyValue>)], [3]);
  const od = v.get('od') as PyDict;
  assert.equal(od.pyClass, 'collections.OrderedDict');
  assert.equal(od.get('z'), 1);
  assert.equal(v.get('again'), 'collections');
});

test('torch globals become lazy references: storages and tensors are described, never read', () => {
  const w = new PickleWriter().proto(2);
  writeTensor(w, { storage: '7', type: 'HalfStorage', numel: 12, offset: 2, shape: [2, 3], stride: [1, 2] });
  const pids: PyValue[] = [];
  const t = unpickle(w.stop().toBytes(), {
    persistentLoad: (pid) => {
      pids.push(pid);
      return new StorageRef('7', 'f16', 'torch.HalfStorage', 0, 24, 'cpu');
    },
  });
  assert.ok(t instanceof TensorRef);
  assert.equal(t.dtype, 'f16');
  assert.equal(t.storageOffset, 2);
  assert.deepEqual(t.shape, [2, 3]);
  assert.deepEqual(t.stride, [1, 2]);
  assert.equal(pids.length, 1);
  assert.equal((pids[0] as PyValue[])[0], 'storage');
  assert.equal((pids[0] as PyValue[])[2], '7');
});

test('torch.Size and torch.device rebuild as plain data', () => {
  const w = new PickleWriter().proto(2).op(OP.EMPTY_LIST).mark()
    .global('torch', 'Size').ints([2, 3]).op(OP.TUPLE1, OP.REDUCE)
    .global('torch', 'device').str('cuda').int(0).op(OP.TUPLE2, OP.REDUCE)
    .op(OP.APPENDS).stop();
  const v = unpickle(w.toBytes()) as PyValue[];
  assert.deepEqual(v[0], [2, 3]);
  assert.ok(isTuple(v[0]));
  assert.ok(v[1] instanceof PyObject);
  assert.equal((v[1] as PyObject).pyClass, 'torch.device');
  assert.deepEqual((v[1] as PyObject).args, ['cuda', 0]);
});

test('the whitelist holds only data types and torch rebuild helpers', () => {
  for (const name of ['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch.FloatStorage', 'torch.float16',
    'numpy.core.multiarray.scalar', '_codecs.encode', 'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint']) {
    assert.ok(SAFE_GLOBALS.includes(name), name);
  }
  for (const name of ['torch.storage._load_from_bytes', 'builtins.getattr', 'builtins.eval', 'os.system', 'posix.system',
    'builtins.__import__', 'copyreg._reconstructor', 'torch.load', 'functools.partial', 'builtins.apply']) {
    assert.ok(!SAFE_GLOBALS.includes(name), name);
  }
});

// ---------------------------------------------------------------------------------------------------
// hostile pickles from Python's own pickler (make_fixtures.py checks each one does run under Python)

const pythonHostile: [string, string, string][] = [
  ['hostile_eval_p2.pkl', '__builtin__.eval', 'eval-p2'],
  ['hostile_eval_p4.pkl', 'builtins.eval', 'eval-p4'],
  ['hostile_exec.pkl', 'builtins.exec', 'exec'],
  ['hostile_subprocess_popen.pkl', 'subprocess.Popen', 'popen'],
  ['hostile_subprocess_check_output.pkl', 'subprocess.check_output', 'check-output'],
  ['hostile_getattr_chain.pkl', 'builtins.getattr', 'getattr'],
  ['hostile_import_first.pkl', 'builtins.__import__', 'import'],
  ['hostile_load_from_bytes.pkl', 'torch.storage._load_from_bytes', 'load-from-bytes'],
];

for (const [file, global, name] of pythonHostile) {
  test(`hostile: ${file} is refused at '${global}' and its payload never runs`, () => {
    const path = `${FIXTURES}/${file}`;
    assertRefused(() => unpickle(readFileSync(path), { source: path }), global, path, `/tmp/latentkit-pickle-marker-${name}`);
  });
}

// ---------------------------------------------------------------------------------------------------
// hostile pickles assembled opcode by opcode

test('hostile: STACK_GLOBAL assembled from memoised strings (posix.system) is refused', () => {
  const m = marker();
  const bytes = new PickleWriter().proto(4)
    .shortStr('posix').op(OP.MEMOIZE).shortStr('system').op(OP.MEMOIZE).op(OP.POP, OP.POP)
    .op(OP.BINGET, 0).op(OP.BINGET, 1).op(OP.STACK_GLOBAL)
    .str(`touch ${m}`).op(OP.TUPLE1, OP.REDUCE).stop().toBytes();
  assertRefused(() => unpickle(bytes, { source: 'memo.ckpt' }), 'posix.system', 'memo.ckpt', m);
});

test('hostile: INST os.system (protocol 0) is refused before its arguments are used', () => {
  const m = marker();
  const bytes = new PickleWriter().mark().op(OP.STRING).line(`'touch ${m}'`).op(OP.INST).line('os').line('system').stop().toBytes();
  assertRefused(() => unpickle(bytes, { source: 'inst.pt' }), 'os.system', 'inst.pt', m);
});

test('hostile: protocol 0 GLOBAL __builtin__.eval is refused', () => {
  const m = marker();
  const bytes = new PickleWriter().global('__builtin__', 'eval').mark()
    .op(OP.UNICODE).line(`open('${m}','w').close()`).op(OP.TUPLE, OP.REDUCE).stop().toBytes();
  assertRefused(() => unpickle(bytes, { source: 'p0.ckpt' }), '__builtin__.eval', 'p0.ckpt', m);
});

test('hostile: nt.system and webbrowser.open are refused', () => {
  const m = marker();
  const nt = new PickleWriter().proto(2).global('nt', 'system').str(`touch ${m}`).op(OP.TUPLE1, OP.REDUCE).stop().toBytes();
  assertRefused(() => unpickle(nt, { source: 'nt.pt' }), 'nt.system', 'nt.pt', m);
  const web = new PickleWriter().proto(2).global('webbrowser', 'open').str(`file://${m}`).op(OP.TUPLE1, OP.REDUCE).stop().toBytes();
  assertRefused(() => unpickle(web, { source: 'web.pt' }), 'webbrowser.open', 'web.pt', m);
});

test('hostile: a refused GLOBAL stops the load even when nothing ever calls it', () => {
  // The pickle ends right after the import: the refusal comes from GLOBAL itself, not from a REDUCE.
  const bytes = new PickleWriter().proto(2).global('os', 'system').toBytes();
  assertRefused(() => unpickle(bytes, { source: 'x.pt' }), 'os.system', 'x.pt', marker());
});

test('hostile: a __reduce__ payload deep inside a real-looking state dict is refused', () => {
  const m = marker();
  const w = new PickleWriter().proto(2).op(OP.EMPTY_DICT).str('state_dict').emptyOrderedDict().mark();
  writeTensor(w.str('model.w'), { storage: '0', numel: 4, shape: [4] });
  w.str('nested').op(OP.EMPTY_DICT).str('deeper').global('posix', 'system').str(`touch ${m}`).op(OP.TUPLE1, OP.REDUCE)
    .op(OP.SETITEM).op(OP.SETITEMS).op(OP.SETITEM).stop();
  const load = (): PyValue => unpickle(w.toBytes(), {
    source: 'sd.ckpt', persistentLoad: () => new StorageRef('0', 'f32', 'torch.FloatStorage', 0, 16, 'cpu'),
  });
  assertRefused(load, 'posix.system', 'sd.ckpt', m);
});

test('hostile: extension codes (EXT1/EXT2/EXT4) are refused', () => {
  for (const ext of [[OP.EXT1, 1], [OP.EXT2, 1, 0], [OP.EXT4, 1, 0, 0, 0]]) {
    const bytes = new PickleWriter().proto(2).op(...ext).op(OP.EMPTY_TUPLE, OP.REDUCE).stop().toBytes();
    assert.throws(() => unpickle(bytes, { source: 'ext.pt' }), (e: unknown) => e instanceof PickleRefusedError
      && /^ext\.pt: refused to load: the pickle imports a global through extension code 1/.test(e.message));
  }
});

test('hostile: BUILD with a __proto__ attribute is refused and pollutes nothing', () => {
  const state = (w: PickleWriter): PickleWriter => w.op(OP.EMPTY_DICT).str('__proto__')
    .op(OP.EMPTY_DICT).str('polluted').str('yes').op(OP.SETITEM).op(OP.SETITEM);
  const onObject = state(new PickleWriter().proto(2)
    .global('pytorch_lightning.callbacks.model_checkpoint', 'ModelCheckpoint').op(OP.EMPTY_TUPLE, OP.NEWOBJ))
    .op(OP.BUILD).stop().toBytes();
  const onDict = state(new PickleWriter().proto(2).emptyOrderedDict()).op(OP.BUILD).stop().toBytes();
  for (const bytes of [onObject, onDict]) {
    assert.throws(() => unpickle(bytes, { source: 'proto.ckpt' }), (e: unknown) => e instanceof PickleRefusedError
      && /^proto\.ckpt: refused to load: the pickle sets attribute '__proto__'/.test(e.message));
    assertPrototypeClean();
  }
});

test('a __proto__ key in data stays an ordinary dict key and pollutes nothing', () => {
  const bytes = new PickleWriter().proto(2).op(OP.EMPTY_DICT).mark()
    .str('__proto__').op(OP.EMPTY_DICT).str('polluted').str('yes').op(OP.SETITEM)
    .str('constructor').str('c')
    .op(OP.SETITEMS).stop().toBytes();
  const v = unpickle(bytes) as PyDict;
  assert.ok(v.get('__proto__') instanceof PyDict);
  assert.equal((v.get('__proto__') as PyDict).get('polluted'), 'yes');
  assert.equal(v.get('constructor'), 'c');
  assertPrototypeClean();
});

test('whitelisted globals cannot be turned into general calls', () => {
  const cases: [PickleWriter, RegExp][] = [
    // a storage class is a name, not a constructor
    [new PickleWriter().proto(2).global('torch', 'FloatStorage').int(1).op(OP.TUPLE1, OP.REDUCE), /cannot be \(called\)/],
    // _rebuild_from_type_v2 only forwards to tensor rebuild functions
    [new PickleWriter().proto(2).global('torch._tensor', '_rebuild_from_type_v2').mark()
      .global('collections', 'OrderedDict').global('torch', 'Tensor').op(OP.EMPTY_TUPLE, OP.EMPTY_DICT, OP.TUPLE, OP.REDUCE),
    /expects a tensor rebuild function/],
    // bytearray(n) would allocate n bytes
    [new PickleWriter().proto(2).global('builtins', 'bytearray').int(1 << 30).op(OP.TUPLE1, OP.REDUCE), /only accepted with bytes/],
    // _codecs.encode only produces bytes from text
    [new PickleWriter().proto(2).global('_codecs', 'encode').str('x').str('rot13').op(OP.TUPLE2, OP.REDUCE), /encoding 'rot13'/],
    // calling something that is not a global at all
    [new PickleWriter().proto(2).str('os.system').op(OP.EMPTY_TUPLE, OP.REDUCE), /cannot call str/],
    // NEWOBJ on a function
    [new PickleWriter().proto(2).global('torch._utils', '_rebuild_tensor_v2').op(OP.EMPTY_TUPLE, OP.NEWOBJ), /instantiated with NEWOBJ/],
    // BUILD on something that has no state
    [new PickleWriter().proto(2).op(OP.EMPTY_LIST).op(OP.EMPTY_DICT, OP.BUILD), /BUILD cannot set state on list/],
  ];
  for (const [w, re] of cases) {
    assert.throws(() => unpickle(w.stop().toBytes(), { source: 'c.pt' }), (e: unknown) => {
      assert.ok(e instanceof PickleError);
      assert.match(e.message, /^c\.pt: /);
      assert.match(e.message, re);
      return true;
    });
  }
});

// ---------------------------------------------------------------------------------------------------
// malformed input

function assertMalformed(bytes: Uint8Array, re: RegExp, kind: abstract new (...args: never[]) => PickleError = PickleError): void {
  assert.throws(() => unpickle(bytes, { source: 'bad.pkl' }), (e: unknown) => {
    assert.ok(e instanceof kind, `expected ${kind.name}, got ${String(e)}`);
    assert.match(e.message, /^bad\.pkl: /);
    assert.match(e.message, re);
    return true;
  });
}

test('malformed: a truncated stream is reported as truncated', () => {
  const full = readFileSync(`${FIXTURES}/values_p2.pkl`);
  for (const cut of [1, 10, full.length >> 1, full.length - 1]) {
    assertMalformed(full.subarray(0, cut), /truncated/, PickleTruncatedError);
  }
});

test('malformed: a length prefix claiming more than remains fails before allocating', () => {
  assertMalformed(new PickleWriter().proto(4).op(OP.BINUNICODE8).u64(2n ** 60n).raw('abc').toBytes(), /truncated.*claims/, PickleTruncatedError);
  assertMalformed(new PickleWriter().proto(3).op(OP.BINBYTES).u32(0xffffffff).toBytes(), /truncated/, PickleTruncatedError);
  assertMalformed(new PickleWriter().proto(5).op(OP.BYTEARRAY8).u64(1e12).toBytes(), /truncated/, PickleTruncatedError);
  assertMalformed(new PickleWriter().proto(4).op(OP.FRAME).u64(1e15).toBytes(), /truncated/, PickleTruncatedError);
  assertMalformed(new PickleWriter().proto(2).op(OP.BINSTRING).u32(0xfffffff0).toBytes(), /negative length/);
});

test('malformed: unknown opcode, stack underflow, missing memo, bad protocol', () => {
  assertMalformed(new Uint8Array([0x80, 0x02, 0xff]), /unknown opcode 0xff/);
  assertMalformed(new Uint8Array([0x80, 0x02, OP.TUPLE1, OP.STOP]), /stack underflow/);
  assertMalformed(new Uint8Array([0x80, 0x02, OP.STOP]), /stack underflow/);
  // popping across a MARK is underflow too
  assertMalformed(new PickleWriter().proto(2).int(1).mark().op(OP.TUPLE2).stop().toBytes(), /stack underflow/);
  assertMalformed(new PickleWriter().proto(2).op(OP.TUPLE).stop().toBytes(), /no MARK/);
  assertMalformed(new PickleWriter().proto(2).op(OP.BINGET, 5).stop().toBytes(), /memo entry 5 was never stored/);
  assertMalformed(new PickleWriter().proto(6).none().stop().toBytes(), /unsupported pickle protocol 6/);
});

test('malformed: wrong container types for APPEND / SETITEM / ADDITEMS', () => {
  assertMalformed(new PickleWriter().proto(2).op(OP.EMPTY_TUPLE).int(1).op(OP.APPEND).stop().toBytes(), /APPEND to tuple/);
  assertMalformed(new PickleWriter().proto(2).op(OP.EMPTY_LIST).int(1).int(2).op(OP.SETITEM).stop().toBytes(), /SETITEM on list/);
  assertMalformed(new PickleWriter().proto(4).op(OP.EMPTY_DICT).mark().int(1).op(OP.ADDITEMS).stop().toBytes(), /ADDITEMS to dict/);
  assertMalformed(new PickleWriter().proto(2).op(OP.EMPTY_DICT).op(OP.EMPTY_LIST).int(1).op(OP.SETITEM).stop().toBytes(), /unhashable/);
});

test('malformed: runaway nesting and oversized integers are capped', () => {
  const deep = new PickleWriter().proto(2);
  for (let i = 0; i < 100_000; i++) deep.mark();
  assertMalformed(deep.toBytes(), /nests deeper than 2048 levels/);
  assertMalformed(new PickleWriter().proto(2).op(OP.LONG4).u32(1 << 20).raw(new Uint8Array(1 << 20)).stop().toBytes(), /too large/);
  assertMalformed(new PickleWriter().op(OP.INT).line('9'.repeat(5000)).stop().toBytes(), /too large/);
});

test('malformed: bad text, bad UTF-8, out-of-band buffers, persistent ids without a container', () => {
  assertMalformed(new PickleWriter().op(OP.INT).line('12abc').stop().toBytes(), /not an integer/);
  assertMalformed(new PickleWriter().op(OP.STRING).line('unquoted').stop().toBytes(), /must be quoted/);
  assertMalformed(new PickleWriter().proto(2).op(OP.BINUNICODE).u32(2).op(0xc3, 0x28).stop().toBytes(), /not valid UTF-8/);
  assertMalformed(new PickleWriter().proto(5).op(OP.NEXT_BUFFER).stop().toBytes(), /out-of-band buffers/);
  assertMalformed(new PickleWriter().proto(2).str('x').op(OP.BINPERSID).stop().toBytes(), /persistent id/);
});

test('several pickles in one buffer are read one after another', () => {
  const a = new PickleWriter().proto(2).int(1).stop().toBytes();
  const b = new PickleWriter().proto(2).str('two').stop().toBytes();
  const both = new Uint8Array([...a, ...b]);
  assert.equal(unpickle(both), 1);
  assert.equal(unpickle(both, { offset: a.length }), 'two');
});
