// A loaded SD1/SD2/SDXL checkpoint: its detected architecture and lazily built ONNX Runtime sessions
// for the text encoder(s), the UNet and the VAE.
import { GraphBuilder } from '../graph/builder.js';
import type { GraphIR } from '../graph/ir.js';
import type { WeightSource } from '../graph/weights.js';
import { SessionCache, type Device, type RuntimeOptions, type Session } from '../runtime/session.js';
import { Tensor } from '../tensor/tensor.js';
import { buildClipText, buildClipTextHidden, type ClipTextConfig } from './clip-text.js';
import type { AdmKind } from './sdxl-vector.js';
import { buildUNet, type ContextHook, type UNetConfig } from './unet.js';
import { buildVaeDecoder, buildVaeEncoder } from './vae.js';

export type Family = 'sd1' | 'sd2' | 'sdxl' | 'sdxl-refiner';

/** One text encoder of an SDXL checkpoint: CLIP-L and OpenCLIP-G in the base, G alone in the refiner. */
export interface TextEncoderPart {
  readonly name: 'clip_l' | 'clip_g';
  readonly config: ClipTextConfig;
  /** Key prefix inside `weights.text` (no trailing dot). */
  readonly prefix: string;
  /** CLIP-L pads with EOS (HF tokenizer), OpenCLIP-G with 0. */
  readonly padTokenId: number;
}

/**
 * One SDXL text encoder as conditioning code uses it. `clipSkip` N gives h_{L+1−N} with no final
 * norm: 2 (the default) is what sgm, ComfyUI and A1111 condition SDXL on; 1 is the last block's output.
 */
export interface TextEncoderView {
  readonly name: 'clip_l' | 'clip_g';
  readonly padTokenId: number;
  readonly textWidth: number;
  /** Width of the pooled output (G only). */
  readonly pooledWidth?: number;
  encodeText(ids: Tensor, clipSkip?: number): Promise<Tensor>;
  encodeEmbeds(embeds: Tensor, clipSkip?: number): Promise<Tensor>;
  tokenEmbeddings(ids: readonly number[]): Promise<Float32Array>;
  /** G only: hidden states and the pooled output of ids [B, 77] or embeddings [B, 77, W]; `eos` is each row's first EOS position. */
  encodeWithPooled?(input: Tensor, eos: readonly number[], clipSkip?: number): Promise<{ hidden: Tensor; pooled: Tensor }>;
}
export type Prediction = 'eps' | 'v';

export interface ModelParts {
  readonly path: string;
  readonly family: Family;
  readonly prediction: Prediction;
  readonly unet: UNetConfig;
  readonly text: ClipTextConfig;
  /** Key prefixes of each part inside its weight source. */
  readonly prefixes: { readonly unet: string; readonly text: string; readonly vae: string };
  readonly weights: { readonly unet: WeightSource; readonly text: WeightSource; readonly vae: WeightSource };
  /** Token id that fills the 77 positions after EOS: SD1's tokenizer pads with EOS (49407), OpenCLIP with 0. */
  readonly padTokenId: number;
  /**
   * The family's own conditioning layer, counted from the end as A1111's clip skip: 1 = last layer
   * (SD1), 2 = penultimate (SD2). A user's clip skip never goes below this.
   */
  readonly textSkipBase: number;
  /** Layers of the original text encoder missing from the file (diffusers SD2 drops OpenCLIP's last one). */
  readonly textLayersRemoved: number;
  /** The checkpoint's own alphas_cumprod buffer when it has one (float32, 1000 entries). */
  readonly alphasCumprod?: Float32Array;
  /** Frees file handles. */
  readonly close: () => Promise<void>;
  /** Rewrites the keys / values context of every UNet attention (hypernetworks); none by default. */
  readonly unetContextHook?: ContextHook;
  /** SDXL: the text encoders whose hidden states are concatenated (in this order) into the context. */
  readonly textEncoders?: readonly TextEncoderPart[];
  /** SDXL: the vector conditioning the UNet's label_emb takes. */
  readonly adm?: AdmKind;
}

/** Rows `ids` of a [vocabulary × W] table, as one flat array. */
function lookupRows(table: Float32Array, W: number, ids: readonly number[]): Float32Array {
  const rows = table.length / W;
  const out = new Float32Array(ids.length * W);
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= rows) throw new RangeError(`token id ${id} is outside the text encoder's ${rows}-token vocabulary`);
    out.set(table.subarray(id * W, (id + 1) * W), i * W);
  });
  return out;
}

export class StableDiffusionModel {
  /** VAE latent scale factor: 0.18215 for SD1/SD2, 0.13025 for SDXL. */
  readonly scaleFactor: number;
  readonly latentChannels: number;
  private readonly sessions: SessionCache;
  /** False for a view made by `derive`, whose sessions belong to the model it came from. */
  private readonly ownsSessions: boolean;

  constructor(readonly parts: ModelParts, readonly runtime: RuntimeOptions = {}, sessions?: SessionCache) {
    // Inpainting UNets take 9 channels (x, mask, masked-image latent) but still denoise 4.
    this.latentChannels = parts.unet.outChannels;
    this.scaleFactor = parts.adm ? 0.13025 : 0.18215;
    this.sessions = sessions ?? new SessionCache();
    this.ownsSessions = !sessions;
  }

  /**
   * The same model over other weights for some parts (LoRA-patched sources, say) or with a UNet
   * context hook. It shares this model's session cache, which is keyed by the weights' ids, so going
   * back to an earlier variant reuses its sessions; closing the view frees nothing of the base model.
   */
  derive(change: { readonly weights?: Partial<ModelParts['weights']>; readonly unetContextHook?: ContextHook }): StableDiffusionModel {
    const parts: ModelParts = {
      ...this.parts,
      weights: { ...this.parts.weights, ...change.weights },
      unetContextHook: change.unetContextHook ?? this.parts.unetContextHook,
      close: async () => {},
    };
    return new StableDiffusionModel(parts, this.runtime, this.sessions);
  }

  get path(): string { return this.parts.path; }
  /** UNet input channels beyond the latent's: 5 for inpainting checkpoints (mask + masked-image latent), else 0. */
  get concatChannels(): number { return this.parts.unet.inChannels - this.parts.unet.outChannels; }
  get family(): Family { return this.parts.family; }
  get prediction(): Prediction { return this.parts.prediction; }
  get device(): Device { return this.runtime.device ?? 'cpu'; }
  get padTokenId(): number { return this.parts.padTokenId; }
  /** The vector conditioning the UNet takes (SDXL base / refiner), undefined for SD1/SD2. */
  get admKind(): AdmKind | undefined { return this.parts.adm; }
  get isSdxl(): boolean { return this.parts.adm !== undefined; }
  get contextLength(): number { return this.parts.text.contextLength; }

  private builder(w: WeightSource): GraphBuilder {
    return new GraphBuilder({ weights: w, dtype: this.device === 'cpu' ? 'f32' : 'f16' });
  }

  private get io(): 'f32' | 'f16' {
    return this.device === 'cpu' ? 'f32' : 'f16';
  }

  private async session(build: (g: GraphBuilder) => void, w: WeightSource): Promise<Session> {
    const g = this.builder(w);
    build(g);
    return this.sessions.get(g.finish(), w, this.runtime);
  }

  private textGraph(layers: number) {
    const cfg = this.parts.text;
    return (g: GraphBuilder) => {
      const x = g.input('ids', ['B', cfg.contextLength], 'i64');
      g.output(g.cast(buildClipText(g, g.scope(this.parts.prefixes.text), cfg, x, layers), this.io), 'hidden');
    };
  }

  /** `controlChannels`: the widths of the ControlNet residuals the graph takes as extra inputs. */
  private unetGraphBuilder(controlChannels?: readonly number[]) {
    const cfg = this.parts.unet;
    return (g: GraphBuilder) => {
      const xi = g.input('x', ['B', cfg.inChannels, 'H', 'W'], this.io);
      const t = g.input('timesteps', ['B'], this.io);
      const c = g.input('context', ['B', 'T', cfg.contextDim], this.io);
      const y = cfg.admInChannels ? g.input('y', ['B', cfg.admInChannels], this.io) : undefined;
      const control = controlChannels?.map((ch, i) => g.input(`control_${i}`, ['B', ch, `CH${i}`, `CW${i}`], this.io));
      g.output(buildUNet(g, g.scope(this.parts.prefixes.unet), cfg, { x: xi, timesteps: t, context: c, y, contextHook: this.parts.unetContextHook, control }), 'out');
    };
  }

  /** The UNet's head layout (what a ControlNet controlling it uses unless told otherwise). */
  get unetHeads(): UNetConfig['heads'] { return this.parts.unet.heads; }

  private decoderGraph() {
    return (g: GraphBuilder) => {
      const zi = g.input('z', ['B', this.latentChannels, 'H', 'W'], this.io);
      g.output(buildVaeDecoder(g, g.scope(this.parts.prefixes.vae), zi), 'image');
    };
  }

  /** The UNet graph as it will run (for FLOP counts and inspection); reads no weights. */
  unetGraph(): GraphIR {
    const g = this.builder(this.parts.weights.unet);
    this.unetGraphBuilder()(g);
    return g.finish();
  }

  /**
   * Builds the text-encoder, UNet and VAE-decoder graphs without reading any weight, so a checkpoint
   * with a missing or misshapen tensor fails at load time with the key, both shapes and the file.
   */
  validate(): void {
    const { weights, path } = this.parts;
    const texts: [(g: GraphBuilder) => void, WeightSource][] = this.parts.textEncoders
      ? this.parts.textEncoders.map((p) => [this.encoderGraph(p, p.config.layers - 1, 'ids'), weights.text])
      : [[this.textGraph(this.parts.text.layers), weights.text]];
    const checks: [(g: GraphBuilder) => void, WeightSource][] = [...texts, [this.unetGraphBuilder(), weights.unet], [this.decoderGraph(), weights.vae]];
    for (const [build, w] of checks) {
      try {
        build(this.builder(w));
      } catch (err) {
        const msg = (err as Error).message;
        throw new Error(msg.includes(path) ? msg : `${path}: ${msg}`, { cause: err });
      }
    }
  }

  /**
   * Token ids [B, 77] → hidden states [B, 77, W]. clipSkip 1 is the last layer; 2 the penultimate
   * followed by the final layer norm, as A1111 defines it. SD2 always conditions on the penultimate.
   */
  async encodeText(ids: Tensor, clipSkip = 1): Promise<Tensor> {
    const cfg = this.parts.text;
    const layers = cfg.layers + this.parts.textLayersRemoved - (Math.max(clipSkip, this.parts.textSkipBase) - 1);
    if (layers < 1) throw new Error(`clip skip ${clipSkip} is more than the text encoder's ${cfg.layers} layers`);
    const s = await this.session(this.textGraph(layers), this.parts.weights.text);
    const out = await s.run({ ids });
    return out.hidden.to('f32');
  }

  /** Width of the text encoder's token vectors (768 SD1, 1024 SD2): what an embedding must match. */
  get textWidth(): number { return this.parts.text.width; }

  private tokenTable?: Promise<Float32Array>;

  /** Rows of the text encoder's token-embedding table, looked up on the host: [ids.length × width]. */
  async tokenEmbeddings(ids: readonly number[]): Promise<Float32Array> {
    const { text: cfg, prefixes } = this.parts;
    const name = cfg.layout === 'hf' ? 'embeddings.token_embedding.weight' : 'token_embedding.weight';
    const key = prefixes.text ? `${prefixes.text}.${name}` : name;
    this.tokenTable ??= this.parts.weights.text.read(key).then((t) => t.toFloat32Array());
    return lookupRows(await this.tokenTable, cfg.width, ids);
  }

  /**
   * Like encodeText, from token embeddings [B, 77, W] instead of ids (textual inversion): the
   * positions are added inside the graph exactly as for ids, so an embedding equal to a token's own
   * row gives that token's hidden states.
   */
  async encodeEmbeds(embeds: Tensor, clipSkip = 1): Promise<Tensor> {
    const cfg = this.parts.text;
    const layers = cfg.layers + this.parts.textLayersRemoved - (Math.max(clipSkip, this.parts.textSkipBase) - 1);
    if (layers < 1) throw new Error(`clip skip ${clipSkip} is more than the text encoder's ${cfg.layers} layers`);
    const s = await this.session((g) => {
      const x = g.input('embeds', ['B', cfg.contextLength, cfg.width], this.io);
      g.output(g.cast(buildClipText(g, g.scope(this.parts.prefixes.text), cfg, x, layers), this.io), 'hidden');
    }, this.parts.weights.text);
    const out = await s.run({ embeds: embeds.to(this.io) });
    return out.hidden.to('f32');
  }

  /**
   * The raw UNet: eps or v for x at (fractional) timesteps under the given context (and vector `y`
   * for SDXL). `control`: ControlNet residuals already scaled (input block 0 first, middle last).
   */
  async predict(x: Tensor, timesteps: Tensor, context: Tensor, y?: Tensor, control?: readonly Tensor[]): Promise<Tensor> {
    const adm = this.parts.unet.admInChannels;
    if (adm && !y) throw new Error(`${this.path}: this UNet needs its ${adm}-wide vector conditioning (SDXL's pooled text and sizes)`);
    const s = await this.session(this.unetGraphBuilder(control?.map((r) => r.shape[1])), this.parts.weights.unet);
    const feeds: Record<string, Tensor> = { x: x.to(this.io), timesteps: timesteps.to(this.io), context: context.to(this.io) };
    if (adm && y) feeds.y = y.to(this.io);
    control?.forEach((r, i) => { feeds[`control_${i}`] = r.to(this.io); });
    const out = await s.run(feeds);
    return out.out.to('f32');
  }

  /** Hidden state after `layers` blocks (no final norm) and, for encoders with a projection, the pooled output. */
  private encoderGraph(p: TextEncoderPart, layers: number, input: 'ids' | 'embeds') {
    const cfg = p.config;
    return (g: GraphBuilder) => {
      const x = input === 'ids' ? g.input('ids', ['B', cfg.contextLength], 'i64') : g.input('embeds', ['B', cfg.contextLength, cfg.width], this.io);
      const pool = cfg.projectionDim ? g.input('pool', ['B', cfg.contextLength], this.io) : undefined;
      const out = buildClipTextHidden(g, g.scope(p.prefix), cfg, x, layers, pool);
      g.output(g.cast(out.hidden, this.io), 'hidden');
      if (out.pooled) g.output(g.cast(out.pooled, this.io), 'pooled');
    };
  }

  private encoderViews?: TextEncoderView[];

  /** SDXL's text encoders, in the order their hidden states make up the context; empty for SD1/SD2. */
  get textEncoders(): readonly TextEncoderView[] {
    this.encoderViews ??= (this.parts.textEncoders ?? []).map((p) => this.encoderView(p));
    return this.encoderViews;
  }

  private encoderView(p: TextEncoderPart): TextEncoderView {
    const cfg = p.config;
    const layersFor = (clipSkip = 2) => {
      const layers = cfg.layers + 1 - clipSkip;
      if (!Number.isInteger(clipSkip) || layers < 1) throw new Error(`clip skip ${clipSkip} is more than the ${p.name} text encoder's ${cfg.layers} layers`);
      return layers;
    };
    const run = async (input: Tensor, eos: readonly number[], clipSkip?: number) => {
      const kind = input.dtype === 'i64' || input.dtype === 'i32' ? 'ids' : 'embeds';
      const s = await this.session(this.encoderGraph(p, layersFor(clipSkip), kind), this.parts.weights.text);
      const B = input.shape[0];
      const feeds: Record<string, Tensor> = { [kind]: kind === 'ids' ? input : input.to(this.io) };
      if (cfg.projectionDim) {
        const T = cfg.contextLength;
        const pool = new Float32Array(B * T);
        for (let b = 0; b < B; b++) pool[b * T + Math.min(Math.max(eos[b] ?? T - 1, 0), T - 1)] = 1;
        feeds.pool = Tensor.f32([B, T], pool).to(this.io);
      }
      const out = await s.run(feeds);
      return { hidden: out.hidden.to('f32'), pooled: out.pooled?.to('f32') };
    };
    const eosOf = (ids: Tensor) => {
      const T = cfg.contextLength;
      const v = ids.data as BigInt64Array | Int32Array;
      return Array.from({ length: ids.shape[0] }, (_, b) => {
        for (let t = 0; t < T; t++) if (Number(v[b * T + t]) === 49407) return t;
        return T - 1;
      });
    };
    let table: Promise<Float32Array> | undefined;
    const tokenKey = `${p.prefix}.${cfg.layout === 'hf' ? 'embeddings.token_embedding.weight' : 'token_embedding.weight'}`;
    return {
      name: p.name, padTokenId: p.padTokenId, textWidth: cfg.width, pooledWidth: cfg.projectionDim,
      encodeText: async (ids, clipSkip) => (await run(ids, eosOf(ids), clipSkip)).hidden,
      encodeEmbeds: async (embeds, clipSkip) => (await run(embeds, [], clipSkip)).hidden,
      tokenEmbeddings: async (ids) => {
        table ??= this.parts.weights.text.read(tokenKey).then((t) => t.toFloat32Array());
        return lookupRows(await table, cfg.width, ids);
      },
      encodeWithPooled: cfg.projectionDim ? async (input, eos, clipSkip) => {
        const r = await run(input, eos, clipSkip);
        return { hidden: r.hidden, pooled: r.pooled! };
      } : undefined,
    };
  }

  /** decoder(post_quant_conv(z)) for z already divided by the scale factor; values in about [-1, 1]. */
  async decode(z: Tensor): Promise<Tensor> {
    const s = await this.session(this.decoderGraph(), this.parts.weights.vae);
    return (await s.run({ z: z.to(this.io) })).image.to('f32');
  }

  /** The posterior of an image in [-1, 1]: mean and (clamped) log-variance, unscaled. */
  async encode(image: Tensor): Promise<{ mean: Tensor; logvar: Tensor }> {
    const s = await this.session((g) => {
      const x = g.input('image', ['B', 3, 'H', 'W'], this.io);
      const p = buildVaeEncoder(g, g.scope(this.parts.prefixes.vae), x);
      g.output(p.mean, 'mean');
      g.output(p.logvar, 'logvar');
    }, this.parts.weights.vae);
    const out = await s.run({ image: image.to(this.io) });
    return { mean: out.mean.to('f32'), logvar: out.logvar.to('f32') };
  }

  async close(): Promise<void> {
    if (this.ownsSessions) await this.sessions.clear();
    await this.parts.close();
  }
}
