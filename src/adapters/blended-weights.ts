// Two models' weights mixed key by key, read lazily when a session is built: ComfyUI's
// ModelMergeSimple / CLIPMergeSimple (model1·ratio + model2·(1 − ratio)) without a merged file.
import type { TensorInfo } from '../formats/state-dict.js';
import type { WeightSource } from '../graph/weights.js';
import { Tensor } from '../tensor/tensor.js';

export class BlendedWeights implements WeightSource {
  readonly id: string;
  readonly label?: string;

  /**
   * Keys under `prefixA` in `a` are blended with the same key under `prefixB` in `b`; other keys
   * (and keys `b` lacks) are `a`'s unchanged, as ComfyUI merges only the keys both models have.
   */
  constructor(private readonly a: WeightSource, private readonly prefixA: string, private readonly b: WeightSource,
    private readonly prefixB: string, private readonly ratio: number) {
    this.id = `blend(${a.id}|${prefixA}|${b.id}|${prefixB}|${ratio})`;
    this.label = a.label ?? a.id;
  }

  info(key: string): TensorInfo | undefined {
    return this.a.info(key);
  }

  private other(key: string): string | undefined {
    if (!key.startsWith(this.prefixA)) return undefined;
    const k = this.prefixB + key.slice(this.prefixA.length);
    const ia = this.a.info(key);
    const ib = this.b.info(k);
    return ia && ib && ia.shape.join() === ib.shape.join() ? k : undefined;
  }

  async read(key: string): Promise<Tensor> {
    const k = this.other(key);
    if (!k || this.ratio === 1) return this.a.read(key);
    const [x, y] = await Promise.all([this.a.read(key), this.b.read(k)]);
    const xa = x.toFloat32Array();
    const ya = y.toFloat32Array();
    const r = this.ratio;
    return Tensor.f32(x.shape, xa.map((v, i) => v * r + ya[i] * (1 - r)));
  }
}
