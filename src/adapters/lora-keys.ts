// Which checkpoint weight a LoRA module name patches. LoRA files name modules the way their trainer saw
// the model — kohya flattens diffusers paths with '_' (`lora_unet_down_blocks_0_attentions_0_…`),
// diffusers / PEFT keep the dots (`unet.down_blocks.0.…`), a few tools use the LDM tree itself — so
// every spelling is reduced to one normalised name and looked up in a table built from the model's
// own keys. Building the table from the model (rather than parsing names) is what makes the
// ambiguous '_' flattening safe: only names that really exist can match.
import type { ModelParts } from '../models/sd-model.js';
import { unetLdmKey, type UNetKeyLayout } from '../models/diffusers-keys.js';
import type { UNetConfig } from '../models/unet.js';

export type PatchPart = 'unet' | 'text';

export interface PatchTarget {
  readonly part: PatchPart;
  /** Full key of the weight in the part's WeightSource. */
  readonly key: string;
  /** Shape of the weight (of its row block when `rows` is set): what a delta must reshape to. */
  readonly shape: readonly number[];
  /** A block of rows of a fused weight: OpenCLIP keeps q, k, v in one in_proj. */
  readonly rows?: readonly [number, number];
  /** The module's bias, for full-difference files (`diff_b`). */
  readonly biasKey?: string;
  readonly biasRows?: readonly [number, number];
}

/** A normalised module name ('unet:down_blocks_0_…', 'te:text_model_…') → the weight it patches. */
export type TargetTable = ReadonlyMap<string, PatchTarget>;

/** Module names of models latentkit cannot patch yet, so a LoRA for them is named as such. */
export type ForeignNamespace = 'sdxl-te1' | 'sdxl-te2';

export type NormalisedName = { readonly name: string } | { readonly foreign: ForeignNamespace };

const flat = (s: string): string => s.replace(/\./g, '_');

/**
 * A LoRA module name (the key without its tensor suffix) in any of the common spellings → the table's
 * normalised name. Diffusers' attention-processor files say `attn1.processor.to_q`; the processor
 * level does not exist in the model, so it is dropped.
 */
export function normaliseModuleName(raw: string): NormalisedName {
  let m = /^lora_te([12])_/.exec(raw);
  if (m) return { foreign: m[1] === '1' ? 'sdxl-te1' : 'sdxl-te2' };
  if (/^text_encoder_2\./.test(raw)) return { foreign: 'sdxl-te2' };
  const dotted = raw.replace(/\.processor\./g, '.');
  m = /^(?:lora_unet_|lycoris_)(.+)$/.exec(dotted);
  if (m) return { name: `unet:${flat(m[1])}` };
  m = /^lora_te_(.+)$/.exec(dotted);
  if (m) return { name: `te:${flat(m[1])}` };
  m = /^(?:base_model\.model\.)?unet\.(.+)$/.exec(dotted);
  if (m) return { name: `unet:${flat(m[1])}` };
  m = /^text_encoder\.(.+)$/.exec(dotted);
  if (m) return { name: `te:${flat(m[1])}` };
  m = /^(?:model\.)?diffusion_model\.(.+)$/.exec(dotted);
  if (m) return { name: `unet:${flat(m[1])}` };
  return { name: `?:${dotted}` };
}

/** The diffusers key layout of an LDM UNet, read off its block kinds. */
export function unetKeyLayout(cfg: UNetConfig): UNetKeyLayout {
  const layersPerBlock: number[] = [];
  let n = 0;
  for (const block of cfg.inputBlocks) {
    if (block.includes('down')) { layersPerBlock.push(n); n = 0; } else n++;
  }
  layersPerBlock.push(n);
  const upHasAttention: boolean[] = [];
  let at = 0;
  for (const count of [...layersPerBlock].reverse()) {
    const group = cfg.outputBlocks.slice(at, at + count + 1);
    upHasAttention.push(group.some((b) => b.includes('attn')));
    at += count + 1;
  }
  return { layersPerBlock, upHasAttention, midHasAttention: cfg.middleHasAttention };
}

const RESNET_SUBS = ['norm1', 'conv1', 'time_emb_proj', 'norm2', 'conv2', 'conv_shortcut'];

/** Every diffusers module path the UNet can have, with the LDM module it names (both without '.weight'). */
function diffusersUNetModules(layout: UNetKeyLayout, ldmModules: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  const leaf = (d: string) => {
    const ldm = unetLdmKey(`${d}.weight`, layout);
    if (ldm) out.push([d, ldm.slice(0, -'.weight'.length)]);
  };
  // An attention block's inside is named the same in both trees; only its prefix moves.
  const attention = (d: string) => {
    const probe = unetLdmKey(`${d}.proj_in.weight`, layout);
    if (!probe) return;
    const ldmPrefix = probe.slice(0, -'proj_in.weight'.length);
    for (const m of ldmModules) if (m.startsWith(ldmPrefix)) out.push([`${d}.${m.slice(ldmPrefix.length)}`, m]);
  };
  for (const top of ['conv_in', 'time_embedding.linear_1', 'time_embedding.linear_2', 'conv_norm_out', 'conv_out']) leaf(top);
  const levels = layout.layersPerBlock.length;
  for (let l = 0; l < levels; l++) {
    for (let j = 0; j < layout.layersPerBlock[l]; j++) {
      for (const s of RESNET_SUBS) leaf(`down_blocks.${l}.resnets.${j}.${s}`);
      attention(`down_blocks.${l}.attentions.${j}`);
    }
    leaf(`down_blocks.${l}.downsamplers.0.conv`);
    for (let j = 0; j <= layout.layersPerBlock[levels - 1 - l]; j++) {
      for (const s of RESNET_SUBS) leaf(`up_blocks.${l}.resnets.${j}.${s}`);
      attention(`up_blocks.${l}.attentions.${j}`);
    }
    leaf(`up_blocks.${l}.upsamplers.0.conv`);
  }
  for (let j = 0; j < 2; j++) for (const s of RESNET_SUBS) leaf(`mid_block.resnets.${j}.${s}`);
  attention('mid_block.attentions.0');
  return out;
}

type PartsForKeys = Pick<ModelParts, 'family' | 'unet' | 'text' | 'prefixes' | 'weights'>;

/** Modules (keys without '.weight') under `prefix` in a weight source, found by probing known keys. */
function modulesUnder(keys: readonly string[], prefix: string): string[] {
  const out: string[] = [];
  for (const k of keys) if (k.startsWith(prefix) && k.endsWith('.weight')) out.push(k.slice(prefix.length, -'.weight'.length));
  return out;
}

/**
 * The table for an SD1 / SD2 model. `keys` lists every key of the model's weights (the LoRA loader
 * gets it from the checkpoint); SDXL will add `te1:` / `te2:` namespaces the same way.
 */
export function buildTargetTable(parts: PartsForKeys, keys: { unet: readonly string[]; text: readonly string[] }): TargetTable {
  const table = new Map<string, PatchTarget>();
  const add = (name: string, t: PatchTarget) => {
    if (!table.has(name)) table.set(name, t);
    // Diffusers' processor files name the output projection `to_out` (the Linear is `to_out.0`).
    if (name.endsWith('_to_out_0') && !table.has(name.slice(0, -2))) table.set(name.slice(0, -2), t);
  };
  const target = (part: PatchPart, key: string, rows?: [number, number]): PatchTarget | undefined => {
    const src = parts.weights[part];
    const info = src.info(`${key}.weight`);
    if (!info) return undefined;
    const shape = rows ? [rows[1] - rows[0], ...info.shape.slice(1)] : info.shape;
    const biasKey = src.info(`${key}.bias`) ? `${key}.bias` : undefined;
    return { part, key: `${key}.weight`, shape, rows, biasKey, biasRows: biasKey ? rows : undefined };
  };

  const up = `${parts.prefixes.unet}.`;
  const ldmModules = modulesUnder(keys.unet, up);
  for (const m of ldmModules) {
    const t = target('unet', up + m);
    if (t) add(`unet:${flat(m)}`, t);
  }
  for (const [d, ldm] of diffusersUNetModules(unetKeyLayout(parts.unet), ldmModules)) {
    const t = target('unet', up + ldm);
    if (t) add(`unet:${flat(d)}`, t);
  }

  const tp = `${parts.prefixes.text}.`;
  if (parts.text.layout === 'hf') {
    // `…transformer.text_model.X` is named `text_model.X` by transformers and kohya alike.
    const hfRoot = tp.replace(/text_model\.$/, '');
    for (const m of modulesUnder(keys.text, tp)) {
      const t = target('text', tp + m);
      if (t) add(`te:${flat(`${tp.slice(hfRoot.length)}${m}`)}`, t);
    }
  } else {
    // SD2 LoRAs are trained on the transformers CLIPTextModel; its layers map onto OpenCLIP's, with
    // q / k / v as row blocks of the fused in_proj.
    const W = parts.text.width;
    for (let i = 0; i < parts.text.layers; i++) {
      const hf = `te:text_model_encoder_layers_${i}_`;
      const oc = `${tp}transformer.resblocks.${i}.`;
      const attn = `${oc}attn.in_proj`;
      const inProj = parts.weights.text.info(`${attn}_weight`);
      if (inProj) {
        const hasBias = !!parts.weights.text.info(`${attn}_bias`);
        (['q', 'k', 'v'] as const).forEach((p, j) => {
          const rows = [j * W, (j + 1) * W] as const;
          add(`${hf}self_attn_${p}_proj`, {
            part: 'text', key: `${attn}_weight`, shape: [W, ...inProj.shape.slice(1)], rows,
            biasKey: hasBias ? `${attn}_bias` : undefined, biasRows: hasBias ? rows : undefined,
          });
        });
      }
      const pairs: [string, string][] = [['self_attn_out_proj', 'attn.out_proj'], ['mlp_fc1', 'mlp.c_fc'], ['mlp_fc2', 'mlp.c_proj'], ['layer_norm1', 'ln_1'], ['layer_norm2', 'ln_2']];
      for (const [h, o] of pairs) {
        const t = target('text', oc + o);
        if (t) add(hf + h, t);
      }
    }
    // OpenCLIP's own module names, for the few tools that train on them directly.
    for (const m of modulesUnder(keys.text, tp)) {
      const t = target('text', tp + m);
      if (t) add(`te:${flat(m)}`, t);
    }
  }
  return table;
}
