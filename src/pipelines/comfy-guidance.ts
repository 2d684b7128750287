// ComfyUI's guidance over CONDITIONING lists (comfy/samplers.py): what CFGGuider does with the
// positive and negative lists before sampling (`process_conds`) and at every model call
// (`sampling_function` → `calc_cond_batch` → `cfg_function`).
//
// Before sampling, per list: percentage areas become latent cells and masks are resized to the
// latent (bilinear) and, with "mask bounds", give the entry the area of their bounding box
// (`resolve_areas_and_cond_masks_multidim`); start/end percents become σ bounds
// (`calculate_start_end_timesteps`); every area entry of one list gets a twin in the other list with
// the same area, options and that list's text of the smallest entry enclosing it
// (`create_cond_with_same_area_if_none`).
//
// At each call, per entry: skipped outside its σ range; its input is x cut to its area; its weight
// ("mult") is mask·mask_strength·strength, and area entries without a mask fade in over up to 8
// cells at each inner edge. Entries with equal input shapes and compatible contexts run as one UNet
// batch (contexts of different lengths repeated to their lcm, at most 4× the shorter). Each list's
// prediction is Σ D·mult / (1e-37 + Σ mult), cells no entry covers are 0, and CFG gives
// uncond + (cond − uncond)·cfg. At cfg ≈ 1 the negative list is not evaluated (uncond = 0).
//
// ControlNet entries (comfy-controlnet.ts): an entry's control chain runs on the same batch as the
// UNet call and only entries with the same chain share a batch; ControlNetApply's controls are
// copied to the negative list after the twins are made (`apply_empty_x_to_equal_area`).
//
// Not modelled: GLIGEN / T2I entries, hooks and patches, `default` conds, the model
// function wrappers and pre/post-CFG functions, and the memory-based batch split (replaced by
// `maxBatchRows`). SDXL's vector `y` is made per entry before resolving (`encode_model_conds`).
import type { DiscreteSchedule } from '../sampling/discrete.js';
import type { GuidedDenoiser, GuidedPrediction } from '../sampling/types.js';
import { Tensor } from '../tensor/tensor.js';
import { comfyVector, copyControlToUncond, type ComfyArea, type ComfyCondEntry, type ComfyConditioning } from './comfy-conditioning.js';
import { comfyControlResiduals, type ComfyControl } from './comfy-controlnet.js';
import type { CondTensor } from './conditioning.js';
import { denoisedFromOutput, tile, type UNetLike } from './denoiser.js';
import { interpolate } from './masks.js';
import type { Profile } from './profiles.js';
import { roundHalfEven } from '../sampling/schedules.js';

const f32 = Math.fround;

/** [height, width, y, x] in latent cells, as ComfyUI's resolved `area` tuple (not clamped to the latent). */
export type LatentArea = readonly [number, number, number, number];

/** An entry as the sampler uses it: area in cells, mask at latent size, σ bounds. */
export interface ResolvedCond {
  readonly cond: CondTensor;
  readonly area?: LatentArea;
  readonly strength?: number;
  /** Mask [batch, h, w] at the latent's size (float32 values). */
  readonly mask?: { readonly data: Float32Array; readonly batch: number };
  readonly maskStrength?: number;
  /** The entry is skipped while σ > sigmaStart or σ < sigmaEnd (ComfyUI's `timestep_start` / `timestep_end`). */
  readonly sigmaStart?: number;
  readonly sigmaEnd?: number;
  readonly control?: ComfyControl;
  readonly controlApplyToUncond?: boolean;
}


function resolveArea(a: ComfyArea, h: number, w: number): LatentArea {
  if (a.kind === 'latent') return [a.height, a.width, a.y, a.x];
  return [Math.max(1, roundHalfEven(a.height * h)), Math.max(1, roundHalfEven(a.width * w)), roundHalfEven(a.y * h), roundHalfEven(a.x * w)];
}

/** `resolve_areas_and_cond_masks_multidim` and `calculate_start_end_timesteps` for one entry. */
function resolveEntry(e: ComfyCondEntry, h: number, w: number, schedule: DiscreteSchedule): ResolvedCond {
  let area = e.area ? resolveArea(e.area, h, w) : undefined;
  let mask: ResolvedCond['mask'];
  if (e.mask) {
    const m = e.mask;
    if (m.data.length !== m.batch * m.height * m.width) throw new Error('conditioning mask data does not match its shape');
    let data = m.data;
    if (m.height !== h || m.width !== w) data = Float32Array.from(interpolate(m.data, m.batch, m.height, m.width, h, w, 'bilinear'));
    mask = { data, batch: m.batch };
    if (e.setAreaToBounds) {
      // Bounding box of the cells where any mask of the batch is non-zero; at least 8×8 cells.
      let y0 = Infinity, y1 = -1, x0 = Infinity, x1 = -1;
      for (let b = 0; b < m.batch; b++) {
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            if (data[(b * h + y) * w + x] === 0) continue;
            y0 = Math.min(y0, y); y1 = Math.max(y1, y); x0 = Math.min(x0, x); x1 = Math.max(x1, x);
          }
        }
      }
      area = y1 < 0 ? [8, 8, 0, 0] : [Math.max(8, y1 - y0 + 1), Math.max(8, x1 - x0 + 1), y0, x0];
    }
  }
  return {
    cond: e.cond, area, strength: e.strength, mask, maskStrength: e.maskStrength,
    sigmaStart: e.startPercent !== undefined ? schedule.percentToSigma(e.startPercent) : undefined,
    sigmaEnd: e.endPercent !== undefined ? schedule.percentToSigma(e.endPercent) : undefined,
    control: e.control, controlApplyToUncond: e.controlApplyToUncond,
  };
}

/** `area_inside`: a lies within b (offsets not smaller, ends not larger). */
function areaInside(a: LatentArea, b: LatentArea): boolean {
  return a[2] >= b[2] && a[3] >= b[3] && a[0] + a[2] <= b[0] + b[2] && a[1] + a[3] <= b[1] + b[3];
}

const sameArea = (a: LatentArea, b: LatentArea) => a.every((v, i) => v === b[i]);

/**
 * `create_cond_with_same_area_if_none`: unless `list` already has an entry with c's area, append c
 * with the text of `list`'s smallest entry enclosing c's area (an entry without area when none has one).
 */
function addTwin(list: ResolvedCond[], c: ResolvedCond): void {
  if (!c.area) return;
  let smallest: ResolvedCond | undefined;
  for (const x of list) {
    if (x.area) {
      if (!areaInside(c.area, x.area)) continue;
      if (!smallest || !smallest.area || smallest.area[0] * smallest.area[1] > x.area[0] * x.area[1]) smallest = x;
    } else if (!smallest) {
      smallest = x;
    }
  }
  if (!smallest || (smallest.area && sameArea(smallest.area, c.area))) return;
  list.push({ ...c, cond: smallest.cond });
}

/**
 * What ComfyUI's `process_conds` makes of the positive and negative lists for a latent of
 * `height` × `width` cells: resolved areas, masks and σ ranges, plus the same-area twins.
 */
export function resolveComfyConds(positive: ComfyConditioning, negative: ComfyConditioning, height: number, width: number, schedule: DiscreteSchedule): { positive: ResolvedCond[]; negative: ResolvedCond[] } {
  const lists = [positive, negative].map((l) => l.map((e) => resolveEntry(e, height, width, schedule)));
  // Dict order: positive's entries twin into negative first, then negative's (twins included) into positive.
  for (const c of [...lists[0]]) addTwin(lists[1], c);
  for (const c of [...lists[1]]) addTwin(lists[0], c);
  return { positive: lists[0], negative: copyControlToUncond(lists[0], lists[1]) };
}

export interface ComfyGuidanceInput {
  readonly model: UNetLike;
  readonly profile: Profile;
  readonly schedule: DiscreteSchedule;
  /** Latent shape [B, C, h, w]. */
  readonly shape: readonly [number, number, number, number];
  readonly positive: ComfyConditioning;
  readonly negative: ComfyConditioning;
  readonly cfgScale: number;
  /** The sampler's σ list (ComfyUI hands it to hooks only; accepted for symmetry with cfgDenoiser). */
  readonly sigmas?: readonly number[];
  /**
   * Most UNet rows per call (ComfyUI splits a batch when free memory is short: it tries all
   * compatible entries, then the first half, third, … of them). Default: no limit.
   */
  readonly maxBatchRows?: number;
  /** Called after each denoiser evaluation (progress accounting). */
  readonly onEval?: () => void;
}

/** One entry prepared for a call (`get_area_and_mult`'s result). */
interface Prepared {
  readonly list: number;
  readonly cond: CondTensor;
  /** Clamped area [h, w, y, x]; the whole latent when the entry has none. */
  readonly area: LatentArea;
  readonly hasArea: boolean;
  readonly control?: ComfyControl;
  /** Weight per input value, [B, C, ah, aw], float32 values. */
  readonly mult: Float32Array;
}

/** CONDCrossAttn.can_concat: equal widths and an lcm at most 4× the shorter context. */
function contextsConcat(a: CondTensor, b: CondTensor): boolean {
  if (a.tokens === b.tokens) return a.width === b.width;
  if (a.width !== b.width) return false;
  return lcm(a.tokens, b.tokens) / Math.min(a.tokens, b.tokens) <= 4;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const lcm = (a: number, b: number): number => (a / gcd(a, b)) * b;

const isClose = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b));

export function comfyGuidedDenoiser(input: ComfyGuidanceInput): GuidedDenoiser {
  const { model, profile, schedule, shape, cfgScale } = input;
  const [B, C, H, W] = shape;
  const n = B * C * H * W;
  const adm = model.admKind;
  const withY = (list: ComfyConditioning, type: 'positive' | 'negative'): ComfyConditioning => (adm ? list.map((e) => ({ ...e, cond: { ...e.cond, y: comfyVector(e, adm, W, H, type) } })) : list);
  const { positive, negative } = resolveComfyConds(withY(input.positive, 'positive'), withY(input.negative, 'negative'), H, W, schedule);
  for (const e of [...positive, ...negative]) {
    if (e.mask && B % Math.min(e.mask.batch, B) !== 0) {
      throw new Error(`a conditioning mask batch of ${e.mask.batch} does not divide the latent batch of ${B}`);
    }
  }
  const maxRows = input.maxBatchRows ?? Infinity;

  /** `get_area_and_mult`: undefined when the entry is inactive at σ. */
  function prepare(e: ResolvedCond, list: number, sigma: number): Prepared | undefined {
    const s = f32(sigma);
    if (e.sigmaStart !== undefined && s > f32(e.sigmaStart)) return undefined;
    if (e.sigmaEnd !== undefined && s < f32(e.sigmaEnd)) return undefined;
    let area: [number, number, number, number] = [H, W, 0, 0];
    if (e.area) {
      const [ah, aw, ay, ax] = e.area;
      area = [Math.min(H - ay, ah), Math.min(W - ax, aw), ay, ax];
      if (area[0] <= 0 || area[1] <= 0 || ay < 0 || ax < 0) {
        throw new Error(`conditioning area [${e.area.join(', ')}] (h, w, y, x in latent cells) lies outside the ${H}×${W} latent`);
      }
    }
    const [ah, aw, ay, ax] = area;
    const plane = ah * aw;
    const mult = new Float32Array(B * C * plane);
    const strength = f32(e.strength ?? 1);
    if (e.mask) {
      const M = Math.min(e.mask.batch, B);
      const ms = f32(e.maskStrength ?? 1);
      for (let b = 0; b < B; b++) {
        const src = (b % M) * H * W;
        for (let y = 0; y < ah; y++) {
          for (let x = 0; x < aw; x++) {
            const v = f32(f32(e.mask.data[src + (ay + y) * W + ax + x] * ms) * strength);
            for (let c = 0; c < C; c++) mult[(b * C + c) * plane + y * aw + x] = v;
          }
        }
      }
    } else {
      mult.fill(strength);
      if (e.area) feather(mult, B * C, ah, aw, ay, ax);
    }
    return { list, cond: e.cond, area, hasArea: e.area !== undefined, mult, control: e.control };
  }

  /** The fade at inner area edges: the t-th cell from an edge is scaled by (t + 1)/rr, rr = min(8, size // 4). */
  function feather(mult: Float32Array, planes: number, ah: number, aw: number, ay: number, ax: number): void {
    const scaleRow = (y: number, k: number) => {
      for (let p = 0; p < planes; p++) for (let x = 0; x < aw; x++) mult[p * ah * aw + y * aw + x] = f32(mult[p * ah * aw + y * aw + x] * k);
    };
    const scaleCol = (x: number, k: number) => {
      for (let p = 0; p < planes; p++) for (let y = 0; y < ah; y++) mult[p * ah * aw + y * aw + x] = f32(mult[p * ah * aw + y * aw + x] * k);
    };
    const axes = [[ah, ay, H, scaleRow], [aw, ax, W, scaleCol]] as const;
    for (const [size, offset, full, scale] of axes) {
      const rr = Math.min(8, Math.floor(size / 4));
      if (offset !== 0) for (let t = 0; t < rr; t++) scale(t, f32((1.0 / rr) * (t + 1)));
      if (size + offset < full) for (let t = 0; t < rr; t++) scale(size - 1 - t, f32((1.0 / rr) * (t + 1)));
    }
  }

  /** `calc_cond_batch` for the lists given (undefined = not evaluated, prediction 0). */
  async function calcCondBatch(lists: readonly (readonly ResolvedCond[] | undefined)[], x: Float64Array, sigma: number): Promise<Float64Array[]> {
    const outs = lists.map(() => new Float64Array(n));
    const counts = lists.map(() => new Float64Array(n).fill(f32(1e-37)));
    const toRun: Prepared[] = [];
    lists.forEach((l, i) => l?.forEach((e) => {
      const p = prepare(e, i, sigma);
      if (p) toRun.push(p);
    }));
    const t = profile.timestep(schedule, sigma);
    while (toRun.length > 0) {
      const first = toRun[0];
      const compatible: number[] = [];
      toRun.forEach((p, i) => {
        if (p.area[0] === first.area[0] && p.area[1] === first.area[1] && p.control === first.control && contextsConcat(p.cond, first.cond)) compatible.push(i);
      });
      compatible.reverse();
      let chosen = compatible.slice(0, 1);
      for (let k = 1; k <= compatible.length; k++) {
        const part = compatible.slice(0, Math.floor(compatible.length / k));
        if (part.length * B <= maxRows) {
          chosen = part;
          break;
        }
      }
      // Indices descend, so popping in this order leaves the others in place.
      const batch = chosen.map((i) => toRun.splice(i, 1)[0]);
      await runBatch(batch, x, sigma, t, outs, counts);
    }
    for (let i = 0; i < outs.length; i++) {
      const o = outs[i];
      const c = counts[i];
      for (let j = 0; j < n; j++) o[j] /= c[j];
    }
    return outs;
  }

  async function runBatch(batch: readonly Prepared[], x: Float64Array, sigma: number, t: number, outs: Float64Array[], counts: Float64Array[]): Promise<void> {
    const [ah, aw] = batch[0].area;
    const plane = ah * aw;
    const per = C * plane;
    const rows = batch.length * B;
    // Cropped (unscaled) inputs of every entry, then the UNet's scaled input.
    const crops = batch.map((p) => {
      const [, , ay, ax] = p.area;
      const crop = new Float64Array(B * per);
      for (let bc = 0; bc < B * C; bc++) {
        for (let y = 0; y < ah; y++) {
          const src = bc * H * W + (ay + y) * W + ax;
          crop.set(x.subarray(src, src + aw), bc * plane + y * aw);
        }
      }
      return crop;
    });
    const xin = new Float32Array(rows * per);
    crops.forEach((crop, k) => {
      for (let i = 0; i < crop.length; i++) xin[k * crop.length + i] = profile.scaleInput(crop[i], sigma);
    });
    // CONDCrossAttn.concat: every context repeated to the lcm of the lengths, each repeated to the batch.
    const width = batch[0].cond.width;
    const tokens = batch.reduce((acc, p) => lcm(acc, p.cond.tokens), batch[0].cond.tokens);
    const ctxPer = tokens * width;
    const context = new Float32Array(rows * ctxPer);
    batch.forEach((p, k) => {
      const row = tile(p.cond.data, 1, p.cond.tokens, width, tokens / p.cond.tokens);
      for (let b = 0; b < B; b++) context.set(row, (k * B + b) * ctxPer);
    });
    let y: Tensor | undefined;
    if (adm) {
      const yw = batch[0].cond.y!.length;
      const ys = new Float32Array(rows * yw);
      batch.forEach((p, k) => { for (let b = 0; b < B; b++) ys.set(p.cond.y!, (k * B + b) * yw); });
      y = Tensor.f32([rows, yw], ys);
    }
    const xt = Tensor.f32([rows, C, ah, aw], xin);
    const ctx = Tensor.f32([rows, tokens, width], context);
    const unit = batch[0].control;
    const control = unit ? await comfyControlResiduals(unit, { x: xt, timestep: t, context: ctx, sigma, perEntry: B, schedule, heads: model.unetHeads }) : undefined;
    const result = await model.predict(xt, Tensor.f32([rows], new Float32Array(rows).fill(t)), ctx, y, control);
    const out = result.toFloat32Array();
    batch.forEach((p, k) => {
      const d = denoisedFromOutput(model.prediction, crops[k], 0, sigma, out, k * B * per, B * per);
      const o = outs[p.list];
      const cnt = counts[p.list];
      const [, , ay, ax] = p.area;
      for (let bc = 0; bc < B * C; bc++) {
        for (let y = 0; y < ah; y++) {
          for (let xx = 0; xx < aw; xx++) {
            const src = bc * plane + y * aw + xx;
            const dst = bc * H * W + (ay + y) * W + ax + xx;
            o[dst] += d[src] * p.mult[src];
            cnt[dst] += p.mult[src];
          }
        }
      }
    });
  }

  /** `cfg_function` without model_options hooks. */
  const cfg = (c: Float64Array, u: Float64Array): Float64Array => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = u[i] + (c[i] - u[i]) * cfgScale;
    return out;
  };

  async function withUncond(x: Float64Array, sigma: number): Promise<GuidedPrediction> {
    const [c, u] = await calcCondBatch([positive, negative], x, sigma);
    input.onEval?.();
    return { denoised: cfg(c, u), uncond: u };
  }

  const denoise = async (x: Float64Array, sigma: number): Promise<Float64Array> => {
    if (profile.skipUncondAtCfg1 && isClose(cfgScale, 1)) {
      // sampling_function: the negative list is dropped, its prediction is 0.
      const [c, u] = await calcCondBatch([positive, undefined], x, sigma);
      input.onEval?.();
      return cfg(c, u);
    }
    return (await withUncond(x, sigma)).denoised;
  };
  return Object.assign(denoise, { withUncond });
}
