// A loaded SD1/SD2 checkpoint: its detected architecture and lazily built ONNX Runtime sessions for
// the text encoder, the UNet and the VAE.
import { GraphBuilder } from '../graph/builder.js';
import type { GraphIR } from '../graph/ir.js';
import type { WeightSource } from '../graph/weights.js';
import { SessionCache, type Device, type RuntimeOptions, type Session } from '../runtime/session.js';
import { Tensor } from '../tensor/tensor.js';
import { buildClipText, type ClipTextConfig } from './clip-text.js';
import { buildUNet, type ContextHook, type UNetConfig } from './unet.js';
import { buildVaeDecoder, buildVaeEncoder } from './vae.js';

export type Family = 'sd1' | 'sd2';
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
}

export class StableDiffusionModel {
  /** VAE latent scale factor (SD1 and SD2). */
  readonly scaleFactor = 0.18215;
  readonly latentChannels: number;
  private readonly sessions: SessionCache;
  /** False for a view made by `derive`, whose sessions belong to the model it came from. */
  private readonly ownsSessions: boolean;

  constructor(readonly parts: ModelParts, readonly runtime: RuntimeOptions = {}, sessions?: SessionCache) {
    // Inpainting UNets take 9 channels (x, mask, masked-image latent) but still denoise 4.
    this.latentChannels = parts.unet.outChannels;
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

  private unetGraphBuilder() {
    const cfg = this.parts.unet;
    return (g: GraphBuilder) => {
      const xi = g.input('x', ['B', cfg.inChannels, 'H', 'W'], this.io);
      const t = g.input('timesteps', ['B'], this.io);
      const c = g.input('context', ['B', 'T', cfg.contextDim], this.io);
      g.output(buildUNet(g, g.scope(this.parts.prefixes.unet), cfg, { x: xi, timesteps: t, context: c, contextHook: this.parts.unetContextHook }), 'out');
    };
  }

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
    const checks: [(g: GraphBuilder) => void, WeightSource][] = [
      [this.textGraph(this.parts.text.layers), weights.text], [this.unetGraphBuilder(), weights.unet], [this.decoderGraph(), weights.vae],
    ];
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
    const table = await this.tokenTable;
    const W = cfg.width;
    const rows = table.length / W;
    const out = new Float32Array(ids.length * W);
    ids.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= rows) throw new RangeError(`token id ${id} is outside the text encoder's ${rows}-token vocabulary`);
      out.set(table.subarray(id * W, (id + 1) * W), i * W);
    });
    return out;
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

  /** The raw UNet: eps or v for x at (fractional) timesteps under the given context. */
  async predict(x: Tensor, timesteps: Tensor, context: Tensor): Promise<Tensor> {
    const s = await this.session(this.unetGraphBuilder(), this.parts.weights.unet);
    const out = await s.run({ x: x.to(this.io), timesteps: timesteps.to(this.io), context: context.to(this.io) });
    return out.out.to('f32');
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
