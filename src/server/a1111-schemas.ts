// Request models of A1111's `/sdapi/v1` routes as zod schemas that behave like its FastAPI/pydantic 1
// models: every field optional (null allowed), unknown keys dropped, pydantic's coercions ("20" → 20,
// 20.7 → 20, "true" → true), and its 422 body — one `{loc, msg, type}` per bad field — for the rest.
// latentkit adds bounds A1111 lacks (negative sizes, absurd step counts), reported in the same shape.
import { z } from 'zod';

type PyType = 'int' | 'float' | 'bool' | 'str' | 'list' | 'dict' | 'any';

/** pydantic 1's message and type for a value of the wrong type. */
const TYPE_ERRORS: Record<Exclude<PyType, 'any'>, readonly [string, string]> = {
  int: ['value is not a valid integer', 'type_error.integer'],
  float: ['value is not a valid float', 'type_error.float'],
  bool: ['value could not be parsed to a boolean', 'type_error.bool'],
  str: ['str type expected', 'type_error.str'],
  list: ['value is not a valid list', 'type_error.list'],
  dict: ['value is not a valid dict', 'type_error.dict'],
};

const INT_TEXT = /^\s*[+-]?\d+\s*$/;
const FLOAT_TEXT = /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i;
const TRUE = new Set(['1', 'on', 't', 'true', 'y', 'yes']);
const FALSE = new Set(['0', 'off', 'f', 'false', 'n', 'no']);

// Each coercion returns the converted value, or the input unchanged so the schema reports it.
function toInt(v: unknown): unknown {
  if (typeof v === 'boolean') return Number(v);
  if (typeof v === 'number' && Number.isFinite(v)) return Math.trunc(v);
  if (typeof v === 'string' && INT_TEXT.test(v)) return Number(v);
  return v;
}
function toFloat(v: unknown): unknown {
  if (typeof v === 'boolean') return Number(v);
  if (typeof v === 'string' && FLOAT_TEXT.test(v)) return Number(v);
  return v;
}
function toBool(v: unknown): unknown {
  if (v === 0 || v === 1) return v === 1;
  if (typeof v === 'string') {
    const k = v.trim().toLowerCase();
    if (TRUE.has(k)) return true;
    if (FALSE.has(k)) return false;
  }
  return v;
}
function toStr(v: unknown): unknown {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return v;
}

interface Bounds { readonly ge?: number; readonly le?: number }

function field(type: PyType, bounds: Bounds = {}): z.ZodType {
  switch (type) {
    case 'int': {
      let n = z.number({ error: 'int' }).int({ error: 'int' });
      if (bounds.ge !== undefined) n = n.gte(bounds.ge);
      if (bounds.le !== undefined) n = n.lte(bounds.le);
      return z.preprocess(toInt, n.nullable().optional());
    }
    case 'float': {
      let n = z.number({ error: 'float' }).refine(Number.isFinite, { error: 'float' });
      if (bounds.ge !== undefined) n = n.refine((x) => x >= bounds.ge!, { error: `ge:${bounds.ge}` });
      if (bounds.le !== undefined) n = n.refine((x) => x <= bounds.le!, { error: `le:${bounds.le}` });
      return z.preprocess(toFloat, n.nullable().optional());
    }
    case 'bool': return z.preprocess(toBool, z.boolean({ error: 'bool' }).nullable().optional());
    case 'str': return z.preprocess(toStr, z.string({ error: 'str' }).nullable().optional());
    case 'list': return z.array(z.unknown(), { error: 'list' }).nullable().optional();
    case 'dict': return z.record(z.string(), z.unknown(), { error: 'dict' }).nullable().optional();
    case 'any': return z.unknown();
  }
}

type FieldSpec = readonly [PyType, unknown, Bounds?];

/** latentkit's bounds: what the pipelines accept (steps ≤ 1000, sizes ≤ 8192, batches ≤ 64). */
const SIZE: Bounds = { ge: 1, le: 8192 };

/** `StableDiffusionProcessing`'s fields (A1111 1.10), with their defaults. */
const COMMON: Record<string, FieldSpec> = {
  prompt: ['str', ''], negative_prompt: ['str', ''], styles: ['list', null], seed: ['int', -1], subseed: ['int', -1],
  subseed_strength: ['float', 0], seed_resize_from_h: ['int', -1], seed_resize_from_w: ['int', -1],
  sampler_name: ['str', null], scheduler: ['str', null], batch_size: ['int', 1, { ge: 1, le: 64 }], n_iter: ['int', 1, { ge: 1, le: 100 }],
  steps: ['int', 50, { ge: 1, le: 1000 }], cfg_scale: ['float', 7.0, { ge: 0, le: 100 }], width: ['int', 512, SIZE], height: ['int', 512, SIZE],
  restore_faces: ['bool', null], tiling: ['bool', null], do_not_save_samples: ['bool', false], do_not_save_grid: ['bool', false],
  eta: ['float', null], denoising_strength: ['float', null, { ge: 0, le: 1 }], s_min_uncond: ['float', null], s_churn: ['float', null],
  s_tmax: ['float', null], s_tmin: ['float', null], s_noise: ['float', null], override_settings: ['dict', null],
  override_settings_restore_afterwards: ['bool', true], refiner_checkpoint: ['str', null], refiner_switch_at: ['float', null],
  disable_extra_networks: ['bool', false], firstpass_image: ['str', null], comments: ['dict', null],
  sampler_index: ['str', 'Euler'], script_name: ['str', null], script_args: ['list', []], send_images: ['bool', true],
  save_images: ['bool', false], alwayson_scripts: ['dict', {}], infotext: ['str', null], force_task_id: ['str', null],
};

const TXT2IMG: Record<string, FieldSpec> = {
  ...COMMON,
  enable_hr: ['bool', false], denoising_strength: ['float', 0.75, { ge: 0, le: 1 }], firstphase_width: ['int', 0], firstphase_height: ['int', 0],
  hr_scale: ['float', 2.0, { ge: 1, le: 8 }], hr_upscaler: ['str', null], hr_second_pass_steps: ['int', 0, { ge: 0, le: 1000 }],
  hr_resize_x: ['int', 0, { ge: 0, le: 8192 }], hr_resize_y: ['int', 0, { ge: 0, le: 8192 }], hr_checkpoint_name: ['str', null],
  hr_sampler_name: ['str', null], hr_scheduler: ['str', null], hr_prompt: ['str', ''], hr_negative_prompt: ['str', ''],
};

const IMG2IMG: Record<string, FieldSpec> = {
  ...COMMON,
  init_images: ['list', null], resize_mode: ['int', 0, { ge: 0, le: 3 }], denoising_strength: ['float', 0.75, { ge: 0, le: 1 }],
  image_cfg_scale: ['float', null], mask: ['str', null], mask_blur_x: ['int', 4, { ge: 0, le: 256 }], mask_blur_y: ['int', 4, { ge: 0, le: 256 }],
  mask_blur: ['int', null, { ge: 0, le: 256 }], mask_round: ['bool', true], inpainting_fill: ['int', 0, { ge: 0, le: 3 }],
  inpaint_full_res: ['bool', true], inpaint_full_res_padding: ['int', 0, { ge: 0, le: 4096 }], inpainting_mask_invert: ['int', 0, { ge: 0, le: 1 }],
  initial_noise_multiplier: ['float', null], latent_mask: ['str', null], include_init_images: ['bool', false],
};

const EXTRAS_COMMON: Record<string, FieldSpec> = {
  resize_mode: ['int', 0, { ge: 0, le: 1 }], show_extras_results: ['bool', true], gfpgan_visibility: ['float', 0],
  codeformer_visibility: ['float', 0], codeformer_weight: ['float', 0], upscaling_resize: ['float', 2, { ge: 0.01, le: 8 }],
  upscaling_resize_w: ['int', 512, SIZE], upscaling_resize_h: ['int', 512, SIZE], upscaling_crop: ['bool', true],
  upscaler_1: ['str', 'None'], upscaler_2: ['str', 'None'], extras_upscaler_2_visibility: ['float', 0, { ge: 0, le: 1 }],
  upscale_first: ['bool', false],
};

const EXTRA_SINGLE: Record<string, FieldSpec> = { ...EXTRAS_COMMON, image: ['str', ''] };
const EXTRA_BATCH: Record<string, FieldSpec> = { ...EXTRAS_COMMON, imageList: ['list', undefined] };
const PNG_INFO: Record<string, FieldSpec> = { image: ['str', undefined] };
const INTERROGATE: Record<string, FieldSpec> = { image: ['str', ''], model: ['str', 'clip'] };

/** A1111 / FastAPI 422 entry. */
export interface PydanticError {
  loc: (string | number)[];
  msg: string;
  type: string;
  ctx?: Record<string, unknown>;
}

export interface Model<T> {
  readonly schema: z.ZodType;
  readonly defaults: Readonly<Record<string, unknown>>;
  /** Fields without a default: missing → `field required`. */
  readonly required: readonly string[];
  readonly parse: (body: unknown) => { ok: true; value: T } | { ok: false; errors: PydanticError[] };
}

function issueToError(issue: z.core.$ZodIssue, types: Record<string, FieldSpec>): PydanticError {
  const key = String(issue.path[0] ?? '');
  const type = types[key]?.[0];
  const loc = ['body', ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))];
  const message = issue.message;
  if (message.startsWith('ge:') || (issue.code === 'too_small')) {
    const limit = message.startsWith('ge:') ? Number(message.slice(3)) : Number((issue as { minimum?: number | bigint }).minimum);
    return { loc, msg: `ensure this value is greater than or equal to ${limit}`, type: 'value_error.number.not_ge', ctx: { limit_value: limit } };
  }
  if (message.startsWith('le:') || (issue.code === 'too_big')) {
    const limit = message.startsWith('le:') ? Number(message.slice(3)) : Number((issue as { maximum?: number | bigint }).maximum);
    return { loc, msg: `ensure this value is less than or equal to ${limit}`, type: 'value_error.number.not_le', ctx: { limit_value: limit } };
  }
  const kind = (type && type !== 'any' ? type : message) as keyof typeof TYPE_ERRORS;
  const [msg, t] = TYPE_ERRORS[kind] ?? [message, 'value_error'];
  return { loc, msg, type: t };
}

function model<T>(fields: Record<string, FieldSpec>): Model<T> {
  const shape: Record<string, z.ZodType> = {};
  const defaults: Record<string, unknown> = {};
  const required: string[] = [];
  for (const [k, [type, def, bounds]] of Object.entries(fields)) {
    shape[k] = field(type, bounds);
    if (def === undefined) required.push(k);
    else defaults[k] = def;
  }
  const schema = z.object(shape);
  return {
    schema, defaults, required,
    parse(body) {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        return { ok: false, errors: [{ loc: ['body'], msg: 'value is not a valid dict', type: 'type_error.dict' }] };
      }
      const errors: PydanticError[] = [];
      for (const k of required) {
        if ((body as Record<string, unknown>)[k] === undefined) errors.push({ loc: ['body', k], msg: 'field required', type: 'value_error.missing' });
      }
      const r = schema.safeParse(body);
      if (!r.success) errors.push(...r.error.issues.map((i) => issueToError(i, fields)));
      if (errors.length) return { ok: false, errors };
      // pydantic keeps explicit nulls; absent keys take the default
      const value: Record<string, unknown> = { ...defaults };
      for (const [k, v] of Object.entries(r.data as Record<string, unknown>)) if (v !== undefined) value[k] = v;
      return { ok: true, value: value as T };
    },
  };
}

type Nullable<T> = { [K in keyof T]: T[K] | null };

export type Txt2ImgRequest = Nullable<{
  prompt: string; negative_prompt: string; styles: unknown[]; seed: number; subseed: number; subseed_strength: number;
  seed_resize_from_h: number; seed_resize_from_w: number; sampler_name: string; scheduler: string; batch_size: number;
  n_iter: number; steps: number; cfg_scale: number; width: number; height: number; restore_faces: boolean; tiling: boolean;
  eta: number; denoising_strength: number; s_noise: number; override_settings: Record<string, unknown>;
  override_settings_restore_afterwards: boolean; sampler_index: string; script_name: string; script_args: unknown[];
  send_images: boolean; save_images: boolean; alwayson_scripts: Record<string, unknown>; infotext: string;
  enable_hr: boolean; hr_scale: number; hr_upscaler: string; hr_second_pass_steps: number; hr_resize_x: number;
  hr_resize_y: number; hr_sampler_name: string; hr_scheduler: string; hr_prompt: string; hr_negative_prompt: string;
  disable_extra_networks: boolean;
}>;

export type Img2ImgRequest = Omit<Txt2ImgRequest, 'enable_hr' | 'hr_scale' | 'hr_upscaler' | 'hr_second_pass_steps' | 'hr_resize_x' | 'hr_resize_y' | 'hr_sampler_name' | 'hr_scheduler' | 'hr_prompt' | 'hr_negative_prompt'> & Nullable<{
  init_images: unknown[]; resize_mode: number; mask: string; mask_blur_x: number; mask_blur_y: number; mask_blur: number;
  inpainting_fill: number; inpaint_full_res: boolean; inpaint_full_res_padding: number; inpainting_mask_invert: number;
  include_init_images: boolean;
}>;

export type ExtrasRequest = Nullable<{
  resize_mode: number; upscaling_resize: number; upscaling_resize_w: number; upscaling_resize_h: number; upscaling_crop: boolean;
  upscaler_1: string; upscaler_2: string; extras_upscaler_2_visibility: number; upscale_first: boolean; show_extras_results: boolean;
}>;
export type ExtraSingleRequest = ExtrasRequest & { image: string | null };
export type ExtraBatchRequest = ExtrasRequest & { imageList: unknown[] };

export const txt2imgModel = model<Txt2ImgRequest>(TXT2IMG);
export const img2imgModel = model<Img2ImgRequest>(IMG2IMG);
export const extraSingleModel = model<ExtraSingleRequest>(EXTRA_SINGLE);
export const extraBatchModel = model<ExtraBatchRequest>(EXTRA_BATCH);
export const pngInfoModel = model<{ image: string }>(PNG_INFO);
export const interrogateModel = model<{ image: string; model: string }>(INTERROGATE);

/** FastAPI's answer to a body that is not JSON (Python's json error text for the first bad character). */
export function jsonDecodeError(body: string): PydanticError {
  let pos = 0;
  while (pos < body.length && /\s/.test(body[pos])) pos++;
  const before = body.slice(0, pos);
  const lineno = before.split('\n').length;
  const colno = pos - before.lastIndexOf('\n');
  return {
    loc: ['body', pos], msg: `Expecting value: line ${lineno} column ${colno} (char ${pos})`, type: 'value_error.jsondecode',
    ctx: { msg: 'Expecting value', doc: body.length > 1000 ? `${body.slice(0, 1000)}…` : body, pos, lineno, colno },
  };
}
