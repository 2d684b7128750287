// ControlNet as ComfyUI applies it (comfy/controlnet.py, nodes.py ControlNetApply(Advanced)): a unit
// is a ControlNet with its hint, strength and start/end percent, chained to the unit that was on the
// conditioning entry before it. At each model call every unit of the chain whose σ window holds the
// call's σ computes residuals from the same input, scales them by its strength, and the chain's
// residuals are summed position by position.
import type { ControlNet } from '../models/controlnet-model.js';
import type { DiscreteSchedule } from '../sampling/discrete.js';
import { Tensor } from '../tensor/tensor.js';
import type { UNetConfig } from '../models/unet.js';
import { roundHalfEven } from '../sampling/schedules.js';

/** A control image as ComfyUI's IMAGE holds it: [batch, height, width, channels] in 0…1. */
export interface ControlImage {
  readonly data: Float32Array;
  readonly batch: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
}

/** One applied ControlNet (ComfyUI's `control_net.copy().set_cond_hint(…)`), possibly chained. */
export interface ComfyControl {
  readonly net: ControlNet;
  readonly image: ControlImage;
  readonly strength: number;
  readonly startPercent: number;
  readonly endPercent: number;
  readonly previous?: ComfyControl;
}

const f32 = Math.fround;


/**
 * comfy.utils.common_upscale(hint, width, height, "nearest-exact", "center"): a centre crop to the
 * target's aspect ratio, then nearest-exact sampling (source index ⌊(dst + ½)·in/out⌋). Returns
 * [batch, channels, height, width] from the BHWC image.
 */
export function resizeHint(img: ControlImage, width: number, height: number): Float32Array {
  const { batch: B, height: ih, width: iw, channels: C } = img;
  const oldAspect = iw / ih;
  const newAspect = width / height;
  let x0 = 0;
  let y0 = 0;
  if (oldAspect > newAspect) x0 = roundHalfEven((iw - iw * (newAspect / oldAspect)) / 2);
  else if (oldAspect < newAspect) y0 = roundHalfEven((ih - ih * (oldAspect / newAspect)) / 2);
  const ch = ih - 2 * y0;
  const cw = iw - 2 * x0;
  const index = (dst: number, inSize: number, outSize: number) => Math.min(Math.floor(f32((dst + 0.5) * f32(inSize / outSize))), inSize - 1);
  const rows = Array.from({ length: height }, (_, y) => y0 + index(y, ch, height));
  const cols = Array.from({ length: width }, (_, x) => x0 + index(x, cw, width));
  const out = new Float32Array(B * C * height * width);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const o = (b * C + c) * height * width;
      for (let y = 0; y < height; y++) {
        const src = (b * ih + rows[y]) * iw;
        for (let x = 0; x < width; x++) out[o + y * width + x] = img.data[(src + cols[x]) * C + c];
      }
    }
  }
  return out;
}

/** The input a ControlNet call gets: the UNet's batch at one σ. */
export interface ControlCall {
  /** The UNet's scaled input [rows, C, h, w]. */
  readonly x: Tensor;
  /** The UNet's timestep for the call (ComfyUI: `model_sampling.timestep(σ)`). */
  readonly timestep: number;
  readonly context: Tensor;
  readonly sigma: number;
  /** Rows per conditioning entry in the batch (the hint is repeated per entry's rows). */
  readonly perEntry: number;
  readonly schedule: DiscreteSchedule;
  /** The controlled UNet's heads, which the ControlNet shares unless loaded with its own. */
  readonly heads?: UNetConfig['heads'];
}

const hintCache = new WeakMap<ComfyControl, Map<string, Float32Array>>();

/** The hint at 8× the call's latent size, repeated to its rows (`broadcast_image_to`). */
function hintFor(unit: ComfyControl, rows: number, perEntry: number, h: number, w: number): Tensor {
  let cache = hintCache.get(unit);
  if (!cache) hintCache.set(unit, (cache = new Map()));
  const key = `${h}x${w}`;
  let resized = cache.get(key);
  if (!resized) cache.set(key, (resized = resizeHint(unit.image, w * 8, h * 8)));
  const C = unit.image.channels;
  const per = C * h * 8 * w * 8;
  const out = new Float32Array(rows * per);
  for (let r = 0; r < rows; r++) {
    const b = (r % perEntry) % unit.image.batch;
    out.set(resized.subarray(b * per, (b + 1) * per), r * per);
  }
  return Tensor.f32([rows, C, h * 8, w * 8], out);
}

/** `ControlBase.pre_run`'s σ window: control applies while σ_end ≤ σ ≤ σ_start. */
function active(unit: ComfyControl, sigma: number, schedule: DiscreteSchedule): boolean {
  const s = f32(sigma);
  return !(s > f32(schedule.percentToSigma(unit.startPercent)) || s < f32(schedule.percentToSigma(unit.endPercent)));
}

/**
 * `get_control` down the chain: the residuals every active unit adds (strength applied), summed;
 * undefined when no unit is active at this σ.
 */
export async function comfyControlResiduals(unit: ComfyControl, call: ControlCall): Promise<Tensor[] | undefined> {
  const prev = unit.previous ? await comfyControlResiduals(unit.previous, call) : undefined;
  if (!active(unit, call.sigma, call.schedule)) return prev;
  const [rows, , h, w] = call.x.shape;
  const hint = hintFor(unit, rows, call.perEntry, h, w);
  const t = Tensor.f32([rows], new Float32Array(rows).fill(call.timestep));
  const own = await unit.net.residuals(call.x, hint, t, call.context, call.heads);
  const strength = f32(unit.strength);
  return own.map((r, i) => {
    const v = r.toFloat32Array();
    const p = prev?.[i].toFloat32Array();
    const out = new Float32Array(v.length);
    for (let j = 0; j < v.length; j++) out[j] = p ? f32(p[j] + f32(v[j] * strength)) : f32(v[j] * strength);
    return Tensor.f32(r.shape, out);
  });
}

/** The units of a chain, first applied first. */
export function controlChain(unit: ComfyControl | undefined): ComfyControl[] {
  const out: ComfyControl[] = [];
  for (let u = unit; u; u = u.previous) out.unshift(u);
  return out;
}
