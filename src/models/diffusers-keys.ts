// Diffusers → LDM key names for the SD 1.x / 2.x UNet, VAE and CLIP text encoder, so a diffusers folder
// runs through the same graph builders as a single-file checkpoint. The block arithmetic follows
// diffusers' convert_original_stable_diffusion_to_diffusers.py and ComfyUI's unet_to_diffusers.

/** What the UNet's key layout depends on, read from `unet/config.json` (or the keys when it is silent). */
export interface UNetKeyLayout {
  /** Resnets per down level (the up levels have one more each). */
  readonly layersPerBlock: readonly number[];
  /** Per up level (diffusers order, lowest resolution first): whether it has attentions. */
  readonly upHasAttention: readonly boolean[];
  readonly midHasAttention: boolean;
}

const RESNET: Readonly<Record<string, string>> = {
  norm1: 'in_layers.0',
  conv1: 'in_layers.2',
  time_emb_proj: 'emb_layers.1',
  norm2: 'out_layers.0',
  conv2: 'out_layers.3',
  conv_shortcut: 'skip_connection',
};

/** `norm1.weight` → `in_layers.0.weight`; undefined for anything a resnet does not hold. */
function resnetSubKey(rest: string): string | undefined {
  const dot = rest.indexOf('.');
  const name = rest.slice(0, dot);
  if (dot <= 0 || !Object.hasOwn(RESNET, name)) return undefined;
  return `${RESNET[name]}${rest.slice(dot)}`;
}

function sum(xs: readonly number[], end: number): number {
  let s = 0;
  for (let i = 0; i < end; i++) s += xs[i];
  return s;
}

/** A diffusers UNet key (no prefix) → its LDM name under `model.diffusion_model.`, or undefined. */
export function unetLdmKey(key: string, layout: UNetKeyLayout): string | undefined {
  const lpb = layout.layersPerBlock;
  const levels = lpb.length;
  const simple: Readonly<Record<string, string>> = {
    'conv_in.': 'input_blocks.0.0.',
    'time_embedding.linear_1.': 'time_embed.0.',
    'time_embedding.linear_2.': 'time_embed.2.',
    'conv_norm_out.': 'out.0.',
    'conv_out.': 'out.2.',
  };
  for (const [from, to] of Object.entries(simple)) {
    if (key.startsWith(from)) return to + key.slice(from.length);
  }
  let m = /^down_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const [level, j] = [Number(m[1]), Number(m[3])];
    if (level >= levels || j >= lpb[level]) return undefined;
    // input_blocks.0 is conv_in; each level then holds its resnets and one downsampler.
    const block = 1 + sum(lpb, level) + level + j;
    if (m[2] === 'attentions') return `input_blocks.${block}.1.${m[4]}`;
    const sub = resnetSubKey(m[4]);
    return sub && `input_blocks.${block}.0.${sub}`;
  }
  m = /^down_blocks\.(\d+)\.downsamplers\.0\.conv\.(.+)$/.exec(key);
  if (m) {
    const level = Number(m[1]);
    if (level >= levels - 1) return undefined;
    return `input_blocks.${1 + sum(lpb, level + 1) + level}.0.op.${m[2]}`;
  }
  m = /^mid_block\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const j = Number(m[2]);
    if (m[1] === 'attentions') return j === 0 && layout.midHasAttention ? `middle_block.1.${m[3]}` : undefined;
    const sub = resnetSubKey(m[3]);
    if (!sub || j > 1) return undefined;
    return `middle_block.${j === 0 ? 0 : layout.midHasAttention ? 2 : 1}.${sub}`;
  }
  // Up levels run lowest resolution first, mirroring the down levels, with one extra resnet each.
  const upLpb = [...lpb].reverse().map((n) => n + 1);
  m = /^up_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(key);
  if (m) {
    const [level, j] = [Number(m[1]), Number(m[3])];
    if (level >= levels || j >= upLpb[level]) return undefined;
    const block = sum(upLpb, level) + j;
    if (m[2] === 'attentions') return layout.upHasAttention[level] ? `output_blocks.${block}.1.${m[4]}` : undefined;
    const sub = resnetSubKey(m[4]);
    return sub && `output_blocks.${block}.0.${sub}`;
  }
  m = /^up_blocks\.(\d+)\.upsamplers\.0\.conv\.(.+)$/.exec(key);
  if (m) {
    const level = Number(m[1]);
    if (level >= levels - 1) return undefined;
    // The upsampler sits after the last resnet (and its attention, when the level has one).
    const slot = layout.upHasAttention[level] ? 2 : 1;
    return `output_blocks.${sum(upLpb, level + 1) - 1}.${slot}.conv.${m[2]}`;
  }
  return undefined;
}

const VAE_RESNET: Readonly<Record<string, string>> = {
  norm1: 'norm1', conv1: 'conv1', norm2: 'norm2', conv2: 'conv2', conv_shortcut: 'nin_shortcut',
};

// Newer diffusers name the attention Linear layers like any Attention; older files use query/key/value.
const VAE_ATTENTION: Readonly<Record<string, string>> = {
  group_norm: 'norm',
  to_q: 'q', query: 'q',
  to_k: 'k', key: 'k',
  to_v: 'v', value: 'v',
  'to_out.0': 'proj_out', proj_attn: 'proj_out',
};

function renameSub(rest: string, table: Readonly<Record<string, string>>): string | undefined {
  const m = /^(.+)\.(weight|bias)$/.exec(rest);
  if (!m || !Object.hasOwn(table, m[1])) return undefined;
  return `${table[m[1]]}.${m[2]}`;
}

/**
 * A diffusers AutoencoderKL key (no prefix) → its LDM name under `first_stage_model.`, or undefined.
 * `levels` is the number of resolution levels (len(block_out_channels)): the decoder's `up_blocks` run
 * in execution order while LDM's `up` list is indexed by resolution, hence the reversal.
 */
export function vaeLdmKey(key: string, levels: number): string | undefined {
  if (/^(quant_conv|post_quant_conv)\.(weight|bias)$/.test(key)) return key;
  const m = /^(encoder|decoder)\.(.+)$/.exec(key);
  if (!m) return undefined;
  const [, part, rest] = m;
  const top: Readonly<Record<string, string>> = { conv_in: 'conv_in', conv_out: 'conv_out', conv_norm_out: 'norm_out' };
  const t = renameSub(rest, top);
  if (t) return `${part}.${t}`;
  let r = /^(down|up)_blocks\.(\d+)\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(rest);
  if (r) {
    if ((r[1] === 'down') !== (part === 'encoder')) return undefined;
    const level = Number(r[2]);
    if (level >= levels) return undefined;
    const at = r[1] === 'down' ? level : levels - 1 - level;
    const sub = renameSub(r[5], r[3] === 'resnets' ? VAE_RESNET : VAE_ATTENTION);
    return sub && `${part}.${r[1]}.${at}.${r[3] === 'resnets' ? 'block' : 'attn'}.${r[4]}.${sub}`;
  }
  r = /^(down|up)_blocks\.(\d+)\.(downsamplers|upsamplers)\.0\.conv\.(weight|bias)$/.exec(rest);
  if (r) {
    if ((r[1] === 'down') !== (part === 'encoder')) return undefined;
    const level = Number(r[2]);
    if (level >= levels) return undefined;
    const at = r[1] === 'down' ? level : levels - 1 - level;
    return `${part}.${r[1]}.${at}.${r[1] === 'down' ? 'downsample' : 'upsample'}.conv.${r[4]}`;
  }
  r = /^mid_block\.(resnets|attentions)\.(\d+)\.(.+)$/.exec(rest);
  if (r) {
    const j = Number(r[2]);
    if (r[1] === 'resnets') {
      const sub = renameSub(r[3], VAE_RESNET);
      return sub && j <= 1 ? `${part}.mid.block_${j + 1}.${sub}` : undefined;
    }
    const sub = renameSub(r[3], VAE_ATTENTION);
    return sub && j === 0 ? `${part}.mid.attn_1.${sub}` : undefined;
  }
  return undefined;
}

/** A transformers CLIPTextModel key → its name under `cond_stage_model.transformer.`, or undefined. */
export function textLdmKey(key: string): string | undefined {
  return key.startsWith('text_model.') ? key : undefined;
}

/**
 * LDM key → source key for every key `rename` maps. Two source keys landing on one LDM key means the
 * layout was misread (wrong layers_per_block, say), which would otherwise silently drop weights.
 */
export function ldmKeyMap(keys: Iterable<string>, rename: (key: string) => string | undefined, prefix: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const key of keys) {
    const ldm = rename(key);
    if (ldm === undefined) continue;
    const full = prefix ? `${prefix}.${ldm}` : ldm;
    const prev = map.get(full);
    if (prev !== undefined) throw new Error(`'${prev}' and '${key}' both map to '${full}'`);
    map.set(full, key);
  }
  return map;
}
