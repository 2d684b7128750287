// Checkpoint merging as A1111's merger and the "merge block weighted" extension do it:
//   weighted sum     (1 − α)·A + α·B
//   add difference   A + α·(B − C)
// with α per UNet block when 25 block weights are given (IN00–IN11, M00, OUT00–OUT11; time_embed
// counts as IN00 and the final `out.` layers as OUT11, everything else outside the UNet takes the base
// α). The result streams to a safetensors file tensor by tensor — the header is known from the inputs'
// headers — so a 2 GB model is never held in memory, and lands by rename only once complete.
import { basename, extname } from 'node:path';
import { legacyModelHash, sha256File } from '../formats/hash.js';
import { openStateDict } from '../formats/open.js';
import { writeSafetensors } from '../formats/safetensors.js';
import type { StateDict } from '../formats/state-dict.js';
import { isFloatDType, type DType } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';

export type MergeMode = 'weighted-sum' | 'add-difference';
export type MergeDType = 'keep' | 'f16' | 'f32' | 'bf16';

export interface MergeOptions {
  readonly a: string;
  readonly b: string;
  /** Required for add-difference. */
  readonly c?: string;
  readonly mode: MergeMode;
  readonly alpha: number;
  /** 25 per-block α for the UNet (MBW order). */
  readonly blockWeights?: readonly number[];
  /** A VAE whose weights replace the result's `first_stage_model.*` (baked in). */
  readonly vae?: string;
  /** Stored dtype of float tensors; `keep` (default) keeps model A's. */
  readonly dtype?: MergeDType;
  readonly out: string;
  readonly onProgress?: (done: number, total: number) => void;
}

export interface MergeResult {
  readonly out: string;
  readonly tensors: number;
  readonly merged: number;
  /** Keys copied from A because B (or C) lacks them outside the model weights, or they are not floats. */
  readonly copied: number;
  readonly vaeReplaced: number;
  readonly metadata: Readonly<Record<string, string>>;
}

const UNET = 'model.diffusion_model.';
/** Prefixes whose tensors must be in every input: silently keeping A's would be a wrong model. */
const WEIGHT_PREFIXES = [UNET, 'cond_stage_model.', 'first_stage_model.'];
// A1111 never merges this index buffer (checkpoint_dict_skip_on_merge).
const SKIP_ON_MERGE = new Set(['cond_stage_model.transformer.text_model.embeddings.position_ids']);

export const BLOCK_NAMES: readonly string[] = [
  ...Array.from({ length: 12 }, (_, i) => `IN${String(i).padStart(2, '0')}`), 'M00',
  ...Array.from({ length: 12 }, (_, i) => `OUT${String(i).padStart(2, '0')}`),
];

/** MBW block index of a UNet key, or -1 for keys that take the base α. */
export function blockIndex(key: string): number {
  if (!key.startsWith(UNET)) return -1;
  if (key.includes('time_embed')) return 0;
  if (key.includes('.out.')) return 24;
  let m = /\.input_blocks\.(\d+)\./.exec(key);
  if (m) return Number(m[1]);
  if (/\.middle_block\.(\d+)\./.test(key)) return 12;
  m = /\.output_blocks\.(\d+)\./.exec(key);
  if (m) return 13 + Number(m[1]);
  return -1;
}

interface Planned { key: string; dtype: DType; shape: readonly number[]; produce: () => Promise<Tensor> }

function checkOptions(o: MergeOptions): void {
  if (o.mode !== 'weighted-sum' && o.mode !== 'add-difference') throw new Error(`merge mode must be weighted-sum or add-difference, got '${o.mode as string}'`);
  if (!Number.isFinite(o.alpha)) throw new Error(`alpha must be a number, got ${o.alpha}`);
  if (o.mode === 'add-difference' && !o.c) throw new Error('add-difference needs a third model (--c): A + α·(B − C)');
  if (o.mode === 'weighted-sum' && o.c) throw new Error('weighted-sum takes two models; --c is only for add-difference');
  if (o.blockWeights && (o.blockWeights.length !== 25 || !o.blockWeights.every(Number.isFinite))) {
    throw new Error(`block weights must be 25 numbers (${BLOCK_NAMES[0]}…${BLOCK_NAMES[12]}…${BLOCK_NAMES[24]}), got ${o.blockWeights.length}`);
  }
  const ins = [o.a, o.b, o.c, o.vae].filter((p): p is string => !!p);
  if (ins.includes(o.out)) throw new Error(`${o.out}: the output would overwrite an input`);
}

/** Keys a VAE file holds, as `first_stage_model.*` names (A1111's load_vae_dict: prefix optional, `loss.*` dropped). */
function vaeKeyMap(vae: StateDict): Map<string, string> {
  const map = new Map<string, string>();
  for (const k of vae.keys()) {
    if (k.startsWith('loss.') || k.startsWith('model_ema.')) continue;
    const bare = k.startsWith('first_stage_model.') ? k.slice('first_stage_model.'.length) : k;
    map.set(`first_stage_model.${bare}`, k);
  }
  return map;
}

export async function mergeCheckpoints(o: MergeOptions): Promise<MergeResult> {
  checkOptions(o);
  const opened: StateDict[] = [];
  const openOne = async (p: string) => { const sd = await openStateDict(p); opened.push(sd); return sd; };
  try {
    const A = await openOne(o.a);
    const B = await openOne(o.b);
    const C = o.c ? await openOne(o.c) : undefined;
    const V = o.vae ? await openOne(o.vae) : undefined;
    const vaeMap = V ? vaeKeyMap(V) : undefined;
    const outType = (d: DType): DType => (isFloatDType(d) && o.dtype && o.dtype !== 'keep' ? o.dtype : d);
    const items: Planned[] = [];
    let merged = 0;
    let copied = 0;
    let vaeReplaced = 0;
    for (const key of A.keys()) {
      const ia = A.info(key)!;
      const dtype = outType(ia.dtype);
      const vaeKey = vaeMap?.get(key);
      if (vaeKey !== undefined) {
        const iv = V!.info(vaeKey)!;
        if (iv.shape.join() !== ia.shape.join()) throw new Error(`${o.vae}: VAE tensor '${vaeKey}' is [${iv.shape.join(', ')}] but '${key}' in ${o.a} is [${ia.shape.join(', ')}]`);
        vaeReplaced++;
        items.push({ key, dtype, shape: ia.shape, produce: async () => convert(await V!.read(vaeKey), dtype) });
        continue;
      }
      const isWeight = WEIGHT_PREFIXES.some((p) => key.startsWith(p));
      const mergeable = isFloatDType(ia.dtype) && !SKIP_ON_MERGE.has(key);
      const others: [StateDict, string][] = [[B, o.b], ...(C ? [[C, o.c!] as [StateDict, string]] : [])];
      let usable = mergeable;
      for (const [sd, p] of others) {
        const io = sd.info(key);
        if (!io) {
          if (isWeight && mergeable) throw new Error(`${p}: has no tensor '${key}' (which ${o.a} has): the models have different architectures`);
          usable = false;
          continue;
        }
        if (mergeable && io.shape.join() !== ia.shape.join()) {
          throw new Error(`'${key}' is [${ia.shape.join(', ')}] in ${o.a} but [${io.shape.join(', ')}] in ${p}: the models have different architectures (inpainting and standard models cannot be merged)`);
        }
      }
      if (!usable) {
        copied++;
        items.push({ key, dtype, shape: ia.shape, produce: async () => convert(await A.read(key), dtype) });
        continue;
      }
      const bi = blockIndex(key);
      const alpha = o.blockWeights && bi >= 0 ? o.blockWeights[bi] : o.alpha;
      merged++;
      items.push({
        key, dtype, shape: ia.shape,
        produce: async () => {
          const a = (await A.read(key)).toFloat32Array();
          const b = (await B.read(key)).toFloat32Array();
          const out = new Float32Array(a.length);
          if (o.mode === 'weighted-sum') {
            for (let i = 0; i < a.length; i++) out[i] = (1 - alpha) * a[i] + alpha * b[i];
          } else {
            const c = (await C!.read(key)).toFloat32Array();
            for (let i = 0; i < a.length; i++) out[i] = a[i] + alpha * (b[i] - c[i]);
          }
          return convert(Tensor.f32(ia.shape, out), dtype);
        },
      });
    }
    if (V && vaeReplaced === 0) throw new Error(`${o.vae}: none of its tensors matches a first_stage_model.* key of ${o.a}; is it a VAE in the LDM layout?`);
    const metadata = await recipe(o, { merged, copied, vaeReplaced });
    await writeSafetensors(o.out, new Map(items.map((it) => [it.key, it])), metadata, o.onProgress);
    return { out: o.out, tensors: items.length, merged, copied, vaeReplaced, metadata };
  } finally {
    for (const sd of opened) await sd.close();
  }
}

function convert(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t;
  if (dtype === 'f32' || dtype === 'f16' || dtype === 'bf16') return t.to(dtype);
  throw new Error(`cannot store a ${t.dtype} tensor as ${dtype}`);
}

/** The recipe in the metadata fields A1111's merger writes (sd_merge_recipe, sd_merge_models). */
async function recipe(o: MergeOptions, counts: { merged: number; copied: number; vaeReplaced: number }): Promise<Record<string, string>> {
  const models: Record<string, { name: string; legacy_hash: string; sd_merge_recipe: string | null }> = {};
  const hashes: (string | null)[] = [];
  for (const p of [o.a, o.b, o.c]) {
    if (!p) { hashes.push(null); continue; }
    const sha = await sha256File(p);
    hashes.push(sha);
    const inner = await openStateDict(p).then(async (sd) => { const m = sd.metadata; await sd.close(); return m; });
    models[sha] = { name: basename(p, extname(p)), legacy_hash: await legacyModelHash(p), sd_merge_recipe: inner.sd_merge_recipe ?? null };
    if (inner.sd_merge_models) {
      try { Object.assign(models, JSON.parse(inner.sd_merge_models)); } catch { /* an unreadable history is dropped, not fatal */ }
    }
  }
  const r = {
    type: 'latentkit',
    primary_model_hash: hashes[0], secondary_model_hash: hashes[1], tertiary_model_hash: hashes[2],
    interp_method: o.mode === 'weighted-sum' ? 'Weighted sum' : 'Add difference',
    multiplier: o.alpha,
    block_weights: o.blockWeights ? o.blockWeights.join(',') : null,
    save_as_half: o.dtype === 'f16',
    dtype: o.dtype ?? 'keep',
    bake_in_vae: o.vae ? basename(o.vae) : 'None',
    vae_hash: o.vae ? await sha256File(o.vae) : null,
    merged_tensors: counts.merged, copied_tensors: counts.copied, vae_tensors: counts.vaeReplaced,
  };
  return { format: 'pt', sd_merge_recipe: JSON.stringify(r), sd_merge_models: JSON.stringify(models) };
}
