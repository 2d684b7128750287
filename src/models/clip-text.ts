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

/**
 * Token ids [B, T] (or token embeddings [B, T, W]) → ln_final(h_n), where h_n is the output of the first `layers` blocks
 * (all of them for SD1; one fewer for SD2's "penultimate" and A1111's clip skip 2).
 */
export function buildClipText(g: GraphBuilder, w: WeightScope, cfg: ClipTextConfig, ids: Value, layers = cfg.layers): Value {
  if (!Number.isInteger(layers) || layers < 1 || layers > cfg.layers) {
    throw new Error(`text encoder has ${cfg.layers} layers; cannot stop after ${layers} (clip skip out of range)`);
  }
  const hf = cfg.layout === 'hf';
  // A float input holds token embeddings looked up on the host (textual inversion puts its vectors there).
  const embedsIn = ids.type !== 'i64' && ids.type !== 'i32';
  const tok = embedsIn ? undefined : hf ? w.get('embeddings.token_embedding.weight', [undefined, cfg.width]) : w.get('token_embedding.weight', [undefined, cfg.width]);
  const pos = hf ? w.get('embeddings.position_embedding.weight', [cfg.contextLength, cfg.width]) : w.get('positional_embedding', [cfg.contextLength, cfg.width]);
  let h = g.add(tok ? g.gather(tok, ids, 0) : ids, pos);
  const mask = g.causalMask(cfg.contextLength);
  for (let i = 0; i < layers; i++) {
    if (hf) {
      const l = w.scope(`encoder.layers.${i}`);
      h = g.add(h, selfAttention(g, cfg, l.scope('self_attn'), g.layerNorm(h, l.scope('layer_norm1'), LN_EPS), mask));
      h = g.add(h, mlp(g, cfg, l.scope('mlp.fc1'), l.scope('mlp.fc2'), g.layerNorm(h, l.scope('layer_norm2'), LN_EPS)));
    } else {
      const l = w.scope(`transformer.resblocks.${i}`);
      h = g.add(h, selfAttention(g, cfg, l.scope('attn'), g.layerNorm(h, l.scope('ln_1'), LN_EPS), mask));
      h = g.add(h, mlp(g, cfg, l.scope('mlp.c_fc'), l.scope('mlp.c_proj'), g.layerNorm(h, l.scope('ln_2'), LN_EPS)));
    }
  }
  return g.layerNorm(h, w.scope(hf ? 'final_layer_norm' : 'ln_final'), LN_EPS);
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
