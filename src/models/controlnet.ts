// ControlNet (lllyasviel's cldm.ControlNet) written against its own key tree: a copy of the UNet's
// encoder half (`time_embed`, `input_blocks`, `middle_block`) plus `input_hint_block` (the control
// image, 8× the latent, down to model_channels), one 1×1 `zero_convs.N.0` per input block and
// `middle_block_out.0`. Its outputs are the residuals the controlled UNet adds to its skip
// connections and its middle block (buildUNet's `control`).
import type { GraphBuilder, WeightScope } from '../graph/builder.js';
import type { Value } from '../graph/types.js';
import { detectUNetEncoder, middleKinds, runBlock, timeEmbed, type UNetConfig } from './unet.js';

export interface ControlNetConfig {
  /** The encoder half it copies (heads as for the UNet it controls; outputBlocks empty). */
  readonly trunk: UNetConfig;
  /** Channels of the control image (3 for every released ControlNet). */
  readonly hintChannels: number;
  /** Indices of the hint block's convolutions (0, 2, …, 14 in the original: SiLU between them). */
  readonly hintConvs: readonly number[];
}

// The original hard-codes the hint block's downsampling at these layers (3 × stride 2 = 8×).
const HINT_STRIDE_2 = new Set([4, 8, 12]);

/** Number of residuals: one per input block (input_blocks.0 included) plus the middle block's. */
export function residualCount(cfg: ControlNetConfig): number {
  return cfg.trunk.inputBlocks.length + 2;
}

/**
 * ControlNet.forward(x, hint, timesteps, context) → residuals, input block 0 first, middle last.
 * `hint` is [B, hintChannels, 8h, 8w] in 0…1; `x` the UNet's (scaled) input.
 */
export function buildControlNet(g: GraphBuilder, w: WeightScope, cfg: ControlNetConfig, io: { x: Value; hint: Value; timesteps: Value; context: Value }): Value[] {
  const { trunk } = cfg;
  const emb = timeEmbed(g, w, trunk, io.timesteps);
  let guided = io.hint;
  cfg.hintConvs.forEach((i, n) => {
    guided = g.conv2d(guided, w.scope(`input_hint_block.${i}`), { padding: 1, kernel: 3, stride: HINT_STRIDE_2.has(i) ? 2 : 1 });
    if (n < cfg.hintConvs.length - 1) guided = g.silu(guided);
  });
  // input block 0's output plus the hint features; the hint's size (8h / 8 after three stride-2
  // convolutions) only equals the latent's when the hint is exactly 8× it, which callers ensure.
  let h = g.add(g.conv2d(io.x, w.scope('input_blocks.0.0'), { padding: 1, kernel: 3 }), guided);
  const zero = (v: Value, i: number) => g.conv2d(v, w.scope(`zero_convs.${i}.0`), { kernel: 1 });
  const outs = [zero(h, 0)];
  trunk.inputBlocks.forEach((kinds, i) => {
    h = runBlock(g, trunk, w.scope(`input_blocks.${i + 1}`), kinds, h, emb, io.context);
    outs.push(zero(h, i + 1));
  });
  h = runBlock(g, trunk, w.scope('middle_block'), middleKinds(trunk), h, emb, io.context);
  outs.push(g.conv2d(h, w.scope('middle_block_out.0'), { kernel: 1 }));
  return outs;
}

/** Reads a ControlNet's layout off its keys (no prefix: `prefix` is '' or 'control_model.'). */
export function detectControlNet(keys: ReadonlySet<string>, shape: (key: string) => readonly number[] | undefined, prefix: string, heads: UNetConfig['heads']): ControlNetConfig {
  const trunk = detectUNetEncoder(keys, shape, prefix, heads);
  const hintConvs: number[] = [];
  for (let i = 0; i < 64; i++) if (keys.has(`${prefix}input_hint_block.${i}.weight`)) hintConvs.push(i);
  const first = shape(`${prefix}input_hint_block.${hintConvs[0]}.weight`);
  if (!first) throw new Error(`no ControlNet hint block found ('${prefix}input_hint_block.0.weight')`);
  const cfg = { trunk, hintChannels: first[1], hintConvs };
  for (let i = 0; i < residualCount(cfg) - 1; i++) {
    if (!keys.has(`${prefix}zero_convs.${i}.0.weight`)) throw new Error(`ControlNet lacks '${prefix}zero_convs.${i}.0.weight' (it has ${trunk.inputBlocks.length + 1} input blocks)`);
  }
  if (!keys.has(`${prefix}middle_block_out.0.weight`)) throw new Error(`ControlNet lacks '${prefix}middle_block_out.0.weight'`);
  return cfg;
}
