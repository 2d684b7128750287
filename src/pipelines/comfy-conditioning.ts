// ComfyUI's CONDITIONING value and the conditioning nodes that transform it (nodes.py:
// ConditioningCombine, ConditioningAverage, ConditioningConcat, ConditioningSetArea,
// ConditioningSetAreaPercentage, ConditioningSetAreaStrength, ConditioningSetMask,
// ConditioningZeroOut, ConditioningSetTimestepRange).
//
// A CONDITIONING is a list of entries `[cross_attn [1, T, W], { pooled_output?, area?, strength?,
// mask?, … }]`; here each entry is one object with the tensor and the options camel-cased. Every
// function is pure (a new list, entries copied, tensors shared unless the node computes new ones)
// and takes the node's inputs in the node's own order, so a workflow node is one call. How the
// sampler uses the options is in comfy-guidance.ts.
import type { ControlNet } from '../models/controlnet-model.js';
import { sdxlVector, type AdmKind } from '../models/sdxl-vector.js';
import type { ComfyControl, ControlImage } from './comfy-controlnet.js';
import type { CondTensor } from './conditioning.js';

/** ComfyUI's MASK: [batch, height, width] floats, usually at pixel size (resized to the latent when sampling). */
export interface ComfyMask {
  readonly data: Float32Array;
  readonly batch: number;
  readonly height: number;
  readonly width: number;
}

/**
 * Where an entry applies. `latent`: in latent cells, as ConditioningSetArea stores it (pixels // 8).
 * `percentage`: fractions of the latent, resolved when sampling starts (ConditioningSetAreaPercentage).
 */
export interface ComfyArea {
  readonly kind: 'latent' | 'percentage';
  readonly height: number;
  readonly width: number;
  readonly y: number;
  readonly x: number;
}

/** One entry of a CONDITIONING list. Absent options mean ComfyUI's absent keys. */
export interface ComfyCondEntry {
  /** The text encoder's hidden states, [1, tokens, width]. */
  readonly cond: CondTensor;
  /** `pooled_output` (SDXL-style models; carried through the nodes, unused by SD1/SD2 UNets). */
  readonly pooledOutput?: Float32Array;
  readonly area?: ComfyArea;
  /** `strength`: multiplies the entry's weight in the average (default 1). */
  readonly strength?: number;
  readonly mask?: ComfyMask;
  /** `mask_strength` (default 1). */
  readonly maskStrength?: number;
  /** `set_area_to_bounds`: run the entry on the mask's bounding box only. */
  readonly setAreaToBounds?: boolean;
  /** `concat_latent_image` (unscaled [B, C, h, w]) and `concat_mask`: what an inpainting checkpoint's extra channels see (InpaintModelConditioning). */
  readonly concatLatent?: { readonly samples: Float32Array; readonly shape: readonly [number, number, number, number] };
  readonly concatMask?: ComfyMask;
  /** `start_percent` / `end_percent` of the sampling schedule the entry is active in. */
  readonly startPercent?: number;
  readonly endPercent?: number;
  /**
   * SDXL size conditioning (CLIPTextEncodeSDXL / …Refiner): `width` / `height` are the original size,
   * `crop_w` / `crop_h` the crop, `target_*` the base's target size, `aesthetic_score` the
   * refiner's. Absent values get `encode_adm`'s defaults when sampling (see `comfyVector`).
   */
  readonly width?: number;
  readonly height?: number;
  readonly cropW?: number;
  readonly cropH?: number;
  readonly targetWidth?: number;
  readonly targetHeight?: number;
  readonly aestheticScore?: number;
  /** `control`: the ControlNet chain applied to this entry (ControlNetApply / ControlNetApplyAdvanced). */
  readonly control?: ComfyControl;
  /** `control_apply_to_uncond` (the deprecated ControlNetApply): the sampler copies the control to the negative. */
  readonly controlApplyToUncond?: boolean;
}

export type ComfyConditioning = readonly ComfyCondEntry[];

/** An entry made from hidden states alone (what CLIPTextEncode outputs, pooled output optional). */
export function comfyConditioning(cond: CondTensor, pooledOutput?: Float32Array): ComfyConditioning {
  return [pooledOutput ? { cond, pooledOutput } : { cond }];
}

/**
 * The vector y ComfyUI's `encode_model_conds` → `SDXL(.Refiner).encode_adm` gives an entry when
 * sampling a latent of `latentWidth` × `latentHeight` cells: width / height default to the latent's
 * size in pixels, the crop to 0, the target to width / height, the aesthetic score to 6 for the
 * positive list and 2.5 for the negative one. Height is embedded before width.
 */
export function comfyVector(e: ComfyCondEntry, kind: AdmKind, latentWidth: number, latentHeight: number, promptType: 'positive' | 'negative'): Float32Array {
  if (!e.pooledOutput) throw new Error('SDXL conditioning needs a pooled_output (encode the prompt with this SDXL model\'s CLIP)');
  const width = e.width ?? latentWidth * 8;
  const height = e.height ?? latentHeight * 8;
  return sdxlVector(kind, e.pooledOutput, {
    originalHeight: height, originalWidth: width, cropTop: e.cropH ?? 0, cropLeft: e.cropW ?? 0,
    targetHeight: e.targetHeight ?? height, targetWidth: e.targetWidth ?? width,
    aestheticScore: e.aestheticScore ?? (promptType === 'negative' ? 2.5 : 6),
  });
}

/** node_helpers.conditioning_set_values: every entry copied with the values set. */
export function setValues(conditioning: ComfyConditioning, values: Partial<Omit<ComfyCondEntry, 'cond'>>): ComfyConditioning {
  return conditioning.map((e) => ({ ...e, ...values }));
}

/** Python's `//` on ints (floor division). */
const floorDiv = (a: number, b: number): number => Math.floor(a / b);

/** ConditioningCombine: the two lists one after the other. */
export function combine(conditioning1: ComfyConditioning, conditioning2: ComfyConditioning): ComfyConditioning {
  return [...conditioning1, ...conditioning2];
}

function firstOf(conditioning: ComfyConditioning, node: string): ComfyCondEntry {
  if (conditioning.length === 0) throw new Error(`${node}: conditioning_from is empty`);
  return conditioning[0];
}

/**
 * ConditioningAverage (`addWeighted`): every entry of `to` becomes to·s + from·(1 − s), `from` being
 * the first entry of `conditioningFrom` cut or zero-padded to the entry's length (float32 math, as
 * torch does it). Pooled outputs are mixed the same way when both exist; `from`'s is taken when
 * only it has one. Only the first entry of `conditioningFrom` is used (ComfyUI warns about more).
 */
export function average(conditioningTo: ComfyConditioning, conditioningFrom: ComfyConditioning, conditioningToStrength: number): ComfyConditioning {
  const f32 = Math.fround;
  const from = firstOf(conditioningFrom, 'ConditioningAverage');
  const s = f32(conditioningToStrength);
  const r = f32(1.0 - conditioningToStrength);
  return conditioningTo.map((e) => {
    const t1 = e.cond;
    if (t1.width !== from.cond.width) throw new Error(`ConditioningAverage: widths differ (${t1.width} and ${from.cond.width})`);
    const data = new Float32Array(t1.tokens * t1.width);
    const shared = Math.min(t1.tokens, from.cond.tokens) * t1.width;
    for (let i = 0; i < data.length; i++) {
      const t0 = i < shared ? from.cond.data[i] : 0;
      data[i] = f32(f32(t1.data[i] * s) + f32(t0 * r));
    }
    const out: { -readonly [K in keyof ComfyCondEntry]: ComfyCondEntry[K] } = { ...e, cond: { data, tokens: t1.tokens, width: t1.width } };
    const pooledFrom = from.pooledOutput;
    const pooledTo = e.pooledOutput ?? pooledFrom;
    if (pooledFrom && pooledTo) {
      if (pooledTo.length !== pooledFrom.length) throw new Error('ConditioningAverage: pooled outputs differ in size');
      out.pooledOutput = pooledTo.map((v, i) => f32(f32(v * s) + f32(pooledFrom[i] * r)));
    }
    return out;
  });
}

/** ConditioningConcat: the first entry of `conditioningFrom` appended along the tokens of every entry of `to`. */
export function concat(conditioningTo: ComfyConditioning, conditioningFrom: ComfyConditioning): ComfyConditioning {
  const from = firstOf(conditioningFrom, 'ConditioningConcat').cond;
  return conditioningTo.map((e) => {
    if (e.cond.width !== from.width) throw new Error(`ConditioningConcat: widths differ (${e.cond.width} and ${from.width})`);
    const data = new Float32Array((e.cond.tokens + from.tokens) * from.width);
    data.set(e.cond.data);
    data.set(from.data, e.cond.data.length);
    return { ...e, cond: { data, tokens: e.cond.tokens + from.tokens, width: from.width } };
  });
}

/** ConditioningSetArea: area in pixels (multiples of 8 in the UI), stored as latent cells `// 8`. */
export function setArea(conditioning: ComfyConditioning, width: number, height: number, x: number, y: number, strength: number): ComfyConditioning {
  return setValues(conditioning, {
    area: { kind: 'latent', height: floorDiv(height, 8), width: floorDiv(width, 8), y: floorDiv(y, 8), x: floorDiv(x, 8) },
    strength, setAreaToBounds: false,
  });
}

/** ConditioningSetAreaPercentage: area as fractions of the latent, resolved when sampling starts. */
export function setAreaPercentage(conditioning: ComfyConditioning, width: number, height: number, x: number, y: number, strength: number): ComfyConditioning {
  return setValues(conditioning, { area: { kind: 'percentage', height, width, y, x }, strength, setAreaToBounds: false });
}

/** ConditioningSetAreaStrength. */
export function setAreaStrength(conditioning: ComfyConditioning, strength: number): ComfyConditioning {
  return setValues(conditioning, { strength });
}

/**
 * ConditioningSetMask: `setCondArea` 'default' keeps the whole latent as the entry's input,
 * 'mask bounds' runs it on the bounding box of the mask only. `strength` is the mask strength.
 */
export function setMask(conditioning: ComfyConditioning, mask: ComfyMask, setCondArea: 'default' | 'mask bounds', strength: number): ComfyConditioning {
  if (mask.data.length !== mask.batch * mask.height * mask.width) throw new Error('ConditioningSetMask: mask data does not match its shape');
  return setValues(conditioning, { mask, setAreaToBounds: setCondArea !== 'default', maskStrength: strength });
}

/** ConditioningZeroOut: hidden states (and pooled output) replaced by zeros of the same size. */
export function zeroOut(conditioning: ComfyConditioning): ComfyConditioning {
  return conditioning.map((e) => {
    const out: { -readonly [K in keyof ComfyCondEntry]: ComfyCondEntry[K] } = {
      ...e, cond: { data: new Float32Array(e.cond.data.length), tokens: e.cond.tokens, width: e.cond.width },
    };
    if (e.pooledOutput) out.pooledOutput = new Float32Array(e.pooledOutput.length);
    return out;
  });
}

/** ConditioningSetTimestepRange: active from `start` to `end` (fractions of the schedule, 0 = first step). */
export function setTimestepRange(conditioning: ComfyConditioning, start: number, end: number): ComfyConditioning {
  return setValues(conditioning, { startPercent: start, endPercent: end });
}


/** Every entry gets a unit chained to its own previous one; entries sharing a previous share the unit. */
function applyUnit(conditioning: ComfyConditioning, make: (previous?: ComfyControl) => ComfyControl, toUncond: boolean, made: Map<ComfyControl | undefined, ComfyControl>): ComfyConditioning {
  return conditioning.map((e) => {
    let unit = made.get(e.control);
    if (!unit) made.set(e.control, (unit = make(e.control)));
    return { ...e, control: unit, controlApplyToUncond: toUncond };
  });
}

/**
 * ControlNetApplyAdvanced: the ControlNet with this image, strength and range on every entry of both
 * lists (the negative gets control too); strength 0 leaves the lists as they are.
 */
export function controlNetApplyAdvanced(positive: ComfyConditioning, negative: ComfyConditioning, net: ControlNet, image: ControlImage, strength: number, startPercent: number, endPercent: number): [ComfyConditioning, ComfyConditioning] {
  if (strength === 0) return [positive, negative];
  const made = new Map<ComfyControl | undefined, ComfyControl>();
  const make = (previous?: ComfyControl): ComfyControl => ({ net, image, strength, startPercent, endPercent, previous });
  return [applyUnit(positive, make, false, made), applyUnit(negative, make, false, made)];
}

/** ControlNetApply (deprecated): positive only, marked for the sampler to copy to the negative. */
export function controlNetApply(conditioning: ComfyConditioning, net: ControlNet, image: ControlImage, strength: number): ComfyConditioning {
  if (strength === 0) return conditioning;
  const made = new Map<ComfyControl | undefined, ComfyControl>();
  return applyUnit(conditioning, (previous) => ({ net, image, strength, startPercent: 0, endPercent: 1, previous }), true, made);
}

/**
 * samplers.py `apply_empty_x_to_equal_area` for `control`: unless an area-less negative entry has
 * control already, the controls of the area-less positive entries marked `controlApplyToUncond` go
 * onto the area-less negative entries (the i-th onto entry i mod n).
 */
interface ControlCarrier {
  readonly area?: unknown;
  readonly control?: ComfyControl;
  readonly controlApplyToUncond?: boolean;
}

export function copyControlToUncond<T extends ControlCarrier>(positive: readonly T[], negative: readonly T[]): T[] {
  const controls = positive.filter((e) => e.controlApplyToUncond && !e.area && e.control).map((e) => e.control!);
  const out = [...negative];
  if (controls.length === 0) return out;
  const free = negative.flatMap((e, i) => (e.area ? [] : [{ e, i }]));
  if (free.some(({ e }) => e.control)) return out;
  const others = free.filter(({ e }) => !e.control);
  if (others.length === 0) return out;
  controls.forEach((control, x) => {
    const { e, i } = others[x % others.length];
    out[i] = { ...e, control };
  });
  return out;
}
