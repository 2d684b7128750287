// The LDM UNetModel of SD 1.x / 2.x (openaimodel.py), written against the checkpoint's own key tree:
// `input_blocks.N.M`, `middle_block.M`, `output_blocks.N.M`, `time_embed`, `out`.
import type { GraphBuilder, WeightScope } from '../graph/builder.js';
import type { Value } from '../graph/types.js';
import { Tensor } from '../tensor/tensor.js';

/** Everything the graph needs that the weights' shapes cannot say, plus what they do (for reporting). */
export interface UNetConfig {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly modelChannels: number;
  readonly contextDim: number;
  /** Either a fixed head count (SD1: 8) or a fixed head width (SD2: 64); shapes cannot tell which. */
  readonly heads: { readonly count: number } | { readonly width: number };
  /** SD2 projects into the transformer with Linear layers, SD1 with 1×1 convolutions. */
  readonly linearProjection: boolean;
  readonly inputBlocks: readonly BlockKind[][];
  readonly outputBlocks: readonly BlockKind[][];
  readonly middleHasAttention: boolean;
  /**
   * Width of the vector conditioning `y` that `label_emb` embeds (SDXL's ADM vector: pooled text +
   * size embeddings); absent for UNets without `label_emb` (SD1/SD2).
   */
  readonly admInChannels?: number;
}

export type BlockKind = 'res' | 'attn' | 'down' | 'up';

/**
 * Replaces the context an attention layer's to_k / to_v read (self-attention: the normed tokens;
 * cross-attention: the text conditioning). A1111 hypernetworks work this way, on both attentions.
 */
export type ContextHook = (g: GraphBuilder, context: Value) => { readonly k: Value; readonly v: Value };

const GROUPS = 32;
// GroupNorm32 in ResBlocks / out uses torch's default eps; SpatialTransformer.norm uses 1e-6.
const RES_EPS = 1e-5;
const ATTN_NORM_EPS = 1e-6;
const LN_EPS = 1e-5;

function headsFor(cfg: UNetConfig, channels: number): number {
  if ('count' in cfg.heads) return cfg.heads.count;
  return channels / cfg.heads.width;
}

/** cos-first sinusoidal embedding of (possibly fractional) timesteps, as ldm's timestep_embedding. */
export function timestepEmbedding(g: GraphBuilder, t: Value, dim: number): Value {
  const half = Math.floor(dim / 2);
  // torch builds the frequencies in float32: exp(-ln(10000) * arange(half) / half)
  const freqs = Float32Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * Math.fround(i)) / half));
  const f = g.constant(Tensor.f32([1, half], freqs), 'freqs');
  const args = g.mul(g.reshape(t, [-1, 1]), f);
  return g.concat([g.cos(args), g.sin(args)], 1);
}

function resBlock(g: GraphBuilder, w: WeightScope, x: Value, emb: Value): Value {
  let h = g.silu(g.groupNorm(x, w.scope('in_layers.0'), GROUPS, RES_EPS));
  h = g.conv2d(h, w.scope('in_layers.2'), { padding: 1, kernel: 3 });
  const e = g.linear(g.silu(emb), w.scope('emb_layers.1'));
  h = g.add(h, g.reshape(e, [0, -1, 1, 1]));
  h = g.silu(g.groupNorm(h, w.scope('out_layers.0'), GROUPS, RES_EPS));
  h = g.conv2d(h, w.scope('out_layers.3'), { padding: 1, kernel: 3 });
  const skip = w.has('skip_connection.weight') ? g.conv2d(x, w.scope('skip_connection'), { kernel: 1 }) : x;
  return g.add(skip, h);
}

function crossAttention(g: GraphBuilder, w: WeightScope, x: Value, context: Value, heads: number, hook?: ContextHook): Value {
  const q = g.linear(x, w.scope('to_q'));
  const kv = hook ? hook(g, context) : { k: context, v: context };
  const k = g.linear(kv.k, w.scope('to_k'));
  const v = g.linear(kv.v, w.scope('to_v'));
  return g.linear(g.attention(q, k, v, { heads }), w.scope('to_out.0'));
}

function feedForward(g: GraphBuilder, w: WeightScope, x: Value): Value {
  const proj = g.linear(x, w.scope('net.0.proj'));
  const inner = (proj.shape[2] as number) / 2;
  // GEGLU: the projection holds [value, gate] in that order.
  const [value, gate] = g.split(proj, [inner, inner], 2);
  return g.linear(g.mul(value, g.gelu(gate)), w.scope('net.2'));
}

function basicTransformerBlock(g: GraphBuilder, w: WeightScope, x: Value, context: Value, heads: number, hook?: ContextHook): Value {
  const n1 = g.layerNorm(x, w.scope('norm1'), LN_EPS);
  x = g.add(crossAttention(g, w.scope('attn1'), n1, n1, heads, hook), x);
  x = g.add(crossAttention(g, w.scope('attn2'), g.layerNorm(x, w.scope('norm2'), LN_EPS), context, heads, hook), x);
  return g.add(feedForward(g, w.scope('ff'), g.layerNorm(x, w.scope('norm3'), LN_EPS)), x);
}

function spatialTransformer(g: GraphBuilder, cfg: UNetConfig, w: WeightScope, x: Value, context: Value, hook?: ContextHook): Value {
  const c = x.shape[1] as number;
  const heads = headsFor(cfg, c);
  const toTokens = (v: Value) => g.transpose(g.reshape(v, [0, 0, -1]), [0, 2, 1]);
  const fromTokens = (v: Value) => g.reshapeAs(g.transpose(v, [0, 2, 1]), x);
  let h = g.groupNorm(x, w.scope('norm'), GROUPS, ATTN_NORM_EPS);
  if (cfg.linearProjection) h = g.linear(toTokens(h), w.scope('proj_in'));
  else h = toTokens(g.conv2d(h, w.scope('proj_in'), { kernel: 1 }));
  for (let i = 0; w.has(`transformer_blocks.${i}.norm1.weight`); i++) {
    h = basicTransformerBlock(g, w.scope(`transformer_blocks.${i}`), h, context, heads, hook);
  }
  if (cfg.linearProjection) h = fromTokens(g.linear(h, w.scope('proj_out')));
  else h = g.conv2d(fromTokens(h), w.scope('proj_out'), { kernel: 1 });
  return g.add(h, x);
}

/**
 * `upTo` is the skip connection the block's upsample output will be concatenated with: upsampling
 * targets its size (as ComfyUI does, and A1111's concat hijack), so latents whose sides are not
 * multiples of 8 still line up.
 */
export function runBlock(g: GraphBuilder, cfg: UNetConfig, w: WeightScope, kinds: readonly BlockKind[], h: Value, emb: Value, context: Value, upTo?: Value, hook?: ContextHook): Value {
  kinds.forEach((kind, m) => {
    const lw = w.scope(m);
    if (kind === 'res') h = resBlock(g, lw, h, emb);
    else if (kind === 'attn') h = spatialTransformer(g, cfg, lw, h, context, hook);
    else if (kind === 'down') h = g.conv2d(h, lw.scope('op'), { stride: 2, padding: 1, kernel: 3 });
    else h = g.conv2d(upTo ? g.upsampleNearestTo(h, upTo) : g.upsampleNearest(h, 2), lw.scope('conv'), { padding: 1, kernel: 3 });
  });
  return h;
}

/** time_embed(timestep_embedding(t)): shared by the UNet and a ControlNet's copy of its encoder. */
export function timeEmbed(g: GraphBuilder, w: WeightScope, cfg: UNetConfig, timesteps: Value): Value {
  const t = timestepEmbedding(g, timesteps, cfg.modelChannels);
  return g.linear(g.silu(g.linear(t, w.scope('time_embed.0'))), w.scope('time_embed.2'));
}

export function middleKinds(cfg: UNetConfig): BlockKind[] {
  return cfg.middleHasAttention ? ['res', 'attn', 'res'] : ['res', 'res'];
}

/**
 * Builds UNetModel(x, timesteps, context, y) → eps or v. `w` is scoped at `model.diffusion_model`.
 * Inputs: `x` [B, C, H, W], `timesteps` [B] (fractional allowed), `context` [B, T, ctx], and for
 * UNets with `label_emb` (SDXL) `y` [B, adm]. `control`: ControlNet residuals, one per skip
 * connection (input block 0 first) then the middle block's, added as cldm's ControlledUnetModel does.
 */
export function buildUNet(g: GraphBuilder, w: WeightScope, cfg: UNetConfig, io: { x: Value; timesteps: Value; context: Value; y?: Value; contextHook?: ContextHook; control?: readonly Value[] }): Value {
  let emb = timeEmbed(g, w, cfg, io.timesteps);
  if (cfg.admInChannels) {
    if (!io.y) throw new Error(`this UNet takes a ${cfg.admInChannels}-wide vector conditioning (label_emb) but none was given`);
    // label_emb = Sequential(Sequential(Linear, SiLU, Linear)): added to the timestep embedding.
    emb = g.add(emb, g.linear(g.silu(g.linear(io.y, w.scope('label_emb.0.0'))), w.scope('label_emb.0.2')));
  }

  let h = g.conv2d(io.x, w.scope('input_blocks.0.0'), { padding: 1, kernel: 3 });
  const skips: Value[] = [h];
  cfg.inputBlocks.forEach((kinds, i) => {
    h = runBlock(g, cfg, w.scope(`input_blocks.${i + 1}`), kinds, h, emb, io.context, undefined, io.contextHook);
    skips.push(h);
  });
  h = runBlock(g, cfg, w.scope('middle_block'), middleKinds(cfg), h, emb, io.context, undefined, io.contextHook);
  const control = io.control;
  if (control && control.length !== skips.length + 1) throw new Error(`this UNet takes ${skips.length + 1} control residuals, not ${control.length}`);
  // The residual goes first in each Add so the sum keeps the UNet's own (symbolic) shape.
  if (control) h = g.add(control[skips.length], h);
  cfg.outputBlocks.forEach((kinds, i) => {
    let skip = skips.pop();
    if (!skip) throw new Error('UNet has more output blocks than skip connections');
    if (control) skip = g.add(control[skips.length], skip);
    h = runBlock(g, cfg, w.scope(`output_blocks.${i}`), kinds, g.concat([h, skip], 1), emb, io.context, skips[skips.length - 1], io.contextHook);
  });
  h = g.silu(g.groupNorm(h, w.scope('out.0'), GROUPS, RES_EPS));
  return g.conv2d(h, w.scope('out.2'), { padding: 1, kernel: 3 });
}

/** Reads the block layout and widths off the key tree and tensor shapes. */
export function detectUNet(keys: ReadonlySet<string>, shape: (key: string) => readonly number[] | undefined, prefix: string, heads: UNetConfig['heads']): UNetConfig {
  const k = (s: string) => `${prefix}${s}`;
  const out = shape(k('out.2.weight'));
  if (!shape(k('input_blocks.0.0.weight')) || !out) throw new Error(`no UNet found (missing ${k('input_blocks.0.0.weight')} or ${k('out.2.weight')})`);
  const enc = detectUNetEncoder(keys, shape, prefix, heads);
  const outputBlocks: BlockKind[][] = [];
  for (let i = 0; keys.has(k(`output_blocks.${i}.0.in_layers.0.weight`)); i++) outputBlocks.push(layerKinds(keys, k(`output_blocks.${i}`)));
  if (outputBlocks.length !== enc.inputBlocks.length + 1) {
    throw new Error(`UNet has ${enc.inputBlocks.length + 1} input blocks but ${outputBlocks.length} output blocks`);
  }
  return { ...enc, outChannels: out[0], outputBlocks };
}

function layerKinds(keys: ReadonlySet<string>, block: string): BlockKind[] {
  const kinds: BlockKind[] = [];
  for (let m = 0; ; m++) {
    const p = `${block}.${m}.`;
    if (keys.has(`${p}in_layers.0.weight`)) kinds.push('res');
    else if (keys.has(`${p}proj_in.weight`)) kinds.push('attn');
    else if (keys.has(`${p}op.weight`)) kinds.push('down');
    else if (keys.has(`${p}conv.weight`)) kinds.push('up');
    else break;
  }
  return kinds;
}

/**
 * The encoder half alone (time embedding, input blocks, middle block): what a ControlNet copies.
 * `outChannels` is the input's and `outputBlocks` is empty.
 */
export function detectUNetEncoder(keys: ReadonlySet<string>, shape: (key: string) => readonly number[] | undefined, prefix: string, heads: UNetConfig['heads']): UNetConfig {
  const k = (s: string) => `${prefix}${s}`;
  const conv0 = shape(k('input_blocks.0.0.weight'));
  if (!conv0) throw new Error(`no UNet encoder found (missing ${k('input_blocks.0.0.weight')})`);
  const inputBlocks: BlockKind[][] = [];
  for (let i = 1; keys.has(k(`input_blocks.${i}.0.in_layers.0.weight`)) || keys.has(k(`input_blocks.${i}.0.op.weight`)); i++) inputBlocks.push(layerKinds(keys, k(`input_blocks.${i}`)));
  const anyAttn = [...keys].find((key) => key.startsWith(prefix) && key.endsWith('.attn2.to_k.weight'));
  const contextDim = anyAttn ? shape(anyAttn)![1] : 0;
  const projIn = [...keys].find((key) => key.startsWith(prefix) && key.endsWith('.proj_in.weight'));
  return {
    inChannels: conv0[1], outChannels: conv0[1], modelChannels: conv0[0], contextDim, heads,
    linearProjection: projIn ? shape(projIn)!.length === 2 : false,
    inputBlocks, outputBlocks: [],
    middleHasAttention: keys.has(k('middle_block.1.proj_in.weight')),
    admInChannels: shape(k('label_emb.0.0.weight'))?.[1],
  };
}
