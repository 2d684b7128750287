// A WeightSource that is a base source with changes: LoRA-family patches applied to some weights when
// they are read (i.e. when a session is materialised), and extra tensors (hypernetwork MLPs) served
// under keys of their own. Its id is the base id plus a hash of the change set, which is what keys
// the session cache, so an unchanged set finds its live session and no patch is computed twice.
import { createHash } from 'node:crypto';
import type { TensorInfo } from '../formats/state-dict.js';
import type { WeightSource } from '../graph/weights.js';
import { Tensor } from '../tensor/tensor.js';

export interface WeightPatch {
  /** Full key of the weight (or bias) this patch changes. */
  readonly key: string;
  /** A row block of the tensor (a fused in_proj's q, k or v); the whole tensor when absent. */
  readonly rows?: readonly [number, number];
  /**
   * Changes `w` (float32, only the row block when `rows` is set) in place. `base` holds the same
   * block as stored, before any patch: (IA)³ scales the original weight, not a patched one.
   */
  apply(w: Float32Array, shape: readonly number[], base: Float32Array): void;
}

/** A short stable hash of anything JSON can write. */
export function stableHash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

export class PatchedWeights implements WeightSource {
  readonly id: string;
  readonly label?: string;
  private readonly byKey = new Map<string, WeightPatch[]>();

  /**
   * `changeId` must identify the patches and extras completely (files and strengths), since equal
   * ids share a session.
   */
  constructor(
    private readonly base: WeightSource,
    patches: readonly WeightPatch[],
    changeId: string,
    private readonly extra: ReadonlyMap<string, Tensor> = new Map(),
  ) {
    this.id = `${base.id}+${changeId}`;
    this.label = base.label ?? base.id;
    for (const p of patches) {
      const list = this.byKey.get(p.key);
      if (list) list.push(p);
      else this.byKey.set(p.key, [p]);
    }
  }

  /** Keys this source changes, for tests and reports. */
  get patchedKeys(): string[] { return [...this.byKey.keys()]; }

  info(key: string): TensorInfo | undefined {
    const t = this.extra.get(key);
    if (t) return { dtype: t.dtype, shape: t.shape };
    return this.base.info(key);
  }

  async read(key: string): Promise<Tensor> {
    const t = this.extra.get(key);
    if (t) return t;
    const patches = this.byKey.get(key);
    if (!patches) return this.base.read(key);
    const stored = await this.base.read(key);
    const base = stored.toFloat32Array();
    const w = new Float32Array(base);
    const rowLen = stored.shape.length ? w.length / stored.shape[0] : w.length;
    for (const p of patches) {
      const [r0, r1] = p.rows ?? [0, stored.shape[0] ?? 1];
      const shape = stored.shape.length ? [r1 - r0, ...stored.shape.slice(1)] : [];
      p.apply(w.subarray(r0 * rowLen, r1 * rowLen), shape, base.subarray(r0 * rowLen, r1 * rowLen));
    }
    return Tensor.f32(stored.shape, w);
  }
}
