import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { openTorchFile } from './torch-file.js';
import { PickleRefusedError, PyDict, PyObject, TensorRef, type PyValue } from './pickle.js';
import {
  OP, PickleWriter, buildZip, f32bytes, legacyFile, stateDictPickle, torchZipEntries, writeTensor, writeZipFile,
  type TensorSpec,
} from '../../test/fixtures/pickle/builders.js';

const FIXTURES = 'test/fixtures/pickle';
const dir = mkdtempSync(join(tmpdir(), 'latentkit-torch-file-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function temp(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

async function values(path: string, key: string): Promise<number[]> {
  const f = await openTorchFile(path);
  try {
    return Array.from((await f.read(key)).toFloat32Array());
  } finally {
    await f.close();
  }
}

async function assertOpenFails(path: string, re: RegExp): Promise<void> {
  await assert.rejects(openTorchFile(path), (e: Error) => {
    assert.ok(e.message.startsWith(`${path}: `), e.message);
    assert.match(e.message, re);
    return true;
  });
}

function assertPrototypeClean(): void {
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
}

// ---------------------------------------------------------------------------------------------------
// files written by Python's pickler in torch.save's layouts

test('Lightning .ckpt (zip, protocol 2): state_dict with f32, f16, bf16, i64, views, offsets and shared storage', async () => {
  const path = `${FIXTURES}/lightning_p2.ckpt`;
  const f = await openTorchFile(path);
  try {
    assert.equal(f.format, 'zip');
    assert.equal(f.stateDictKey, 'state_dict');
    assert.deepEqual(f.metadata, {});
    assert.deepEqual(f.keys(), [
      'model.diffusion_model.w', 'model.diffusion_model.wT', 'model.diffusion_model.row1', 'model.diffusion_model.h',
      'cond_stage_model.position_ids', 'model.bf', 'model_ema.decay',
    ]);
    assert.deepEqual(f.info('model.diffusion_model.h'), { dtype: 'f16', shape: [4] });
    assert.deepEqual(f.info('cond_stage_model.position_ids'), { dtype: 'i64', shape: [1, 5] });
    assert.equal(f.info('nope'), undefined);
    assert.ok(f.has('model.bf') && !f.has('state_dict'));

    const [w, wT, row1] = await Promise.all(['model.diffusion_model.w', 'model.diffusion_model.wT', 'model.diffusion_model.row1'].map((k) => f.read(k)));
    assert.deepEqual(Array.from(w.toFloat32Array()), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(wT.shape, [3, 2]);
    assert.deepEqual(Array.from(wT.toFloat32Array()), [1, 4, 2, 5, 3, 6], 'transposed view of the same storage');
    assert.deepEqual(Array.from(row1.toFloat32Array()), [4, 5, 6], 'storage_offset 3');
    assert.equal(f.tensorRef('model.diffusion_model.w')?.storage, f.tensorRef('model.diffusion_model.wT')?.storage);

    const h = await f.read('model.diffusion_model.h');
    assert.equal(h.dtype, 'f16');
    assert.deepEqual(Array.from(h.toFloat32Array()), [0.5, -1.5, 2, 65504]);
    const ids = await f.read('cond_stage_model.position_ids');
    assert.deepEqual(Array.from(ids.data as BigInt64Array), [0n, 1n, 2n, 3n, 2n ** 40n]);
    assert.deepEqual(Array.from((await f.read('model.bf')).toFloat32Array()), [1, -2]);
    const decay = await f.read('model_ema.decay');
    assert.deepEqual(decay.shape, []);
    assert.ok(Math.abs(decay.toFloat32Array()[0] - 0.9999) < 1e-6);

    // everything that is not a tensor stays reachable
    assert.equal(f.objects.get('global_step'), 470000);
    assert.equal(f.objects.get('epoch'), 6);
    assert.equal(f.objects.get('pytorch-lightning_version'), '1.4.2');
    assert.equal(f.objects.get('callbacks.pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint.best_model_path'), '/logs/last.ckpt');
    const cb = f.objects.get('checkpoint_callback');
    assert.ok(cb instanceof PyObject);
    assert.equal(cb.pyClass, 'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint');
    assert.equal(cb.attributes.get('dirpath'), '/logs/checkpoints');
    assert.equal(f.objects.get('hparams.lr'), 1e-4);
    assert.equal(f.objects.get('hparams.seed'), 23, 'numpy int64 scalar');
    assert.equal(f.objects.get('hparams.score'), 0.25, 'numpy float64 scalar');
    assert.deepEqual(f.objects.get('hparams.blob'), new Uint8Array([0, 255, 0x72, 0x61, 0x77]), '_codecs.encode bytes');
    const sd = (f.root as PyDict).get('state_dict') as PyDict;
    assert.ok(sd.attributes.get('_metadata') instanceof PyDict, 'state_dict()._metadata survives BUILD');
  } finally {
    await f.close();
  }
});

test('zip whose folder is not "archive", protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL), 64-byte aligned storages', async () => {
  const path = `${FIXTURES}/model_p4.pt`;
  const f = await openTorchFile(path);
  try {
    assert.equal(f.stateDictKey, null);
    assert.deepEqual(f.keys(), ['conv.weight', 'conv.bias', 'counter', 'conv.weight_T']);
    assert.deepEqual(Array.from((await f.read('conv.weight')).toFloat32Array()), Array.from({ length: 12 }, (_, i) => i / 4));
    const t = await f.read('conv.weight_T');
    assert.deepEqual(t.shape, [2, 2, 3]);
    assert.deepEqual(Array.from(t.toFloat32Array()), [0, 0.5, 1, 0.25, 0.75, 1.25, 1.5, 2, 2.5, 1.75, 2.25, 2.75]);
    assert.deepEqual(Array.from((await f.read('conv.bias')).toFloat32Array()), [1, 2, 3, 4]);
    assert.deepEqual(Array.from((await f.read('counter')).data as BigInt64Array), [7n, -8n]);
  } finally {
    await f.close();
  }
});

test('textual-inversion .pt (protocol 5): string_to_param.* plus name, step and other plain values', async () => {
  const f = await openTorchFile(`${FIXTURES}/embedding_p5.pt`);
  try {
    assert.deepEqual(f.keys(), ['string_to_param.*']);
    assert.deepEqual(f.info('string_to_param.*'), { dtype: 'f32', shape: [2, 4] });
    const emb = Array.from((await f.read('string_to_param.*')).toFloat32Array());
    assert.deepEqual(emb.map((x) => Math.round(x * 10) / 10), [0.1, 0.2, 0.3, 0.4, -0.1, -0.2, -0.3, -0.4]);
    assert.equal(f.objects.get('name'), 'latent-cat');
    assert.equal(f.objects.get('step'), 1500);
    assert.equal(f.objects.get('string_to_token.*'), 265);
    assert.equal(f.objects.get('sd_checkpoint_name'), 'v1-5-pruned-emaonly');
    assert.equal(f.objects.get('big'), 2n ** 70n);
    assert.deepEqual(f.objects.get('extra'), new Uint8Array([0x78, 0x79]));
    assert.deepEqual([...(f.objects.get('tags') as Set<PyValue>)].sort(), ['a', 'b']);
  } finally {
    await f.close();
  }
});

test('textual inversion stored as an nn.ParameterDict (original repo) exposes string_to_param.*', async () => {
  const f = await openTorchFile(`${FIXTURES}/parameterdict_embedding.pt`);
  try {
    assert.deepEqual(f.keys(), ['string_to_param.*']);
    assert.ok(f.tensorRef('string_to_param.*')?.isParameter);
    assert.deepEqual(Array.from((await f.read('string_to_param.*')).toFloat32Array()), [1, 2, 3, 4]);
    assert.equal(f.objects.get('name'), 'pd-embedding');
  } finally {
    await f.close();
  }
});

test('torch 2 forms: _rebuild_tensor_v3 fp8 on an UntypedStorage, _rebuild_parameter, _rebuild_from_type_v2', async () => {
  const f = await openTorchFile(`${FIXTURES}/v3_fp8.pt`);
  try {
    assert.deepEqual(f.info('fp8'), { dtype: 'f8e4m3', shape: [2, 2] });
    assert.deepEqual(Array.from((await f.read('fp8')).toFloat32Array()), [1, -1, 2, 0]);
    assert.deepEqual(Array.from((await f.read('param')).toFloat32Array()), [3, 4]);
    assert.deepEqual(Array.from((await f.read('wrapped')).toFloat32Array()), [4]);
  } finally {
    await f.close();
  }
});

test('deflated storage entries are inflated through yauzl', async () => {
  const path = `${FIXTURES}/deflated.pt`;
  assert.deepEqual(await values(path, 'conv.weight_T'), [0, 0.5, 1, 0.25, 0.75, 1.25, 1.5, 2, 2.5, 1.75, 2.25, 2.75]);
  assert.deepEqual(await values(path, 'conv.bias'), [1, 2, 3, 4]);
});

test('legacy (pre-1.6, non-zip) torch.save stream, including a storage view', async () => {
  const f = await openTorchFile(`${FIXTURES}/legacy.pt`);
  try {
    assert.equal(f.format, 'legacy');
    assert.deepEqual(f.keys(), ['a.weight', 'a.weight_t', 'b.bias', 'c.count', 'd.view']);
    assert.deepEqual(Array.from((await f.read('a.weight')).toFloat32Array()), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(Array.from((await f.read('a.weight_t')).toFloat32Array()), [1, 4, 2, 5, 3, 6]);
    assert.deepEqual(Array.from((await f.read('b.bias')).toFloat32Array()), [0.25, 0.5, 0.75]);
    assert.deepEqual(Array.from((await f.read('c.count')).data as BigInt64Array), [42n]);
    assert.deepEqual(Array.from((await f.read('d.view')).toFloat32Array()), [4, 5], 'view at element 2, tensor offset 1');
  } finally {
    await f.close();
  }
});

// ---------------------------------------------------------------------------------------------------
// hostile checkpoints

const hostileFiles: [string, string, string][] = [
  ['hostile_posix_system.ckpt', 'posix.system', 'zip-posix-system'],
  ['hostile_legacy.pt', 'posix.system', 'legacy-posix-system'],
  ['hostile_eval_p2.pkl', '__builtin__.eval', 'eval-p2'],
  ['hostile_load_from_bytes.pkl', 'torch.storage._load_from_bytes', 'load-from-bytes'],
];

for (const [file, global, name] of hostileFiles) {
  test(`hostile: openTorchFile refuses ${file} naming '${global}' and the file; the payload never runs`, async () => {
    const path = `${FIXTURES}/${file}`;
    const m = `/tmp/latentkit-pickle-marker-${name}`;
    rmSync(m, { force: true });
    await assert.rejects(openTorchFile(path), (e: Error) => {
      assert.ok(e instanceof PickleRefusedError);
      assert.equal(e.message, `${path}: refused to load: the pickle imports global '${global}', which is not on the list of types a checkpoint may contain`);
      return true;
    });
    assert.equal(existsSync(m), false);
    assertPrototypeClean();
  });
}

test('hostile: a TorchScript-style archive (__torch__ classes) is refused', async () => {
  const pkl = new PickleWriter().proto(2).global('__torch__.model', 'Net').op(OP.EMPTY_TUPLE, OP.NEWOBJ).stop().toBytes();
  const path = temp('scripted.pt', buildZip(torchZipEntries('scripted', pkl, {})));
  await assertOpenFails(path, /refused to load: the pickle imports global '__torch__\.model\.Net'/);
});

test('hostile: a legacy file holding a pickled nn.Module is refused', async () => {
  const main = new PickleWriter().proto(2).mark().str('module').str('Net').str('class Net: ...').op(OP.TUPLE, OP.BINPERSID).stop().toBytes();
  const path = temp('module.pt', legacyFile(main, []));
  await assertOpenFails(path, /refused to load: the checkpoint contains a pickled nn\.Module/);
});

test('hostile: a refusal after a pickled head larger than the first read still names the global', async () => {
  const m = join(dir, `marker-${randomUUID()}`);
  const main = new PickleWriter().proto(2).op(OP.EMPTY_DICT).str('pad').bytes(new Uint8Array(3 << 20))
    .str('x').global('posix', 'system').str(`touch ${m}`).op(OP.TUPLE1, OP.REDUCE).op(OP.SETITEM, OP.SETITEM).stop().toBytes();
  const path = temp('big-hostile.pt', legacyFile(main, []));
  await assertOpenFails(path, /refused to load: the pickle imports global 'posix\.system'/);
  assert.equal(existsSync(m), false);
});

// ---------------------------------------------------------------------------------------------------
// containers built byte by byte

const twoTensors: [string, TensorSpec][] = [
  ['a', { storage: '0', numel: 4, shape: [2, 2] }],
  ['b', { storage: '1', type: 'HalfStorage', numel: 2, shape: [2] }],
];
const halfs = new Uint8Array([0x00, 0x3c, 0x00, 0xc0]); // 1, -2

test('zip: storage data found through the local header, whose extra field differs from the central one', async () => {
  const entries = torchZipEntries('my model', stateDictPickle(twoTensors), { 0: f32bytes(1, 2, 3, 4), 1: halfs });
  for (const e of entries) if (e.name.includes('/data/')) e.localExtra = new Uint8Array([0x46, 0x42, 13, 0, ...new Array(13).fill(0x5a)]);
  const path = temp('extra.pt', buildZip(entries));
  assert.deepEqual(await values(path, 'a'), [1, 2, 3, 4]);
  assert.deepEqual(await values(path, 'b'), [1, -2]);
});

test('zip: ZIP64 records (sizes and offsets in the zip64 extra field, zip64 end records) are followed', async () => {
  const entries = torchZipEntries('z64', stateDictPickle(twoTensors), { 0: f32bytes(5, 6, 7, 8), 1: halfs });
  entries[0].deflate = true; // a compressed data.pkl too
  const path = temp('zip64.pt', buildZip(entries, { zip64: true }));
  assert.deepEqual(await values(path, 'a'), [5, 6, 7, 8]);
  assert.deepEqual(await values(path, 'b'), [1, -2]);
});

test('zip: a storage placed beyond 4 GiB in a ZIP64 archive (sparse file) is read by offset', async (t) => {
  const at = 4.5 * 2 ** 30;
  const entries = torchZipEntries('big', stateDictPickle(twoTensors), { 0: f32bytes(9, 10, 11, 12), 1: halfs });
  entries[2].at = at;
  const path = join(dir, 'sparse.pt');
  const size = await writeZipFile(path, entries, { zip64: true });
  try {
    if (statSync(path).blocks * 512 > 64 << 20) {
      t.skip('this filesystem does not keep sparse files sparse');
      return;
    }
    assert.ok(size > 2 ** 32);
    assert.deepEqual(await values(path, 'a'), [9, 10, 11, 12]);
    assert.deepEqual(await values(path, 'b'), [1, -2]);
  } finally {
    rmSync(path, { force: true });
  }
});

test('zip: missing data.pkl, several data.pkl, and a zip that is not an archive at all', async () => {
  await assertOpenFails(temp('nopkl.pt', buildZip([{ name: 'archive/data/0', data: f32bytes(1) }])), /no <folder>\/data\.pkl/);
  const pkl = stateDictPickle([]);
  await assertOpenFails(temp('twopkl.pt', buildZip([{ name: 'a/data.pkl', data: pkl }, { name: 'b/data.pkl', data: pkl }])), /several data\.pkl/);
  await assertOpenFails(temp('badzip.pt', new Uint8Array([0x50, 0x4b, 3, 4, 1, 2, 3])), /cannot read the zip archive/);
});

test('zip: a missing or truncated storage entry fails the read of that tensor, naming key and file', async () => {
  const path = temp('missing.pt', buildZip(torchZipEntries('archive', stateDictPickle(twoTensors), { 0: f32bytes(1, 2, 3) })));
  const f = await openTorchFile(path);
  try {
    await assert.rejects(f.read('b'), new RegExp(`${path}: tensor 'b': its storage '1' is missing from the archive \\(no entry archive/data/1\\)`));
    await assert.rejects(f.read('a'), new RegExp(`${path}: tensor 'a': the storage entry archive/data/0 is truncated: it holds 12 bytes, the tensor needs 16`));
    await assert.rejects(f.read('c'), new RegExp(`${path}: no tensor named 'c'`));
  } finally {
    await f.close();
  }
  await assert.rejects(f.read('a'), /the file is closed/);
});

test('unknown or unsupported storage dtypes are reported', async () => {
  const asString: TensorSpec = { storage: '0', numel: 1, shape: [1], type: (w) => { w.str('FloatStorage'); } };
  await assertOpenFails(temp('strtype.pt', buildZip(torchZipEntries('archive', stateDictPickle([['x', asString]]), {}))),
    /unknown storage dtype: storage '0' has type str/);
  const complex: TensorSpec = { storage: '0', numel: 1, shape: [1], type: (w) => { w.global('torch', 'complex64'); } };
  await assertOpenFails(temp('complex.pt', buildZip(torchZipEntries('archive', stateDictPickle([['x', complex]]), {}))),
    /unknown storage dtype: storage '0' is torch\.complex64, which latentkit cannot read/);
  const qint: TensorSpec = { storage: '0', numel: 1, shape: [1], type: 'QInt8Storage' };
  await assertOpenFails(temp('qint.pt', buildZip(torchZipEntries('archive', stateDictPickle([['x', qint]]), {}))),
    /refused to load: the pickle imports global 'torch\.QInt8Storage'/);
});

test('a view reaching past its storage fails the read with the geometry in the message', async () => {
  const spec: TensorSpec = { storage: '0', numel: 4, offset: 2, shape: [2, 2], stride: [2, 1] };
  const path = temp('overrun.pt', buildZip(torchZipEntries('archive', stateDictPickle([['v', spec]]), { 0: f32bytes(1, 2, 3, 4) })));
  const f = await openTorchFile(path);
  try {
    await assert.rejects(f.read('v'), /tensor 'v' \(offset 2, shape \[2, 2\], stride \[2, 1\]\) reaches past the end of its storage '0' \(4 f32 elements\)/);
  } finally {
    await f.close();
  }
});

test('big-endian checkpoints, tar-format files, safetensors and random bytes are refused clearly', async () => {
  const entries = torchZipEntries('archive', stateDictPickle(twoTensors), { 0: f32bytes(1, 2, 3, 4), 1: halfs });
  entries[1].data = new TextEncoder().encode('big');
  await assertOpenFails(temp('be.pt', buildZip(entries)), /big-endian/);
  await assertOpenFails(temp('be-legacy.pt', legacyFile(stateDictPickle([]), [], { littleEndian: false })), /big-endian/);
  const tar = new Uint8Array(1024);
  tar.set(new TextEncoder().encode('ustar'), 257);
  await assertOpenFails(temp('old.tar.pt', tar), /unsupported: this is a tar-format checkpoint/);
  const st = new Uint8Array(64);
  new DataView(st.buffer).setBigUint64(0, 20n, true);
  st.set(new TextEncoder().encode('{"__metadata__":{}}'), 8);
  await assertOpenFails(temp('model.safetensors', st), /looks like a safetensors file/);
  await assertOpenFails(temp('text.pt', new TextEncoder().encode('hello world, not a checkpoint\n')), /not a PyTorch checkpoint/);
  await assertOpenFails(temp('empty.pt', new Uint8Array(0)), /empty/);
  await assertOpenFails(temp('plain.pkl', new PickleWriter().proto(2).int(5).stop().toBytes()), /does not start with torch's magic number/);
});

test('legacy: a pickled head larger than the first read, and a truncated last storage', async () => {
  const main = new PickleWriter().proto(2).op(OP.EMPTY_DICT).mark().str('pad').bytes(new Uint8Array(5 << 20));
  writeTensor(main.str('w'), { storage: 's1', numel: 3, shape: [3], legacyView: null });
  writeTensor(main.str('h'), { storage: 's2', type: 'HalfStorage', numel: 2, shape: [2], legacyView: null });
  const file = legacyFile(main.op(OP.SETITEMS).stop().toBytes(), [
    { key: 's1', data: f32bytes(7, 8, 9), elementSize: 4 },
    { key: 's2', data: halfs, elementSize: 2 },
  ]);
  const whole = temp('legacy-big.pt', file);
  assert.deepEqual(await values(whole, 'w'), [7, 8, 9]);
  assert.deepEqual(await values(whole, 'h'), [1, -2]);
  const cut = temp('legacy-cut.pt', file.subarray(0, file.length - 1));
  const f = await openTorchFile(cut);
  try {
    assert.ok((f.objects.get('pad') as Uint8Array).length === 5 << 20);
    assert.deepEqual(Array.from((await f.read('w')).toFloat32Array()), [7, 8, 9]);
    await assert.rejects(f.read('h'), new RegExp(`${cut}: tensor 'h': storage 's2' is truncated: the file holds 3 of its 4 bytes`));
  } finally {
    await f.close();
  }
  await assertOpenFails(temp('legacy-keys.pt', legacyFile(stateDictPickle([]), [], { keys: ['ghost'] })), /storage 'ghost' is listed but the pickle never uses it/);
  await assertOpenFails(temp('legacy-version.pt', legacyFile(stateDictPickle([]), [], { protocolVersion: 999 })), /unsupported legacy torch\.save protocol version 999/);
});

test('nested dicts flatten with dots; a key collision is an error', async () => {
  const nested = stateDictPickle([], (w) => {
    w.op(OP.EMPTY_DICT).mark().str('unet').op(OP.EMPTY_DICT).mark();
    writeTensor(w.str('w'), { storage: '0', numel: 4, shape: [4] });
    w.op(OP.SETITEMS).int(768).op(OP.EMPTY_LIST).mark();
    writeTensor(w, { storage: '0', numel: 4, shape: [2], offset: 2 });
    w.op(OP.APPENDS).op(OP.SETITEMS);
  });
  const path = temp('nested.pt', buildZip(torchZipEntries('archive', nested, { 0: f32bytes(1, 2, 3, 4) })));
  const f = await openTorchFile(path);
  try {
    assert.deepEqual(f.keys(), ['unet.w', '768.0']);
    assert.deepEqual(Array.from((await f.read('768.0')).toFloat32Array()), [3, 4]);
    assert.ok(f.tensorRef('unet.w') instanceof TensorRef);
  } finally {
    await f.close();
  }
  const clash = stateDictPickle([], (w) => {
    w.op(OP.EMPTY_DICT).mark();
    writeTensor(w.str('a.b'), { storage: '0', numel: 4, shape: [4] });
    w.str('a').op(OP.EMPTY_DICT);
    writeTensor(w.str('b'), { storage: '0', numel: 4, shape: [4] });
    w.op(OP.SETITEM).op(OP.SETITEMS);
  });
  await assertOpenFails(temp('clash.pt', buildZip(torchZipEntries('archive', clash, { 0: f32bytes(1, 2, 3, 4) }))),
    /two tensors would both be named 'a\.b'/);
});

test('wrappers: params_ema (ESRGAN) is preferred over params; cycles are harmless; runaway nesting is an error', async () => {
  const wrapped = stateDictPickle([], (w) => {
    w.op(OP.EMPTY_DICT).mark().str('params');
    w.op(OP.EMPTY_DICT);
    writeTensor(w.str('w'), { storage: '0', numel: 4, shape: [4] });
    w.op(OP.SETITEM).str('params_ema').op(OP.EMPTY_DICT);
    writeTensor(w.str('w'), { storage: '0', numel: 4, shape: [2], offset: 2 });
    // a list that contains itself
    w.op(OP.SETITEM).str('loop').op(OP.EMPTY_LIST, OP.DUP, OP.APPEND).op(OP.SETITEMS);
  });
  const path = temp('esrgan.pth', buildZip(torchZipEntries('archive', wrapped, { 0: f32bytes(1, 2, 3, 4) })));
  const f = await openTorchFile(path);
  try {
    assert.equal(f.stateDictKey, 'params_ema');
    assert.deepEqual(f.keys(), ['w']);
    assert.deepEqual(Array.from((await f.read('w')).toFloat32Array()), [3, 4]);
  } finally {
    await f.close();
  }
  const deep = new PickleWriter().proto(2);
  for (let i = 0; i < 150; i++) deep.op(OP.EMPTY_LIST);
  for (let i = 0; i < 149; i++) deep.op(OP.APPEND);
  await assertOpenFails(temp('deep.pt', buildZip(torchZipEntries('archive', deep.stop().toBytes(), {}))), /nests containers deeper than 100 levels/);
});

test('a view far larger than memory fails with a clear message instead of allocating', async () => {
  const spec: TensorSpec = { storage: '0', numel: 1, shape: [2 ** 40], stride: [0] };
  const path = temp('huge.pt', buildZip(torchZipEntries('archive', stateDictPickle([['x', spec]]), { 0: f32bytes(1) })));
  const f = await openTorchFile(path);
  try {
    assert.deepEqual(f.info('x'), { dtype: 'f32', shape: [2 ** 40] });
    await assert.rejects(f.read('x'), /tensor 'x' of shape \[1099511627776\] is too large to hold in memory/);
  } finally {
    await f.close();
  }
});
