// Loading a ControlNet as users have it — lllyasviel's `.pth` / `.safetensors` (keys with or without
// `control_model.`), a diffusers `ControlNetModel` folder, or a ComfyUI "diff" ControlNet (trunk
// stored as deltas to a base UNet) — and running it as a graph built from its key tree.
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fileIdentity } from '../formats/file-identity.js';
import { openStateDict } from '../formats/open.js';
import type { StateDict, TensorInfo } from '../formats/state-dict.js';
import { GraphBuilder } from '../graph/builder.js';
import { stateDictWeights, type WeightSource } from '../graph/weights.js';
import { SessionCache, type RuntimeOptions } from '../runtime/session.js';
import { floatToHalf } from '../tensor/half.js';
import { Tensor } from '../tensor/tensor.js';
import { buildControlNet, detectControlNet, residualCount, type ControlNetConfig } from './controlnet.js';
import { unetLdmKey } from './diffusers-keys.js';
import type { UNetConfig } from './unet.js';

const PREFIX = 'control_model.';

export interface ControlNetLoadOptions extends RuntimeOptions {
  /** Heads as for the UNet it controls (the file cannot say); by default the base model's. */
  readonly unetHeads?: number;
  readonly unetHeadWidth?: number;
  /**
   * The base UNet a "diff" ControlNet's deltas are added to (ComfyUI's DiffControlNetLoader):
   * its weights and their key prefix (`model.diffusion_model`).
   */
  readonly base?: { readonly weights: WeightSource; readonly prefix: string };
}

export type ControlNetLayout = 'ldm' | 'diffusers' | 'diff';

export class ControlNet {
  private readonly sessions = new SessionCache();

  constructor(
    readonly path: string,
    readonly layout: ControlNetLayout,
    readonly config: ControlNetConfig,
    private readonly weights: WeightSource,
    private readonly prefix: string,
    /** Heads the file or the caller fixed; undefined = follow the controlled UNet. */
    readonly heads: UNetConfig['heads'] | undefined,
    private readonly runtime: RuntimeOptions,
    private readonly closeFiles: () => Promise<void>,
  ) {}

  get residualCount(): number { return residualCount(this.config); }
  get contextDim(): number { return this.config.trunk.contextDim; }

  private get io(): 'f32' | 'f16' {
    return (this.runtime.device ?? 'cpu') === 'cpu' ? 'f32' : 'f16';
  }

  /** The graph for a head layout; building it reads no weight, so a bad file fails here with the key. */
  private build(heads: UNetConfig['heads']): GraphBuilder {
    const cfg: ControlNetConfig = { ...this.config, trunk: { ...this.config.trunk, heads } };
    const g = new GraphBuilder({ weights: this.weights, dtype: this.io });
    const t = cfg.trunk;
    const x = g.input('x', ['B', t.inChannels, 'H', 'W'], this.io);
    const hint = g.input('hint', ['B', cfg.hintChannels, 'HH', 'HW'], this.io);
    const ts = g.input('timesteps', ['B'], this.io);
    const c = g.input('context', ['B', 'T', t.contextDim], this.io);
    const scope = g.scope(this.prefix.replace(/\.$/, ''));
    buildControlNet(g, scope, cfg, { x, hint, timesteps: ts, context: c }).forEach((r, i) => g.output(r, `residual_${i}`));
    return g;
  }

  validate(heads: UNetConfig['heads']): void {
    try {
      this.build(heads);
    } catch (err) {
      throw new Error(`${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /**
   * ControlNet.forward: x [B, C, h, w] (the UNet's scaled input), hint [B, 3, 8h, 8w] in 0…1,
   * timesteps [B], context [B, T, W] → the raw residuals (input block 0 first, middle last).
   * `heads` are the controlled UNet's, used unless the ControlNet was loaded with its own.
   */
  async residuals(x: Tensor, hint: Tensor, timesteps: Tensor, context: Tensor, heads?: UNetConfig['heads']): Promise<Tensor[]> {
    const h = this.heads ?? heads ?? defaultHeads(this.config.trunk.contextDim);
    const g = this.build(h);
    const s = await this.sessions.get(g.finish(), this.weights, this.runtime);
    const out = await s.run({ x: x.to(this.io), hint: hint.to(this.io), timesteps: timesteps.to(this.io), context: context.to(this.io) });
    return Array.from({ length: this.residualCount }, (_, i) => out[`residual_${i}`].to('f32'));
  }

  async close(): Promise<void> {
    await this.sessions.clear();
    await this.closeFiles();
  }
}

/** The released families' heads: SD1 (768-wide text) 8 heads, SD2 (1024) 64-wide heads. */
function defaultHeads(contextDim: number): UNetConfig['heads'] {
  return contextDim === 1024 ? { width: 64 } : { count: 8 };
}

function headsOption(o: ControlNetLoadOptions): UNetConfig['heads'] | undefined {
  if (o.unetHeads) return { count: o.unetHeads };
  if (o.unetHeadWidth) return { width: o.unetHeadWidth };
  return undefined;
}

/** A WeightSource whose keys are renamed (diffusers → cldm) onto another. */
function renamed(src: WeightSource, map: ReadonlyMap<string, string>): WeightSource {
  return {
    id: src.id, label: src.label,
    info: (key) => { const k = map.get(key); return k === undefined ? undefined : src.info(k); },
    read: (key) => { const k = map.get(key); if (k === undefined) throw new Error(`${src.label ?? src.id}: no tensor for '${key}'`); return src.read(k); },
  };
}

/**
 * ComfyUI's diff ControlNet: every key the base UNet also has holds `delta`, the weight is
 * delta + base computed in the delta's dtype (`cd += base.type(cd.dtype)`), so float16 files give
 * float16-rounded sums.
 */
function withBase(diff: WeightSource, base: NonNullable<ControlNetLoadOptions['base']>): WeightSource {
  const baseKey = (key: string) => `${base.prefix}.${key.slice(PREFIX.length)}`;
  return {
    id: `${diff.id}+${base.weights.id}`, label: diff.label,
    info: (key) => diff.info(key),
    async read(key: string): Promise<Tensor> {
      const d = await diff.read(key);
      const bk = baseKey(key);
      if (!key.startsWith(PREFIX) || !base.weights.info(bk)) return d;
      const b = await base.weights.read(bk);
      if (b.size !== d.size) throw new Error(`${diff.label ?? diff.id}: '${key}' has ${d.size} values but the base's '${bk}' has ${b.size}`);
      const dv = d.toFloat32Array();
      const bv = d.dtype === 'f16' ? b.to('f16').toFloat32Array() : b.toFloat32Array();
      const sum = new Float32Array(dv.length);
      for (let i = 0; i < dv.length; i++) sum[i] = dv[i] + bv[i];
      if (d.dtype === 'f16') return new Tensor('f16', d.shape, Uint16Array.from(sum, floatToHalf));
      return Tensor.f32(d.shape, sum);
    },
  };
}

const COND_EMBEDDING: Readonly<Record<string, string>> = {
  'controlnet_cond_embedding.conv_in.': 'input_hint_block.0.',
  'controlnet_cond_embedding.conv_out.': 'input_hint_block.14.',
  'controlnet_mid_block.': 'middle_block_out.0.',
};

/** A diffusers ControlNetModel key → its cldm name (no prefix), or undefined. */
export function controlNetLdmKey(key: string, layersPerBlock: readonly number[], midHasAttention: boolean): string | undefined {
  for (const [from, to] of Object.entries(COND_EMBEDDING)) if (key.startsWith(from)) return to + key.slice(from.length);
  let m = /^controlnet_cond_embedding\.blocks\.(\d+)\.(.+)$/.exec(key);
  if (m) return `input_hint_block.${2 * Number(m[1]) + 2}.${m[2]}`;
  m = /^controlnet_down_blocks\.(\d+)\.(.+)$/.exec(key);
  if (m) return `zero_convs.${m[1]}.0.${m[2]}`;
  // The trunk is named as the diffusers UNet's down / mid blocks.
  return unetLdmKey(key, { layersPerBlock, upHasAttention: [], midHasAttention });
}

async function diffusersFile(path: string): Promise<{ file: string; config?: Record<string, unknown> }> {
  const info = await stat(path).catch(() => undefined);
  if (!info) throw new Error(`${path}: no such file or folder`);
  if (!info.isDirectory()) return { file: path };
  let file = join(path, 'diffusion_pytorch_model.safetensors');
  if (!(await stat(file).catch(() => undefined))) file = join(path, 'diffusion_pytorch_model.bin');
  let config: Record<string, unknown> | undefined;
  try {
    config = JSON.parse(await readFile(join(path, 'config.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    config = undefined;
  }
  return { file, config };
}

/** diffusers' `attention_head_dim` is the SD1 head count (a per-level list for SD2). */
function diffusersHeads(config: Record<string, unknown> | undefined): UNetConfig['heads'] | undefined {
  if (!config) return undefined;
  const n = config.num_attention_heads ?? config.attention_head_dim;
  if (typeof n === 'number') return { count: n };
  const widths = config.block_out_channels;
  if (Array.isArray(n) && Array.isArray(widths) && n.length === widths.length) {
    const per = n.map((c, i) => Number(widths[i]) / Number(c));
    if (per.every((w) => w === per[0])) return { width: per[0] };
  }
  return undefined;
}

function countWhile(ok: (i: number) => boolean): number {
  let i = 0;
  while (ok(i)) i++;
  return i;
}

/**
 * Opens a ControlNet file or diffusers folder. Only headers are read; the layout is told by the keys
 * (ComfyUI's tests: `control_model.zero_convs.0.0.weight`, then `zero_convs.0.0.weight`, then the
 * diffusers names).
 */
export async function loadControlNet(path: string, options: ControlNetLoadOptions = {}): Promise<ControlNet> {
  const { file, config } = await diffusersFile(path);
  const sd: StateDict = await openStateDict(file);
  try {
    const keys = new Set(sd.keys());
    const id = await fileIdentity(file);
    let source: WeightSource = stateDictWeights(sd, id);
    let prefix = '';
    let layout: ControlNetLayout = 'ldm';
    let heads = headsOption(options);
    let names: ReadonlySet<string> = keys;
    if (keys.has(`${PREFIX}zero_convs.0.0.weight`)) {
      prefix = PREFIX;
      if (keys.has('difference')) {
        if (!options.base) throw new Error(`${path}: a "diff" ControlNet holds differences to a base model; load it with that model (DiffControlNetLoader)`);
        layout = 'diff';
        source = withBase(source, options.base);
      }
    } else if (keys.has('controlnet_down_blocks.0.weight')) {
      layout = 'diffusers';
      const all = [...keys];
      const levels = countWhile((i) => all.some((k) => k.startsWith(`down_blocks.${i}.`)));
      const layersPerBlock = Array.from({ length: levels }, (_, i) => countWhile((j) => keys.has(`down_blocks.${i}.resnets.${j}.conv1.weight`)));
      const mid = all.some((k) => k.startsWith('mid_block.attentions.0.'));
      const map = new Map<string, string>();
      for (const k of all) {
        const ldm = controlNetLdmKey(k, layersPerBlock, mid);
        if (ldm === undefined) throw new Error(`${file}: '${k}' does not fit the diffusers ControlNetModel layout`);
        if (map.has(ldm)) throw new Error(`${file}: '${map.get(ldm)}' and '${k}' both map to '${ldm}'`);
        map.set(ldm, k);
      }
      source = renamed(source, map);
      names = new Set(map.keys());
      heads ??= diffusersHeads(config);
    } else if (!keys.has('zero_convs.0.0.weight')) {
      const adapter = [...keys].some((k) => /^(adapter\.)?(body\.\d+\.|conv_in\.)/.test(k));
      throw new Error(`${path}: not a ControlNet${adapter ? ' (it looks like a T2I-Adapter, which is not supported yet)' : ` (no 'zero_convs.0.0.weight', ${keys.size} tensors)`}`);
    }
    const infoOf = (k: string): TensorInfo | undefined => source.info(k);
    let cfg: ControlNetConfig;
    try {
      cfg = detectControlNet(names, (k) => infoOf(k)?.shape, prefix, heads ?? defaultHeads(0));
    } catch (err) {
      throw new Error(`${path}: ${(err as Error).message}`, { cause: err });
    }
    const net = new ControlNet(path, layout, cfg, source, prefix, heads, options, () => sd.close());
    net.validate(heads ?? defaultHeads(cfg.trunk.contextDim));
    return net;
  } catch (err) {
    await sd.close();
    throw err;
  }
}

/** The file name a ControlNet is listed under (ComfyUI's control_net_name). */
export function controlNetName(path: string): string {
  return basename(path);
}
