// The LDM AutoencoderKL (ldm/modules/diffusionmodules/model.py) on its checkpoint keys:
// `encoder.*`, `decoder.*`, `quant_conv`, `post_quant_conv` under `first_stage_model.`.
import type { GraphBuilder, WeightScope } from '../graph/builder.js';
import type { Value } from '../graph/types.js';

const GROUPS = 32;
const EPS = 1e-6; // every VAE GroupNorm uses 1e-6

function resnetBlock(g: GraphBuilder, w: WeightScope, x: Value): Value {
  let h = g.conv2d(g.silu(g.groupNorm(x, w.scope('norm1'), GROUPS, EPS)), w.scope('conv1'), { padding: 1, kernel: 3 });
  h = g.conv2d(g.silu(g.groupNorm(h, w.scope('norm2'), GROUPS, EPS)), w.scope('conv2'), { padding: 1, kernel: 3 });
  const skip = w.has('nin_shortcut.weight') ? g.conv2d(x, w.scope('nin_shortcut'), { kernel: 1 }) : x;
  return g.add(skip, h);
}

/** 1×1 conv weights; some converted files store them as Linear [C, C], which is the same matrix. */
function pointwise(g: GraphBuilder, w: WeightScope, name: string, x: Value): Value {
  const shape = w.shape(`${name}.weight`);
  if (shape?.length === 2) {
    const weight = w.get(`${name}.weight`, undefined, { kind: 'reshape', shape: [shape[0], shape[1], 1, 1] });
    return g.conv2d(x, weight, {}, w.get(`${name}.bias`, [shape[0]]));
  }
  return g.conv2d(x, w.scope(name), { kernel: 1 });
}

/** Single-head self-attention over all pixels, scale C^-0.5. */
function attnBlock(g: GraphBuilder, w: WeightScope, x: Value): Value {
  const h = g.groupNorm(x, w.scope('norm'), GROUPS, EPS);
  const tokens = (v: Value) => g.transpose(g.reshape(v, [0, 0, -1]), [0, 2, 1]);
  const a = g.attention(tokens(pointwise(g, w, 'q', h)), tokens(pointwise(g, w, 'k', h)), tokens(pointwise(g, w, 'v', h)), { heads: 1 });
  const back = g.reshapeAs(g.transpose(a, [0, 2, 1]), x);
  return g.add(x, pointwise(g, w, 'proj_out', back));
}

function countLevels(w: WeightScope, prefix: string): number {
  let n = 0;
  while (w.has(`${prefix}.${n}.block.0.conv1.weight`)) n++;
  return n;
}

function countBlocks(w: WeightScope, prefix: string): number {
  let n = 0;
  while (w.has(`${prefix}.block.${n}.conv1.weight`)) n++;
  return n;
}

function middle(g: GraphBuilder, w: WeightScope, h: Value): Value {
  h = resnetBlock(g, w.scope('block_1'), h);
  if (w.has('attn_1.norm.weight')) h = attnBlock(g, w.scope('attn_1'), h);
  return resnetBlock(g, w.scope('block_2'), h);
}

/** decode(z) = decoder(post_quant_conv(z)); z is the latent already divided by the scale factor. */
export function buildVaeDecoder(g: GraphBuilder, w: WeightScope, z: Value): Value {
  const d = w.scope('decoder');
  let h = g.conv2d(pointwise(g, w, 'post_quant_conv', z), d.scope('conv_in'), { padding: 1, kernel: 3 });
  h = middle(g, d.scope('mid'), h);
  const levels = countLevels(d, 'up');
  if (levels === 0) throw new Error(`no VAE decoder found (missing ${d.key('up.0.block.0.conv1.weight')})`);
  // `up` is stored high-resolution first and executed in reverse.
  for (let i = levels - 1; i >= 0; i--) {
    const lw = d.scope(`up.${i}`);
    const n = countBlocks(d, `up.${i}`);
    for (let j = 0; j < n; j++) {
      h = resnetBlock(g, lw.scope(`block.${j}`), h);
      if (lw.has(`attn.${j}.norm.weight`)) h = attnBlock(g, lw.scope(`attn.${j}`), h);
    }
    if (lw.has('upsample.conv.weight')) h = g.conv2d(g.upsampleNearest(h, 2), lw.scope('upsample.conv'), { padding: 1, kernel: 3 });
  }
  h = g.silu(g.groupNorm(h, d.scope('norm_out'), GROUPS, EPS));
  return g.conv2d(h, d.scope('conv_out'), { padding: 1, kernel: 3 });
}

/** encode(image) → [mean, logvar] of the posterior (logvar clamped to [-30, 20] as DiagonalGaussianDistribution). */
export function buildVaeEncoder(g: GraphBuilder, w: WeightScope, image: Value): { mean: Value; logvar: Value } {
  const e = w.scope('encoder');
  let h = g.conv2d(image, e.scope('conv_in'), { padding: 1, kernel: 3 });
  const levels = countLevels(e, 'down');
  if (levels === 0) throw new Error(`no VAE encoder found (missing ${e.key('down.0.block.0.conv1.weight')})`);
  for (let i = 0; i < levels; i++) {
    const lw = e.scope(`down.${i}`);
    const n = countBlocks(e, `down.${i}`);
    for (let j = 0; j < n; j++) {
      h = resnetBlock(g, lw.scope(`block.${j}`), h);
      if (lw.has(`attn.${j}.norm.weight`)) h = attnBlock(g, lw.scope(`attn.${j}`), h);
    }
    // The encoder pads right/bottom only, then a stride-2 conv without padding.
    if (lw.has('downsample.conv.weight')) h = g.conv2d(h, lw.scope('downsample.conv'), { stride: 2, padding: [0, 0, 1, 1], kernel: 3 });
  }
  h = middle(g, e.scope('mid'), h);
  h = g.conv2d(g.silu(g.groupNorm(h, e.scope('norm_out'), GROUPS, EPS)), e.scope('conv_out'), { padding: 1, kernel: 3 });
  const moments = pointwise(g, w, 'quant_conv', h);
  const c = (moments.shape[1] as number) / 2;
  const [mean, logvar] = g.split(moments, [c, c], 1);
  return { mean, logvar: g.clip(logvar, -30, 20) };
}
