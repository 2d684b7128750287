// CLIP text transformers as SD checkpoints store them: SD1's HF CLIPTextModel layout
// (`cond_stage_model.transformer.text_model.*`) and SD2's OpenCLIP layout (`cond_stage_model.model.*`).
import type { GraphBuilder, WeightScope } from '../graph/builder.js';
import type { Value } from '../graph/types.js';

export interface ClipTextConfig {
  readonly layout: 'hf' | 'openclip';
  readonly width: number;
  readonly layers: number;
  readonly heads: number;
  readonly contextLength: number;
  readonly activation: 'quick_gelu' | 'gelu';
  /** OpenCLIP's text_projection [W, E], used for the pooled output only. */
  readonly projectionDim?: number;
}

const LN_EPS = 1e-5;

function mlp(g: GraphBuilder, cfg: ClipTextConfig, fc1: WeightScope, fc2: WeightScope, x: Value): Value {
  const h = g.linear(x, fc1);
  return g.linear(cfg.activation === 'quick_gelu' ? g.quickGelu(h) : g.gelu(h), fc2);
}

function selfAttention(g: GraphBuilder, cfg: ClipTextConfig, w: WeightScope, x: Value, mask: Value): Value {
  if (cfg.layout === 'hf') {
    const q = g.linear(x, w.scope('q_proj'));
    const k = g.linear(x, w.scope('k_proj'));
    const v = g.linear(x, w.scope('v_proj'));
    return g.linear(g.attention(q, k, v, { heads: cfg.heads, bias: mask }), w.scope('out_proj'));
  }
  // OpenCLIP keeps q, k, v fused in in_proj ([q; k; v] rows); slice them apart when materialising.
  const W = cfg.width;
  const part = (i: number) => {
    const rows = { kind: 'rows', start: i * W, end: (i + 1) * W } as const;
    const weight = w.get('in_proj_weight', [3 * W, W], [rows, { kind: 'transpose' }]);
    const bias = w.get('in_proj_bias', [3 * W], rows);
    return g.linear(x, weight, bias);
  };
  return g.linear(g.attention(part(0), part(1), part(2), { heads: cfg.heads, bias: mask }), w.scope('out_proj'));
}

/** h_0 = token (or given) embeddings + positions; then one pre-LN block per call of `block`. */
function embedTokens(g: GraphBuilder, w: WeightScope, cfg: ClipTextConfig, ids: Value): Value {
  const hf = cfg.layout === 'hf';
  // A float input holds token embeddings looked up on the host (textual inversion puts its vectors there).
  const embedsIn = ids.type !== 'i64' && ids.type !== 'i32';
  const tok = embedsIn ? undefined : hf ? w.get('embeddings.token_embedding.weight', [undefined, cfg.width]) : w.get('token_embedding.weight', [undefined, cfg.width]);
  const pos = hf ? w.get('embeddings.position_embedding.weight', [cfg.contextLength, cfg.width]) : w.get('positional_embedding', [cfg.contextLength, cfg.width]);
  return g.add(tok ? g.gather(tok, ids, 0) : ids, pos);
}

function block(g: GraphBuilder, w: WeightScope, cfg: ClipTextConfig, h: Value, i: number, mask: Value): Value {
  if (cfg.layout === 'hf') {
    const l = w.scope(`encoder.layers.${i}`);
    h = g.add(h, selfAttention(g, cfg, l.scope('self_attn'), g.layerNorm(h, l.scope('layer_norm1'), LN_EPS), mask));
    return g.add(h, mlp(g, cfg, l.scope('mlp.fc1'), l.scope('mlp.fc2'), g.layerNorm(h, l.scope('layer_norm2'), LN_EPS)));
  }
  const l = w.scope(`transformer.resblocks.${i}`);
  h = g.add(h, selfAttention(g, cfg, l.scope('attn'), g.layerNorm(h, l.scope('ln_1'), LN_EPS), mask));
  return g.add(h, mlp(g, cfg, l.scope('mlp.c_fc'), l.scope('mlp.c_proj'), g.layerNorm(h, l.scope('ln_2'), LN_EPS)));
}

const finalNorm = (g: GraphBuilder, w: WeightScope, cfg: ClipTextConfig, h: Value) => g.layerNorm(h, w.scope(cfg.layout === 'hf' ? 'final_layer_norm' : 'ln_final'), LN_EPS);

function checkLayers(cfg: ClipTextConfig, layers: number, min = 1): void {
  if (!Number.isInteger(layers) || layers < min || layers > cfg.layers) {
    throw new Error(`text encoder has ${cfg.layers} layers; cannot stop after ${layers} (clip skip out of range)`);
  }
}

/**
 * Token ids [B, T] (or token embeddings [B, T, W]) → ln_final(h_n), where h_n is the output of the first `layers` blocks
 * (all of them for SD1; one fewer for SD2's "penultimate" and A1111's clip skip 2).
 */
export function buildClipText(g: GraphBuilder, w: WeightScope, cfg: ClipTextConfig, ids: Value, layers = cfg.layers): Value {
  checkLayers(cfg, layers);
  let h = embedTokens(g, w, cfg, ids);
  const mask = g.causalMask(cfg.contextLength);
  for (let i = 0; i < layers; i++) h = block(g, w, cfg, h, i, mask);
  return finalNorm(g, w, cfg, h);
}

/**
 * SDXL's use of a text encoder: the raw hidden state h_layers (no final norm: sgm's CLIP-L
 * `hidden_states[-2]`, OpenCLIP-G "penultimate") and, when `poolAt` ([B, T] one-hot at each row's
 * first EOS) is given, the pooled output ln_final(h_L)[eos] @ text_projection, which always comes
 * from the last block whatever layer the hidden state is taken from.
 */
export function buildClipTextHidden(g: GraphBuilder, w: WeightScope, cfg: ClipTextConfig, ids: Value, layers: number, poolAt?: Value): { hidden: Value; pooled?: Value } {
  checkLayers(cfg, layers, 0);
  let h = embedTokens(g, w, cfg, ids);
  const mask = g.causalMask(cfg.contextLength);
  let hidden = h;
  const depth = poolAt ? cfg.layers : layers;
  for (let i = 0; i < depth; i++) {
    h = block(g, w, cfg, h, i, mask);
    if (i + 1 === layers) hidden = h;
  }
  if (!poolAt) return { hidden };
  if (!cfg.projectionDim) throw new Error('this text encoder has no text_projection, so no pooled output');
  const last = finalNorm(g, w, cfg, h);
  // [B, 1, T] × [B, T, W] picks each row's EOS vector without a data-dependent gather.
  const picked = g.reshape(g.matmul(g.reshape(poolAt, [0, 1, -1]), last), [0, cfg.width]);
  // OpenCLIP applies text_projection [W, E] as x @ P.
  const pooled = g.matmul(picked, w.get('text_projection', [cfg.width, cfg.projectionDim]));
  return { hidden, pooled };
}

/** Reads layout, width and depth off the keys; the head count follows CLIP's 64-wide heads unless given. */
export function detectClipText(keys: ReadonlySet<string>, shape: (key: string) => readonly number[] | undefined, prefix: string, heads?: number): ClipTextConfig {
  const hfTok = shape(`${prefix}embeddings.token_embedding.weight`);
  const ocTok = shape(`${prefix}token_embedding.weight`);
  const tok = hfTok ?? ocTok;
  if (!tok) throw new Error(`no CLIP text encoder found under '${prefix}'`);
  const hf = !!hfTok;
  const width = tok[1];
  const layerKey = hf ? (i: number) => `${prefix}encoder.layers.${i}.layer_norm1.weight` : (i: number) => `${prefix}transformer.resblocks.${i}.ln_1.weight`;
  let layers = 0;
  while (keys.has(layerKey(layers))) layers++;
  const pos = shape(hf ? `${prefix}embeddings.position_embedding.weight` : `${prefix}positional_embedding`);
  const h = heads ?? width / 64;
  if (!Number.isInteger(h) || h < 1 || width % h !== 0) {
    throw new Error(heads ? `text encoder width ${width} does not split into ${heads} heads` : `text encoder width ${width} is not a multiple of CLIP's 64-wide heads; give the head count (--text-heads N)`);
  }
  return {
    layout: hf ? 'hf' : 'openclip', width, layers, heads: h, contextLength: pos?.[0] ?? 77,
    activation: hf ? 'quick_gelu' : 'gelu',
    projectionDim: hf ? undefined : shape(`${prefix}text_projection`)?.[1],
  };
}
