// TAESD, the tiny autoencoder (madebyollin/taesd): the same latent space as the SD VAE at a fraction
// of the cost, which makes it the usual choice for live previews (A1111 "TAESD", ComfyUI
// `--preview-method taesd`). Both halves are plain nn.Sequential stacks of 3×3 convs, so the
// layout is read off the file: numbered children, `N.conv.{0,2,4}` for a Block, `N.skip` when a
// Block changes width.
//
// Files: `taesd_decoder.pth` / `.safetensors` (keys `1.weight`, `3.conv.0.weight`, …), the encoder
// likewise, diffusers' AutoencoderTiny (`decoder.layers.N` / `encoder.layers.N`, where the decoder's
// leading Clamp is in forward() rather than a child) and ComfyUI's combined `taesd_decoder.N` /
// `taesd_encoder.N`.
import { openStateDict } from '../formats/open.js';
import type { StateDict } from '../formats/state-dict.js';
import { GraphBuilder, type WeightScope } from '../graph/builder.js';
import type { Value } from '../graph/types.js';
import { stateDictWeights, type WeightSource } from '../graph/weights.js';
import { createSession, type RuntimeOptions, type Session } from '../runtime/session.js';
import type { Tensor } from '../tensor/tensor.js';

type Module =
  | { readonly index: number; readonly kind: 'conv'; readonly bias: boolean; readonly out: number; readonly in: number }
  | { readonly index: number; readonly kind: 'block'; readonly out: number; readonly in: number };

export interface TaesdPart {
  /** Key prefix of the Sequential (with its trailing dot, or ''). */
  readonly prefix: string;
  readonly role: 'decoder' | 'encoder';
  readonly latentChannels: number;
  readonly modules: readonly Module[];
}

const PREFIXES = ['', 'decoder.layers.', 'encoder.layers.', 'taesd_decoder.', 'taesd_encoder.', 'decoder.', 'encoder.', 'first_stage_model.taesd_decoder.', 'first_stage_model.taesd_encoder.'];

interface KeyInfo {
  keys(): string[];
  info(key: string): { readonly shape: readonly number[] } | undefined;
}

function readPart(sd: KeyInfo, prefix: string): TaesdPart | undefined {
  const indices = new Set<number>();
  const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}(\\d+)\\.`);
  for (const k of sd.keys()) {
    const m = re.exec(k);
    if (m) indices.add(Number(m[1]));
  }
  const modules: Module[] = [];
  for (const index of [...indices].sort((a, b) => a - b)) {
    const conv = sd.info(`${prefix}${index}.weight`)?.shape;
    const block = sd.info(`${prefix}${index}.conv.0.weight`)?.shape;
    if (conv?.length === 4) modules.push({ index, kind: 'conv', bias: sd.info(`${prefix}${index}.bias`) !== undefined, out: conv[0], in: conv[1] });
    else if (block?.length === 4) modules.push({ index, kind: 'block', out: block[0], in: block[1] });
    else return undefined;
  }
  if (modules.length < 3 || modules[0].kind !== 'conv' || modules[modules.length - 1].kind !== 'conv') return undefined;
  const first = modules[0];
  const last = modules[modules.length - 1];
  if (last.out === 3) return { prefix, role: 'decoder', latentChannels: first.in, modules };
  if (first.in === 3) return { prefix, role: 'encoder', latentChannels: last.out, modules };
  return undefined;
}

/** Finds the TAESD decoder and/or encoder in a state dict. */
export function detectTaesd(sd: KeyInfo): { decoder?: TaesdPart; encoder?: TaesdPart } {
  const found: { decoder?: TaesdPart; encoder?: TaesdPart } = {};
  for (const p of PREFIXES) {
    const part = readPart(sd, p);
    if (part && !found[part.role]) found[part.role] = part;
  }
  return found;
}

function block(g: GraphBuilder, w: WeightScope, x: Value): Value {
  let h = g.relu(g.conv2d(x, w.scope('conv.0'), { padding: 1, kernel: 3 }));
  h = g.relu(g.conv2d(h, w.scope('conv.2'), { padding: 1, kernel: 3 }));
  h = g.conv2d(h, w.scope('conv.4'), { padding: 1, kernel: 3 });
  const skip = w.has('skip.weight') ? g.conv2d(x, w.scope('skip'), { kernel: 1 }) : x;
  return g.relu(g.add(h, skip));
}

/** Scaled latents (what the sampler holds) → RGB in about [0, 1]. */
export function buildTaesdDecoder(g: GraphBuilder, w: WeightScope, part: TaesdPart, z: Value): Value {
  // Clamp(): tanh(x/3)·3 keeps out-of-range latents from blowing up the tiny network.
  let h = g.mul(g.tanh(g.div(z, 3)), 3);
  part.modules.forEach((m, i) => {
    const s = w.scope(`${part.prefix}${m.index}`);
    if (m.kind === 'block') h = block(g, s, h);
    else if (i === part.modules.length - 1) h = g.conv2d(h, s, { padding: 1, kernel: 3 });
    // Bias-free 3×3 convs follow an nn.Upsample(scale_factor=2); the first conv is followed by a ReLU.
    else if (!m.bias) h = g.conv2d(g.upsampleNearest(h, 2), s, { padding: 1, kernel: 3 });
    else h = g.relu(g.conv2d(h, s, { padding: 1, kernel: 3 }));
  });
  return h;
}

/** RGB in [0, 1] → scaled latents. */
export function buildTaesdEncoder(g: GraphBuilder, w: WeightScope, part: TaesdPart, image: Value): Value {
  let h = image;
  for (const m of part.modules) {
    const s = w.scope(`${part.prefix}${m.index}`);
    if (m.kind === 'block') h = block(g, s, h);
    // Bias-free convs are the stride-2 downsamplers.
    else h = g.conv2d(h, s, m.bias ? { padding: 1, kernel: 3 } : { padding: 1, stride: 2, kernel: 3 });
  }
  return h;
}

/** A loaded TAESD (either half or both), with its sessions. */
export class TinyAutoencoder {
  private decoderSession?: Promise<Session>;
  private encoderSession?: Promise<Session>;

  private constructor(
    readonly path: string,
    readonly decoder: TaesdPart | undefined,
    readonly encoder: TaesdPart | undefined,
    private readonly weights: WeightSource,
    private readonly runtime: RuntimeOptions,
    private readonly closeFile: () => Promise<void>,
  ) {}

  static async load(path: string, runtime: RuntimeOptions = {}): Promise<TinyAutoencoder> {
    const sd: StateDict = await openStateDict(path);
    const found = detectTaesd(sd);
    if (!found.decoder && !found.encoder) {
      await sd.close();
      throw new Error(`${path}: not a TAESD file (expected a Sequential of 3×3 convs and Blocks, as taesd_decoder.pth)`);
    }
    return new TinyAutoencoder(path, found.decoder, found.encoder, stateDictWeights(sd), runtime, () => sd.close());
  }

  static fromWeights(path: string, keys: readonly string[], weights: WeightSource, runtime: RuntimeOptions = {}): TinyAutoencoder {
    const found = detectTaesd({ keys: () => [...keys], info: (k) => weights.info(k) });
    if (!found.decoder && !found.encoder) throw new Error(`${path}: not a TAESD file`);
    return new TinyAutoencoder(path, found.decoder, found.encoder, weights, runtime, async () => {});
  }

  private get io(): 'f32' | 'f16' {
    return (this.runtime.device ?? 'cpu') === 'cpu' ? 'f32' : 'f16';
  }

  /** Scaled latents [B, C, h, w] → RGB [B, 3, 8h, 8w] in about [0, 1]. */
  async decode(latents: Tensor): Promise<Tensor> {
    const part = this.decoder;
    if (!part) throw new Error(`${this.path}: holds no TAESD decoder`);
    this.decoderSession ??= (async () => {
      const g = new GraphBuilder({ weights: this.weights, dtype: this.io });
      g.output(buildTaesdDecoder(g, g.scope(), part, g.input('z', ['B', part.latentChannels, 'H', 'W'], this.io)), 'image');
      return createSession(g.finish(), this.weights, this.runtime);
    })();
    const s = await this.decoderSession;
    return (await s.run({ z: latents.to(this.io) })).image.to('f32');
  }

  /** RGB [B, 3, H, W] in [0, 1] → scaled latents. */
  async encode(image: Tensor): Promise<Tensor> {
    const part = this.encoder;
    if (!part) throw new Error(`${this.path}: holds no TAESD encoder`);
    this.encoderSession ??= (async () => {
      const g = new GraphBuilder({ weights: this.weights, dtype: this.io });
      g.output(buildTaesdEncoder(g, g.scope(), part, g.input('image', ['B', 3, 'H', 'W'], this.io)), 'latent');
      return createSession(g.finish(), this.weights, this.runtime);
    })();
    const s = await this.encoderSession;
    return (await s.run({ image: image.to(this.io) })).latent.to('f32');
  }

  async close(): Promise<void> {
    for (const p of [this.decoderSession, this.encoderSession]) {
      const s = await p?.catch(() => undefined);
      await s?.release();
    }
    await this.closeFile();
  }
}
