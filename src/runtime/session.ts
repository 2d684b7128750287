import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import type { GraphIR } from '../graph/ir.js';
import { materializeWeights } from '../graph/materialize.js';
import { emitOnnx } from '../graph/onnx-emit.js';
import type { WeightSource } from '../graph/weights.js';
import type { DType } from '../tensor/dtype.js';
import { Tensor, type TensorData } from '../tensor/tensor.js';

export type Device = 'cpu' | 'webgpu' | 'cuda';
export const DEVICES: readonly Device[] = ['cpu', 'webgpu', 'cuda'];

export interface RuntimeOptions {
  /** Execution provider; `cpu` (MLAS) is always there. */
  readonly device?: Device;
  /** Intra-op threads; default lets ONNX Runtime use every core. */
  readonly threads?: number;
  /** Use ONNX Runtime's fused attention kernel (default true). */
  readonly fusedAttention?: boolean;
}

const ORT_TYPE: Partial<Record<DType, ort.Tensor.Type>> = {
  f32: 'float32', f16: 'float16', f64: 'float64', i64: 'int64', i32: 'int32', i16: 'int16', i8: 'int8', u8: 'uint8', bool: 'bool',
};
const HOST_TYPE: Partial<Record<string, DType>> = Object.fromEntries(Object.entries(ORT_TYPE).map(([k, v]) => [v, k as DType]));

export function toOrtTensor(t: Tensor): ort.Tensor {
  const type = ORT_TYPE[t.dtype];
  if (!type) throw new Error(`ONNX Runtime has no ${t.dtype} tensors; convert to f32 or f16 first`);
  return new ort.Tensor(type, t.data as never, [...t.shape]);
}

export function fromOrtTensor(t: ort.Tensor, name: string): Tensor {
  const dtype = HOST_TYPE[t.type];
  if (!dtype) throw new Error(`output '${name}' has unsupported type ${t.type}`);
  let data = t.data as TensorData;
  // float16 arrives as Uint16Array on Node 20 (no Float16Array); keep the bits.
  if (dtype === 'f16' && !(data instanceof Uint16Array)) {
    const view = data as ArrayBufferView;
    data = new Uint16Array(view.buffer, view.byteOffset, view.byteLength / 2);
  }
  if (dtype === 'bool' && !(data instanceof Uint8Array)) data = Uint8Array.from(data as unknown as ArrayLike<number>);
  return new Tensor(dtype, t.dims, data);
}

function cudaProviderInstalled(): boolean {
  try {
    const req = createRequire(import.meta.url);
    const dir = dirname(req.resolve('onnxruntime-node'));
    return existsSync(join(dir, '..', 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

function providerError(device: Device, err: unknown): Error {
  const why = err instanceof Error ? err.message : String(err);
  if (device === 'cuda') {
    const hint = cudaProviderInstalled()
      ? 'the CUDA provider is installed but could not start (needs an NVIDIA driver, CUDA 12 and cuDNN 9)'
      : 'the CUDA provider is not installed: reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12 npm install';
    return new Error(`device 'cuda' is not available: ${hint} (${why})`);
  }
  if (device === 'webgpu') {
    return new Error(`device 'webgpu' is not available: ONNX Runtime's WebGPU provider needs a GPU with a Vulkan, Metal or D3D12 driver (${why}); use --device cpu`);
  }
  return new Error(`could not create an ONNX Runtime session on ${device}: ${why}`);
}

/** A compiled graph bound to a device; feeds and results are host tensors. */
export class Session {
  private released = false;

  constructor(
    private readonly inner: ort.InferenceSession,
    readonly device: Device,
    /** Bytes of weight data handed to ONNX Runtime, for memory budgeting. */
    readonly weightBytes: number,
  ) {}

  get inputNames(): readonly string[] { return this.inner.inputNames; }
  get outputNames(): readonly string[] { return this.inner.outputNames; }

  async run(feeds: Readonly<Record<string, Tensor>>): Promise<Record<string, Tensor>> {
    if (this.released) throw new Error('session was released');
    for (const name of this.inner.inputNames) {
      if (!(name in feeds)) throw new Error(`missing input '${name}' (the graph takes ${this.inner.inputNames.join(', ')})`);
    }
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) {
      if (!this.inner.inputNames.includes(k)) throw new Error(`unknown input '${k}' (the graph takes ${this.inner.inputNames.join(', ')})`);
      ortFeeds[k] = toOrtTensor(v);
    }
    const out = await this.inner.run(ortFeeds);
    const result: Record<string, Tensor> = {};
    for (const [k, v] of Object.entries(out)) {
      result[k] = fromOrtTensor(v as ort.Tensor, k);
      (v as ort.Tensor).dispose?.();
    }
    return result;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.inner.release();
  }
}

function sessionOptions(opts: RuntimeOptions): ort.InferenceSession.SessionOptions {
  const device = opts.device ?? 'cpu';
  return {
    executionProviders: [device],
    graphOptimizationLevel: 'all',
    ...(opts.threads ? { intraOpNumThreads: opts.threads } : {}),
    logSeverityLevel: 3,
  };
}

/** Emits, materialises the weights of, and loads a graph. */
export async function createSession(ir: GraphIR, weights: WeightSource | undefined, opts: RuntimeOptions = {}): Promise<Session> {
  const device = opts.device ?? 'cpu';
  if (!DEVICES.includes(device)) throw new Error(`unknown device '${device}' (choose ${DEVICES.join(', ')})`);
  const emitted = emitOnnx(ir, { fusedAttention: opts.fusedAttention });
  if (emitted.weightFiles.length > 0 && !weights) throw new Error('the graph uses weights but no weight source was given');
  const externalData = weights ? await materializeWeights(emitted.weightFiles, weights) : [];
  let inner: ort.InferenceSession;
  try {
    inner = await ort.InferenceSession.create(emitted.model, { ...sessionOptions(opts), externalData });
  } catch (err) {
    throw providerError(device, err);
  }
  return new Session(inner, device, externalData.reduce((s, f) => s + f.data.byteLength, 0));
}

/** What makes two sessions interchangeable: the graph, the weights (incl. patches), and how it runs. */
export function sessionKey(ir: GraphIR, weights: WeightSource | undefined, opts: RuntimeOptions = {}): string {
  const { hash } = emitOnnx(ir, { fusedAttention: opts.fusedAttention });
  return [hash, weights?.id ?? '-', opts.device ?? 'cpu', opts.threads ?? 0, opts.fusedAttention ?? true].join('|');
}

export interface SessionCacheOptions {
  /** Release least-recently-used sessions when their weights exceed this many bytes (default: no limit). */
  readonly maxBytes?: number;
}

/**
 * Sessions keyed by (graph, weights identity, device): asking again for a model already built — for
 * instance switching back to an earlier LoRA set — returns the live session instead of rebuilding it.
 */
export class SessionCache {
  private readonly entries = new Map<string, Promise<Session>>();
  private readonly maxBytes: number;

  constructor(options: SessionCacheOptions = {}) {
    this.maxBytes = options.maxBytes ?? Infinity;
  }

  get size(): number { return this.entries.size; }

  has(key: string): boolean { return this.entries.has(key); }

  async get(ir: GraphIR, weights: WeightSource | undefined, opts: RuntimeOptions = {}): Promise<Session> {
    const key = sessionKey(ir, weights, opts);
    const hit = this.entries.get(key);
    if (hit) {
      // Re-insert to mark as most recently used.
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const pending = createSession(ir, weights, opts);
    this.entries.set(key, pending);
    try {
      const s = await pending;
      await this.evict(key);
      return s;
    } catch (err) {
      this.entries.delete(key);
      throw err;
    }
  }

  private async evict(keep: string): Promise<void> {
    let total = 0;
    const settled: [string, Session][] = [];
    for (const [k, p] of this.entries) {
      const s = await p.catch(() => undefined);
      if (s) { total += s.weightBytes; settled.push([k, s]); }
    }
    for (const [k, s] of settled) {
      if (total <= this.maxBytes) break;
      if (k === keep) continue;
      this.entries.delete(k);
      total -= s.weightBytes;
      await s.release();
    }
  }

  async release(key: string): Promise<void> {
    const p = this.entries.get(key);
    if (!p) return;
    this.entries.delete(key);
    const s = await p.catch(() => undefined);
    await s?.release();
  }

  async clear(): Promise<void> {
    const all = [...this.entries.keys()];
    await Promise.all(all.map((k) => this.release(k)));
  }
}
