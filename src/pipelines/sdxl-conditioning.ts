// SDXL prompt conditioning: each prompt through CLIP-L and OpenCLIP-G (G alone for the refiner), the
// hidden states concatenated along the width, and the vector `y` built from G's pooled output and the
// size numbers. Chunking, weighting and emphasis are each encoder's own (ComfyUI's SDXLClipModel and
// A1111's per-embedder hijacks run them separately, so A1111's mean restoration is per encoder).
import type { StableDiffusionModel, TextEncoderView } from '../models/sd-model.js';
import { sdxlVector, type SdxlSizeParams } from '../models/sdxl-vector.js';
import type { ClipTokenizer } from '../text/clip-tokenizer.js';
import {
  comfySectionCount, encodeA1111TextsPooled, encodeComfyPromptPooled,
  type A1111TextOptions, type ComfyPromptOptions, type CondTensor, type PromptEncoder,
} from './conditioning.js';

export interface Size {
  readonly width: number;
  readonly height: number;
}

/** The size part of SDXL conditioning as A1111 / the CLI set it. */
export interface SdxlSizeOptions {
  /** The image being generated: original and target size default to it (A1111's rule; ComfyUI's CLIPTextEncode too). */
  readonly width: number;
  readonly height: number;
  readonly originalSize?: Size;
  readonly targetSize?: Size;
  /** Crop coordinates (A1111 options sdxl_crop_top / sdxl_crop_left), default 0, 0. */
  readonly crop?: { readonly top: number; readonly left: number };
  /** Refiner only: 6 for the prompt, 2.5 for the negative prompt (A1111's and ComfyUI's defaults). */
  readonly aestheticScore?: number;
  readonly negativeAestheticScore?: number;
}

export interface SdxlEncoderOptions extends SdxlSizeOptions {
  /**
   * A1111: a negative prompt whose texts are all empty is zeroed (crossattn and pooled), not encoded
   * (`force_zero_embeddings=['txt']`). Default true; applies to the a1111 syntax only.
   */
  readonly zeroEmptyNegative?: boolean;
  /** A1111 option `sdxl_clip_l_skip`: clip skip applies to CLIP-L (never to G). Default off. */
  readonly clipLSkip?: boolean;
}

export const DEFAULT_AESTHETIC_SCORE = 6;
export const DEFAULT_NEGATIVE_AESTHETIC_SCORE = 2.5;

/** The numbers y embeds for one prompt of the pair. */
export function sdxlSizeParams(o: SdxlSizeOptions, negative: boolean): SdxlSizeParams {
  const original = o.originalSize ?? o;
  const target = o.targetSize ?? o;
  return {
    originalHeight: original.height, originalWidth: original.width,
    cropTop: o.crop?.top ?? 0, cropLeft: o.crop?.left ?? 0,
    targetHeight: target.height, targetWidth: target.width,
    aestheticScore: negative ? o.negativeAestheticScore ?? DEFAULT_NEGATIVE_AESTHETIC_SCORE : o.aestheticScore ?? DEFAULT_AESTHETIC_SCORE,
  };
}

/** Hidden states of the encoders side by side ([T, ΣW]), cut to the shortest (ComfyUI's `cut_to`). */
export function concatWidth(parts: readonly CondTensor[]): CondTensor {
  if (parts.length === 1) return parts[0];
  const tokens = Math.min(...parts.map((p) => p.tokens));
  const width = parts.reduce((a, p) => a + p.width, 0);
  const data = new Float32Array(tokens * width);
  for (let t = 0; t < tokens; t++) {
    let o = t * width;
    for (const p of parts) {
      data.set(p.data.subarray(t * p.width, (t + 1) * p.width), o);
      o += p.width;
    }
  }
  return { data, tokens, width };
}

function encoders(model: StableDiffusionModel): { l?: TextEncoderView; g: TextEncoderView } {
  const views = model.textEncoders;
  const g = views.find((v) => v.name === 'clip_g');
  if (!g) throw new Error(`${model.path}: not an SDXL model (no OpenCLIP-G text encoder)`);
  return { l: views.find((v) => v.name === 'clip_l'), g };
}

/**
 * ComfyUI's SDXL text encoding (CLIPTextEncode gives textG = textL; CLIPTextEncodeSDXL separate
 * texts): G of textG, CLIP-L of textL, the one with fewer sections evened out with empty-prompt
 * sections, each weighted against its own empty encoding; pooled = G's first section. The refiner
 * has G only.
 */
export async function encodeComfySdxl(model: StableDiffusionModel, tokenizer: ClipTokenizer, textG: string, textL: string, opts: ComfyPromptOptions = {}): Promise<{ cond: CondTensor; pooled: Float32Array }> {
  const { l, g } = encoders(model);
  if (!l) {
    const r = await encodeComfyPromptPooled(g, tokenizer, textG, opts);
    return { cond: r.cond, pooled: r.pooled! };
  }
  const sections = Math.max(comfySectionCount(tokenizer, textG, opts), comfySectionCount(tokenizer, textL, opts));
  const rl = await encodeComfyPromptPooled(l, tokenizer, textL, { ...opts, minSections: sections });
  const rg = await encodeComfyPromptPooled(g, tokenizer, textG, { ...opts, minSections: sections });
  return { cond: concatWidth([rl.cond, rg.cond]), pooled: rg.pooled! };
}

/**
 * A1111's SDXL encoding of a batch of texts: every 75-token chunk through both encoders (CLIP-L at
 * hidden_states[-2], or −clipSkip with `clipLSkip`; G always penultimate), emphasis per encoder,
 * pooled from each text's first chunk.
 */
export async function encodeA1111Sdxl(model: StableDiffusionModel, tokenizer: ClipTokenizer, texts: readonly string[], opts: A1111TextOptions & { readonly clipLSkip?: boolean }): Promise<{ conds: CondTensor[]; pooled: Float32Array[] }> {
  const { l, g } = encoders(model);
  const rg = await encodeA1111TextsPooled(g, tokenizer, texts, { ...opts, clipSkip: 2 });
  if (!l) return { conds: rg.conds, pooled: rg.pooled! };
  const rl = await encodeA1111TextsPooled(l, tokenizer, texts, { ...opts, clipSkip: opts.clipLSkip ? opts.clipSkip : 2 });
  return { conds: rl.conds.map((c, i) => concatWidth([c, rg.conds[i]])), pooled: rg.pooled! };
}

/** The prompt encoder of an SDXL model for txt2img / img2img: conds that carry their vector `y`. */
export function sdxlPromptEncoder(model: StableDiffusionModel, tokenizer: ClipTokenizer, o: SdxlEncoderOptions): PromptEncoder {
  const kind = model.admKind;
  if (!kind) throw new Error(`${model.path}: not an SDXL model`);
  const pooledWidth = encoders(model).g.pooledWidth!;
  const withY = (cond: CondTensor, pooled: Float32Array, negative: boolean): CondTensor => ({ ...cond, y: sdxlVector(kind, pooled, sdxlSizeParams(o, negative)) });
  return {
    async comfy(text, opts, negative) {
      // Without CLIPSetLastLayer ComfyUI conditions SDXL on layer −2 of both encoders; clip skip 1
      // (latentkit's "not set") therefore means −2 here, and N ≥ 2 means CLIPSetLastLayer(−N).
      const r = await encodeComfySdxl(model, tokenizer, text, text, { ...opts, clipSkip: Math.max(2, opts.clipSkip ?? 2) });
      return withY(r.cond, r.pooled, negative);
    },
    async a1111(texts, opts, negative) {
      if (negative && (o.zeroEmptyNegative ?? true) && texts.every((t) => t === '')) {
        const width = model.textEncoders.reduce((a, v) => a + v.textWidth, 0);
        const zero: CondTensor = { data: new Float32Array(77 * width), tokens: 77, width };
        return texts.map(() => withY(zero, new Float32Array(pooledWidth), true));
      }
      const r = await encodeA1111Sdxl(model, tokenizer, texts, { ...opts, clipLSkip: o.clipLSkip });
      return r.conds.map((c, i) => withY(c, r.pooled[i], negative));
    },
  };
}
