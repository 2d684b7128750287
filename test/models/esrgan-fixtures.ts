// Small ESRGAN-family checkpoints with the real key names of each layout, and a plain TypeScript
// reference of the original networks (BasicSR rrdbnet_arch.py / Real-ESRGAN srvgg_arch.py) to check
// the graphs against.
import { writeFile } from 'node:fs/promises';
import { writeSafetensors } from '../../src/formats/safetensors.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { OP, buildZip, stateDictPickle, torchZipEntries, type TensorSpec } from '../fixtures/pickle/builders.js';
import * as R from '../graph/reference.js';

export type Layout = 'esrgan-old' | 'esrgan-new' | 'basicsr';

export interface RrdbSpec { layout: Layout; nf: number; gc: number; nb: number; ups: number; unshuffle?: number; seed?: number }
export interface SrvggSpec { nf: number; convs: number; scale: number; seed?: number }

function convW(out: number, cin: number, seed: number, k = 3): [R.Arr, R.Arr] {
  // He-like scale keeps activations O(1) through the residual trunk.
  const s = 1.5 / Math.sqrt(cin * k * k);
  const w = R.random([out, cin, k, k], seed, s);
  const b = R.random([out], seed + 5000, 0.1);
  // Round through f32 now: the file stores f32 and the reference must see the same numbers.
  return [f32(w), f32(b)];
}

function f32(a: R.Arr): R.Arr {
  return { shape: a.shape, data: Float64Array.from(Float32Array.from(a.data)) };
}

interface RrdbNames {
  first: string; conv(b: number, r: number, c: number): string; trunk: string; ups: string[]; hr: string; last: string;
}

function names(spec: RrdbSpec): RrdbNames {
  const n = spec.ups;
  if (spec.layout === 'esrgan-old') {
    const up = (i: number) => 3 + 3 * i;
    return {
      first: 'model.0', conv: (b, r, c) => `model.1.sub.${b}.RDB${r}.conv${c}.0`, trunk: `model.1.sub.${spec.nb}`,
      ups: Array.from({ length: n }, (_, i) => `model.${up(i)}`), hr: `model.${up(n) - 1}`, last: `model.${up(n) + 1}`,
    };
  }
  if (spec.layout === 'esrgan-new') {
    return {
      first: 'conv_first', conv: (b, r, c) => `RRDB_trunk.${b}.RDB${r}.conv${c}`, trunk: 'trunk_conv',
      ups: Array.from({ length: n }, (_, i) => `upconv${i + 1}`), hr: 'HRconv', last: 'conv_last',
    };
  }
  return {
    first: 'conv_first', conv: (b, r, c) => `body.${b}.rdb${r}.conv${c}`, trunk: 'conv_body',
    ups: Array.from({ length: n }, (_, i) => `conv_up${i + 1}`), hr: 'conv_hr', last: 'conv_last',
  };
}

/** Weights of an RRDBNet under the layout's own key names. */
export function rrdbWeights(spec: RrdbSpec): Record<string, R.Arr> {
  const k = names(spec);
  const u = spec.unshuffle ?? 1;
  let seed = spec.seed ?? 1;
  const out: Record<string, R.Arr> = {};
  const put = (name: string, o: number, i: number) => {
    const [w, b] = convW(o, i, seed++);
    out[`${name}.weight`] = w;
    out[`${name}.bias`] = b;
  };
  put(k.first, spec.nf, 3 * u * u);
  for (let b = 0; b < spec.nb; b++) for (let r = 1; r <= 3; r++) for (let c = 1; c <= 5; c++) put(k.conv(b, r, c), c === 5 ? spec.nf : spec.gc, spec.nf + (c - 1) * spec.gc);
  put(k.trunk, spec.nf, spec.nf);
  for (const up of k.ups) put(up, spec.nf, spec.nf);
  put(k.hr, spec.nf, spec.nf);
  put(k.last, 3, spec.nf);
  return out;
}

export function srvggWeights(spec: SrvggSpec): Record<string, R.Arr> {
  let seed = spec.seed ?? 100;
  const out: Record<string, R.Arr> = {};
  const put = (i: number, o: number, cin: number) => {
    const [w, b] = convW(o, cin, seed++);
    out[`body.${i}.weight`] = w;
    out[`body.${i}.bias`] = b;
  };
  put(0, spec.nf, 3);
  out['body.1.weight'] = f32(R.map(R.random([spec.nf], seed++), (v) => 0.25 + 0.2 * v));
  for (let c = 1; c <= spec.convs; c++) {
    put(2 * c, spec.nf, spec.nf);
    out[`body.${2 * c + 1}.weight`] = f32(R.map(R.random([spec.nf], seed++), (v) => 0.25 + 0.2 * v));
  }
  put(2 * spec.convs + 2, 3 * spec.scale * spec.scale, spec.nf);
  return out;
}

export function toTensors(w: Record<string, R.Arr>): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(w).map(([k, v]) => [k, Tensor.f32(v.shape, Float32Array.from(v.data))]));
}

export async function saveSafetensors(path: string, w: Record<string, R.Arr>): Promise<void> {
  await writeSafetensors(path, toTensors(w));
}

/** A torch.save zip of `{'params_ema': state_dict}`, as BasicSR / Real-ESRGAN release their models. */
export async function savePthParamsEma(path: string, w: Record<string, R.Arr>): Promise<void> {
  const entries: [string, TensorSpec][] = [];
  const storages: Record<string, Uint8Array> = {};
  Object.entries(w).forEach(([k, v], i) => {
    entries.push([k, { storage: String(i), numel: v.data.length, shape: v.shape }]);
    storages[String(i)] = new Uint8Array(Float32Array.from(v.data).buffer);
  });
  const pkl = stateDictPickle(entries, (pw, body) => {
    pw.op(OP.EMPTY_DICT).str('params_ema');
    body();
    pw.op(OP.SETITEM);
  });
  await writeFile(path, buildZip(torchZipEntries('archive', pkl, storages)));
}

// ---- reference forward passes ---------------------------------------------------------------------

const lrelu = (a: number, s: number) => (a >= 0 ? a : a * s);

function conv(x: R.Arr, w: Record<string, R.Arr>, name: string): R.Arr {
  return R.conv2d(x, w[`${name}.weight`], w[`${name}.bias`], { pads: [1, 1, 1, 1] });
}

function catC(xs: R.Arr[]): R.Arr {
  const [n, , h, wd] = xs[0].shape;
  const c = xs.reduce((s, a) => s + a.shape[1], 0);
  const out = new Float64Array(n * c * h * wd);
  for (let b = 0; b < n; b++) {
    let off = 0;
    for (const a of xs) {
      const per = a.shape[1] * h * wd;
      out.set(a.data.subarray(b * per, (b + 1) * per), (b * c * h * wd) + off * h * wd);
      off += a.shape[1];
    }
  }
  return { shape: [n, c, h, wd], data: out };
}

const add = (a: R.Arr, b: R.Arr) => R.broadcast(a, b, (x, y) => x + y);
const axpy = (a: R.Arr, s: number, b: R.Arr) => R.broadcast(a, b, (x, y) => x * s + y);

export function pixelUnshuffle(x: R.Arr, r: number): R.Arr {
  const [n, c, h, w] = x.shape;
  const [ho, wo] = [h / r, w / r];
  const out = new Float64Array(x.data.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) for (let q = 0; q < w; q++) {
    out[((b * c * r * r + ch * r * r + (y % r) * r + (q % r)) * ho + Math.floor(y / r)) * wo + Math.floor(q / r)] = x.data[((b * c + ch) * h + y) * w + q];
  }
  return { shape: [n, c * r * r, ho, wo], data: out };
}

function pixelShuffle(x: R.Arr, r: number): R.Arr {
  const [n, c, h, w] = x.shape;
  const co = c / (r * r);
  const out = new Float64Array(x.data.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < co; ch++) for (let y = 0; y < h * r; y++) for (let q = 0; q < w * r; q++) {
    out[((b * co + ch) * h * r + y) * w * r + q] = x.data[((b * c + ch * r * r + (y % r) * r + (q % r)) * h + Math.floor(y / r)) * w + Math.floor(q / r)];
  }
  return { shape: [n, co, h * r, w * r], data: out };
}

function rdb(x: R.Arr, w: Record<string, R.Arr>, k: RrdbNames, b: number, r: number): R.Arr {
  const x1 = R.map(conv(x, w, k.conv(b, r, 1)), (v) => lrelu(v, 0.2));
  const x2 = R.map(conv(catC([x, x1]), w, k.conv(b, r, 2)), (v) => lrelu(v, 0.2));
  const x3 = R.map(conv(catC([x, x1, x2]), w, k.conv(b, r, 3)), (v) => lrelu(v, 0.2));
  const x4 = R.map(conv(catC([x, x1, x2, x3]), w, k.conv(b, r, 4)), (v) => lrelu(v, 0.2));
  const x5 = conv(catC([x, x1, x2, x3, x4]), w, k.conv(b, r, 5));
  return axpy(x5, 0.2, x);
}

function rrdb(x: R.Arr, w: Record<string, R.Arr>, k: RrdbNames, b: number): R.Arr {
  return axpy(rdb(rdb(rdb(x, w, k, b, 1), w, k, b, 2), w, k, b, 3), 0.2, x);
}

/** BasicSR RRDBNet.forward; `firstBlockOnly` stops after conv_first and RRDB 0. */
export function rrdbReference(spec: RrdbSpec, w: Record<string, R.Arr>, x: R.Arr, firstBlockOnly = false): R.Arr {
  const k = names(spec);
  const u = spec.unshuffle ?? 1;
  const feat = conv(u > 1 ? pixelUnshuffle(x, u) : x, w, k.first);
  if (firstBlockOnly) return rrdb(feat, w, k, 0);
  let h = feat;
  for (let b = 0; b < spec.nb; b++) h = rrdb(h, w, k, b);
  h = add(feat, conv(h, w, k.trunk));
  for (const up of k.ups) h = R.map(conv(R.upsampleNearest(h, 2), w, up), (v) => lrelu(v, 0.2));
  return conv(R.map(conv(h, w, k.hr), (v) => lrelu(v, 0.2)), w, k.last);
}

/** Real-ESRGAN SRVGGNetCompact.forward (PReLU). */
export function srvggReference(spec: SrvggSpec, w: Record<string, R.Arr>, x: R.Arr, firstBlockOnly = false): R.Arr {
  const prelu = (a: R.Arr, slope: R.Arr): R.Arr => {
    const [, c, h, wd] = a.shape;
    return { shape: a.shape, data: a.data.map((v, i) => (v >= 0 ? v : v * slope.data[Math.floor(i / (h * wd)) % c])) };
  };
  let h: R.Arr = prelu(conv(x, w, 'body.0'), w['body.1.weight']);
  if (firstBlockOnly) return h;
  for (let c = 1; c <= spec.convs; c++) h = prelu(conv(h, w, `body.${2 * c}`), w[`body.${2 * c + 1}.weight`]);
  h = conv(h, w, `body.${2 * spec.convs + 2}`);
  return add(pixelShuffle(h, spec.scale), R.upsampleNearest(x, spec.scale));
}

/** A smooth test image in [0, 1] with some structure (not noise, which no upscaler sees). */
export function testImage(h: number, w: number, seed = 7): R.Arr {
  const r = R.rng(seed);
  const ph = [r(), r(), r()].map((v) => v * Math.PI);
  const data = new Float64Array(3 * h * w);
  for (let c = 0; c < 3; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    data[(c * h + y) * w + x] = Math.fround(0.5 + 0.4 * Math.sin(x * 0.37 + ph[c]) * Math.cos(y * 0.23 - ph[c]) + 0.05 * r());
  }
  return { shape: [1, 3, h, w], data };
}
