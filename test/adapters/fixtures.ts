// Test-side helpers for the adapter tests: a seeded RNG, LoRA files written in each format's own
// naming, and the published merge formulas written out naively (independently of src/adapters), so
// the tests compare the library against the formulas, not against itself.
import type { WeightSource } from '../../src/graph/weights.js';
import type { StableDiffusionModel } from '../../src/models/sd-model.js';
import { Tensor } from '../../src/tensor/tensor.js';

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(r: () => number, shape: readonly number[], scale = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = (r() * 2 - 1) * scale;
  return Tensor.f32(shape, d);
}

export const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** out[i, j] = Σ_p a[i, p] b[p, j] with a [m, k] and b [k, n], all flat. */
export function mm(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): Float64Array {
  const o = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < k; p++) s += a[i * k + p] * b[p * n + j];
    o[i * n + j] = s;
  }
  return o;
}

/** einsum('i j k l, j r, i p -> p r k l', t, b, a): the LyCORIS Tucker rebuild, a [R1, P], b [R2, Q]. */
export function tuckerRef(t: Tensor, a: Tensor, b: Tensor): Float64Array {
  const [R1, R2, K, L] = t.shape;
  const P = a.shape[1];
  const Q = b.shape[1];
  const td = t.toFloat32Array(); const ad = a.toFloat32Array(); const bd = b.toFloat32Array();
  const o = new Float64Array(P * Q * K * L);
  for (let p = 0; p < P; p++) for (let q = 0; q < Q; q++) for (let k = 0; k < K; k++) for (let l = 0; l < L; l++) {
    let s = 0;
    for (let i = 0; i < R1; i++) for (let j = 0; j < R2; j++) s += td[((i * R2 + j) * K + k) * L + l] * bd[j * Q + q] * ad[i * P + p];
    o[((p * Q + q) * K + k) * L + l] = s;
  }
  return o;
}

/** einsum('n m k l, i n, m j -> i j k l', mid, up, down): kohya's lora_mid, up [I, N], down [M, J]. */
export function midRef(mid: Tensor, up: Tensor, down: Tensor): Float64Array {
  const [N, M, K, L] = mid.shape;
  const I = up.shape[0];
  const J = down.shape[1];
  const md = mid.toFloat32Array(); const ud = up.toFloat32Array(); const dd = down.toFloat32Array();
  const o = new Float64Array(I * J * K * L);
  for (let i = 0; i < I; i++) for (let j = 0; j < J; j++) for (let k = 0; k < K; k++) for (let l = 0; l < L; l++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let m = 0; m < M; m++) s += md[((n * M + m) * K + k) * L + l] * ud[i * N + n] * dd[m * J + j];
    o[((i * J + j) * K + k) * L + l] = s;
  }
  return o;
}

/** torch.kron for w1 [A, B] and w2 [C, D, …] (w1 unsqueezed over the trailing dims when w2 has them). */
export function kronRef(w1: Tensor, w2: Tensor): Float64Array {
  const [A, B] = w1.shape;
  const [C, D] = w2.shape;
  const KK = numel(w2.shape) / (C * D);
  const a = w1.toFloat32Array(); const b = w2.toFloat32Array();
  const o = new Float64Array(A * C * B * D * KK);
  for (let i = 0; i < A; i++) for (let j = 0; j < B; j++) for (let p = 0; p < C; p++) for (let q = 0; q < D; q++) for (let s = 0; s < KK; s++) {
    o[((i * C + p) * (B * D) + (j * D + q)) * KK + s] = a[i * B + j] * b[(p * D + q) * KK + s];
  }
  return o;
}

/** A weight source whose listed keys are replaced (the reference model the test merges itself). */
export function overlay(base: WeightSource, replaced: ReadonlyMap<string, Tensor>, id: string): WeightSource {
  return {
    id: `${base.id}+ref:${id}`,
    info: (k) => base.info(k),
    read: async (k) => replaced.get(k) ?? base.read(k),
  };
}

/** Where one module of the test LoRAs lands, by the test's own reading of the two key trees. */
export interface Target {
  readonly part: 'unet' | 'text';
  /** diffusers / transformers module path as LoRA files name it. */
  readonly module: string;
  readonly key: string;
  readonly rows?: readonly [number, number];
  readonly biasKey?: string;
  /** Shape of the weight (row block). */
  readonly shape: readonly number[];
  readonly layer: 'linear' | 'conv1x1' | 'conv3x3' | 'text';
}

const U = 'model.diffusion_model.';

export function targetsFor(model: StableDiffusionModel): Target[] {
  const info = (k: string) => model.parts.weights.unet.info(k)!.shape;
  const unet: [string, string, Target['layer']][] = [
    ['down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k', 'input_blocks.3.1.transformer_blocks.0.attn2.to_k', 'linear'],
    ['mid_block.attentions.0.transformer_blocks.0.ff.net.2', 'middle_block.1.transformer_blocks.0.ff.net.2', 'linear'],
    ['down_blocks.1.resnets.0.conv_shortcut', 'input_blocks.3.0.skip_connection', 'conv1x1'],
    ['down_blocks.1.resnets.0.conv1', 'input_blocks.3.0.in_layers.2', 'conv3x3'],
    ['up_blocks.0.upsamplers.0.conv', 'output_blocks.1.2.conv', 'conv3x3'],
  ];
  const out: Target[] = unet.map(([module, ldm, layer]) => ({
    part: 'unet', module, key: `${U}${ldm}.weight`, shape: info(`${U}${ldm}.weight`), layer,
    biasKey: model.parts.weights.unet.info(`${U}${ldm}.bias`) ? `${U}${ldm}.bias` : undefined,
  }));
  const W = model.parts.text.width;
  if (model.family === 'sd1') {
    const T = 'cond_stage_model.transformer.text_model.encoder.layers.';
    for (const [m, k] of [['0.self_attn.q_proj', '0.self_attn.q_proj'], ['1.self_attn.v_proj', '1.self_attn.v_proj'], ['0.mlp.fc1', '0.mlp.fc1']]) {
      const key = `${T}${k}.weight`;
      out.push({ part: 'text', module: `text_model.encoder.layers.${m}`, key, biasKey: `${T}${k}.bias`, shape: model.parts.weights.text.info(key)!.shape, layer: 'text' });
    }
  } else {
    const T = 'cond_stage_model.model.transformer.resblocks.';
    out.push({ part: 'text', module: 'text_model.encoder.layers.0.self_attn.q_proj', key: `${T}0.attn.in_proj_weight`, biasKey: `${T}0.attn.in_proj_bias`, rows: [0, W], shape: [W, W], layer: 'text' });
    // Layer 0: SD2 conditions on the penultimate layer, so with two layers only layer 0 runs; q and v
    // are then two row blocks of one in_proj.
    out.push({ part: 'text', module: 'text_model.encoder.layers.0.self_attn.v_proj', key: `${T}0.attn.in_proj_weight`, biasKey: `${T}0.attn.in_proj_bias`, rows: [2 * W, 3 * W], shape: [W, W], layer: 'text' });
    const key = `${T}0.mlp.c_fc.weight`;
    out.push({ part: 'text', module: 'text_model.encoder.layers.0.mlp.fc1', key, biasKey: `${T}0.mlp.c_fc.bias`, shape: model.parts.weights.text.info(key)!.shape, layer: 'text' });
  }
  return out;
}
