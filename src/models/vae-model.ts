// A VAE on its own (a `vae/` file chosen in a workflow, or a checkpoint's VAE): the decoder and encoder
// sessions without the UNet and text encoder, so a graph can pair any VAE with any model.
import { GraphBuilder } from '../graph/builder.js';
import type { WeightSource } from '../graph/weights.js';
import { SessionCache, type RuntimeOptions } from '../runtime/session.js';
import type { Tensor } from '../tensor/tensor.js';
import { openVaeWeights } from './diffusers.js';
import { buildVaeDecoder, buildVaeEncoder } from './vae.js';

export class VaeModel {
  /** SD1/SD2 latent scale factor. */
  readonly scaleFactor = 0.18215;
  readonly latentChannels = 4;
  private readonly sessions = new SessionCache();

  constructor(readonly path: string, private readonly weights: WeightSource, private readonly prefix: string,
    readonly runtime: RuntimeOptions = {}, private readonly closeFiles: () => Promise<void> = async () => {}) {}

  static async load(path: string, runtime: RuntimeOptions = {}): Promise<VaeModel> {
    const v = await openVaeWeights(path);
    const model = new VaeModel(path, v.source, v.prefix, runtime, v.close);
    try {
      // Building the graph reads no weights but checks every key and shape, so a wrong file fails here.
      const g = model.builder();
      buildVaeDecoder(g, g.scope(v.prefix), g.input('z', ['B', 4, 'H', 'W'], model.io));
    } catch (err) {
      await v.close();
      throw err;
    }
    return model;
  }

  private get io(): 'f32' | 'f16' {
    return (this.runtime.device ?? 'cpu') === 'cpu' ? 'f32' : 'f16';
  }

  private builder(): GraphBuilder {
    return new GraphBuilder({ weights: this.weights, dtype: this.io });
  }

  /** decoder(post_quant_conv(z)) for z already divided by the scale factor; values in about [-1, 1]. */
  async decode(z: Tensor): Promise<Tensor> {
    const g = this.builder();
    g.output(buildVaeDecoder(g, g.scope(this.prefix), g.input('z', ['B', this.latentChannels, 'H', 'W'], this.io)), 'image');
    const s = await this.sessions.get(g.finish(), this.weights, this.runtime);
    return (await s.run({ z: z.to(this.io) })).image.to('f32');
  }

  /** The posterior of an image in [-1, 1]: mean and (clamped) log-variance, unscaled. */
  async encode(image: Tensor): Promise<{ mean: Tensor; logvar: Tensor }> {
    const g = this.builder();
    const p = buildVaeEncoder(g, g.scope(this.prefix), g.input('image', ['B', 3, 'H', 'W'], this.io));
    g.output(p.mean, 'mean');
    g.output(p.logvar, 'logvar');
    const s = await this.sessions.get(g.finish(), this.weights, this.runtime);
    const out = await s.run({ image: image.to(this.io) });
    return { mean: out.mean.to('f32'), logvar: out.logvar.to('f32') };
  }

  async close(): Promise<void> {
    await this.sessions.clear();
    await this.closeFiles();
  }
}
