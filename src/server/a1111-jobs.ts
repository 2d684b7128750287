// Runs A1111 API requests (queue items of kind 'a1111' / 'openai') on the A1111-style pipelines under
// the `a1111` profile: txt2img with hires fix, img2img / inpainting, the SD upscale script, extras.
// Models come from the engine's resource cache under the keys the ComfyUI loaders use, so a
// checkpoint loaded for a ComfyUI prompt is reused here and the other way round.
import { mkdir, readdir, stat } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import sharp from 'sharp';
import { loadCheckpoint } from '../models/checkpoint.js';
import type { StableDiffusionModel } from '../models/sd-model.js';
import { loadRgb, type RasterImage, type ResizeMode } from '../pipelines/image-input.js';
import { encodePng, type GeneratedImage } from '../pipelines/image-output.js';
import { imageGrid } from '../pipelines/grid.js';
import { img2img } from '../pipelines/img2img.js';
import { inpaint, type MaskedContent } from '../pipelines/inpaint.js';
import { upscalerName } from '../pipelines/hires.js';
import { sdUpscale, upscaleImage, UpscalerModel, type RgbImage } from '../pipelines/upscale.js';
import { SamplingStopped } from '../pipelines/sample.js';
import { txt2img, type Progress, type Txt2ImgOptions } from '../pipelines/txt2img.js';
import { parseSamplerName, toA1111Names } from '../sampling/names.js';
import { tokenizerFor } from '../text/tokenizer-cache.js';
import type { ResourceCache } from '../workflow/resource-cache.js';
import { writeNewFile } from '../workflow/files.js';
import { decodeImage, httpException, runtimeError } from './a1111-http.js';
import { applyStyle, type A1111Catalog, type CheckpointEntry } from './a1111-models.js';
import { jobTimestamp, type ProgressState } from './a1111-progress.js';
import type { ExtraBatchRequest, ExtraSingleRequest, ExtrasRequest, Img2ImgRequest, Txt2ImgRequest } from './a1111-schemas.js';
import type { ServerHost } from './host.js';
import type { JobControl } from './runner.js';

export const A1111_VERSION = 'v1.10.1';

export type A1111Payload =
  | { route: 'txt2img'; body: Txt2ImgRequest }
  | { route: 'img2img'; body: Img2ImgRequest }
  | { route: 'extra-single-image'; body: ExtraSingleRequest }
  | { route: 'extra-batch-images'; body: ExtraBatchRequest };

export interface A1111Deps {
  readonly host: ServerHost;
  readonly catalog: A1111Catalog;
  readonly resources: ResourceCache;
  readonly progress: ProgressState;
}

export interface GenerationAnswer {
  images: string[];
  parameters: Record<string, unknown>;
  info: string;
  /** The PNGs themselves, for the OpenAI routes (not sent by the A1111 routes). */
  pngs: Buffer[];
}

const fileSize = async (path: string) => (await stat(path)).size;

async function loadModel(deps: A1111Deps, ckpt: CheckpointEntry): Promise<StableDiffusionModel> {
  const config = ckpt.config ?? undefined;
  return deps.resources.get(`checkpoint|${ckpt.filename}|${config ?? ''}`, await fileSize(ckpt.filename), () => loadCheckpoint(ckpt.filename, { config }));
}


function randomSeed(): number {
  return Math.floor(Math.random() * 4294967294);
}

/**
 * A1111's sampler choice: `sampler_name`, else `sampler_index`; a trailing scheduler label is split off;
 * an unknown sampler falls back to the first one (DPM++ 2M), an unknown scheduler to Automatic.
 */
export function chooseSampler(name: string | null | undefined, scheduler: string | null | undefined): { sampler: string; scheduler: string; label: string; warning?: string } {
  const wanted = name ?? 'Euler';
  for (const [n, s] of [[wanted, scheduler], [wanted, undefined]] as const) {
    try {
      const c = parseSamplerName(n, s ?? undefined);
      return { ...c, label: toA1111Names(c.sampler, c.scheduler).sampler };
    } catch {
      // try the next reading
    }
  }
  const c = parseSamplerName('DPM++ 2M');
  return { ...c, label: 'DPM++ 2M', warning: `Sampler Scheduler autocorrection: "${wanted}" -> "DPM++ 2M"` };
}

const snap8 = (v: number) => Math.max(8, Math.floor(v / 8) * 8);

function rngOf(source: unknown): 'gpu' | 'cpu' | 'nv' {
  const s = String(source ?? 'GPU').toLowerCase();
  return s === 'cpu' ? 'cpu' : s === 'nv' ? 'nv' : 'gpu';
}

/** Settings for this request: the saved options overlaid with `override_settings`. */
function setting(deps: A1111Deps, overrides: Record<string, unknown> | null | undefined, key: string): unknown {
  return overrides && key in overrides ? overrides[key] : deps.catalog.option(key);
}

async function stylesApplied(deps: A1111Deps, names: unknown[] | null, prompt: string, negative: string): Promise<{ prompt: string; negative: string }> {
  if (!names?.length) return { prompt, negative };
  const all = await deps.catalog.styles();
  for (const n of names) {
    const s = all.find((x) => x.name === n);
    if (!s) continue;
    prompt = applyStyle(s.prompt, prompt);
    negative = applyStyle(s.negative_prompt, negative);
  }
  return { prompt, negative };
}

/** The options shared by txt2img and img2img, and what `info` reports. */
async function commonSetup(deps: A1111Deps, r: Txt2ImgRequest | Img2ImgRequest) {
  const overrides = r.override_settings ?? undefined;
  const ckpt = await deps.catalog.current(overrides?.sd_model_checkpoint);
  const model = await loadModel(deps, ckpt);
  const tokenizer = await tokenizerFor(ckpt.filename);
  const { prompt, negative } = await stylesApplied(deps, r.styles, r.prompt ?? '', r.negative_prompt ?? '');
  const s = chooseSampler(r.sampler_name ?? r.sampler_index, r.scheduler);
  const seed = r.seed === null || r.seed < 0 ? randomSeed() : r.seed;
  const subseed = r.subseed === null || r.subseed < 0 ? randomSeed() : r.subseed;
  const strength = r.subseed_strength ?? 0;
  const clipSkip = Math.min(12, Math.max(1, Number(setting(deps, overrides, 'CLIP_stop_at_last_layers') ?? 1) || 1));
  const ensd = Number(setting(deps, overrides, 'eta_noise_seed_delta') ?? 0) || 0;
  const resizeFrom = (r.seed_resize_from_w ?? 0) > 0 && (r.seed_resize_from_h ?? 0) > 0 ? { width: r.seed_resize_from_w!, height: r.seed_resize_from_h! } : undefined;
  const base: Omit<Txt2ImgOptions, 'seed' | 'onProgress'> = {
    prompt, negativePrompt: negative, steps: r.steps ?? 50, cfgScale: r.cfg_scale ?? 7, sampler: s.sampler, scheduler: s.scheduler,
    profile: 'a1111', rng: rngOf(setting(deps, overrides, 'randn_source')), batchSize: r.batch_size ?? 1, clipSkip, pythonFloats: true,
    eta: r.eta ?? undefined, sNoise: r.s_noise ?? undefined, etaNoiseSeedDelta: ensd || undefined, seedResizeFrom: resizeFrom,
    tokenizer, loraDirs: r.disable_extra_networks ? [] : deps.host.modelDirs('loras'),
    hypernetworkDirs: r.disable_extra_networks ? [] : deps.host.modelDirs('hypernetworks'), embeddings: deps.host.modelDirs('embeddings'),
  };
  return { ckpt, model, base, prompt, negative, seed, subseed, strength, sampler: s, clipSkip };
}

type Setup = Awaited<ReturnType<typeof commonSetup>>;

/**
 * `n_iter` batches of `batch_size`: image i of the run has seed `seed + i` (or `seed` with variation,
 * whose subseed is `subseed + i`). Interrupt and skip end the current batch's sampling early and keep
 * its image of the state reached (A1111 decodes its last latent); interrupt then ends the run.
 */
async function iterate(deps: A1111Deps, control: JobControl, job: string, nIter: number, setup: Setup, run: (seed: number, subseed: number, onProgress: (p: Progress) => Promise<void>, stopped: () => boolean) => Promise<GeneratedImage[]>): Promise<GeneratedImage[]> {
  const batch = setup.base.batchSize ?? 1;
  const out: GeneratedImage[] = [];
  deps.progress.begin(job, nIter);
  try {
    for (let it = 0; it < nIter && !control.interrupted; it++) {
      deps.progress.nextJob(it);
      control.skipped = false;
      let stopped = false;
      const onProgress = async (p: Progress) => {
        deps.progress.step(p);
        // a turn of the event loop per step: /progress and /interrupt are answered while sampling
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (control.interrupted || control.skipped) {
          deps.progress.interrupted = control.interrupted;
          deps.progress.skipped = control.skipped;
          stopped = true;
          throw new SamplingStopped();
        }
      };
      const seed = setup.strength > 0 ? setup.seed : setup.seed + it * batch;
      out.push(...await run(seed, setup.subseed + it * batch, onProgress, () => stopped));
    }
  } finally {
    deps.progress.end();
  }
  return out;
}

/**
 * A1111's process_images end: with `save_images` (API runs skip the grid otherwise) and more than one
 * image, the grid goes first in the answer (`return_grid`) and to `<kind>-grids/` (`grid_save`).
 */
async function gridFirst(deps: A1111Deps, r: Txt2ImgRequest | Img2ImgRequest, kind: 'txt2img' | 'img2img', images: GeneratedImage[]): Promise<GeneratedImage | undefined> {
  const opt = (k: string) => setting(deps, r.override_settings, k);
  if (!r.save_images || images.length === 0 || (images.length < 2 && opt('grid_only_if_multiple') !== false)) return undefined;
  const returned = opt('return_grid') !== false;
  const saved = opt('grid_save') !== false;
  if (!returned && !saved) return undefined;
  const grid = imageGrid(images, { nRows: Number(opt('n_rows') ?? -1), batchSize: r.batch_size ?? 1, preventEmptySpots: opt('grid_prevent_empty_spots') === true });
  const parameters = images[0].parameters;
  const png = await encodePng(grid.rgb, grid.width, grid.height, parameters);
  if (saved) {
    const dir = `${deps.host.folders.output}/${kind}-grids`;
    await mkdir(dir, { recursive: true });
    let n = (await readdir(dir)).length;
    while (!await writeNewFile(dir, `grid-${String(n).padStart(4, '0')}.png`, png)) n++;
  }
  return returned ? { ...grid, seed: images[0].seed, parameters, png } : undefined;
}

function answer(setup: Setup, r: Txt2ImgRequest | Img2ImgRequest, samples: GeneratedImage[], grid: GeneratedImage | undefined, parameters: Record<string, unknown>, extra: { width: number; height: number; denoising: number | null; inpainting?: boolean }): GenerationAnswer {
  const images = grid ? [grid, ...samples] : samples;
  const n = samples.length;
  const seeds = samples.map((im) => im.seed);
  const batch = setup.base.batchSize ?? 1;
  const subseeds = samples.map((_, i) => setup.subseed + i);
  const info = {
    prompt: setup.prompt, all_prompts: Array(n).fill(setup.prompt), negative_prompt: setup.negative, all_negative_prompts: Array(n).fill(setup.negative),
    seed: seeds[0] ?? setup.seed, all_seeds: seeds, subseed: setup.subseed, all_subseeds: subseeds, subseed_strength: setup.strength,
    width: extra.width, height: extra.height, sampler_name: setup.sampler.label, cfg_scale: setup.base.cfgScale, steps: setup.base.steps,
    batch_size: batch, restore_faces: r.restore_faces ?? false, face_restoration_model: null, sd_model_name: setup.ckpt.model_name,
    sd_model_hash: setup.ckpt.hash, sd_vae_name: null, sd_vae_hash: null, seed_resize_from_w: r.seed_resize_from_w ?? -1,
    seed_resize_from_h: r.seed_resize_from_h ?? -1, denoising_strength: extra.denoising, extra_generation_params: {},
    index_of_first_image: grid ? 1 : 0, infotexts: images.map((im) => im.parameters), styles: r.styles ?? [], job_timestamp: jobTimestamp(),
    clip_skip: setup.clipSkip, is_using_inpainting_conditioning: extra.inpainting ?? false, version: A1111_VERSION,
  };
  const pngs = images.map((im) => im.png);
  return { images: r.send_images === false ? [] : pngs.map((p) => p.toString('base64')), parameters, info: JSON.stringify(info), pngs };
}

/** `save_images: true`: the PNGs go to the output folder as A1111 writes samples (`<kind>-images/`). */
async function saveAll(deps: A1111Deps, folder: string, images: readonly GeneratedImage[]): Promise<void> {
  const dir = `${deps.host.folders.output}/${folder}`;
  await mkdir(dir, { recursive: true });
  let n = (await readdir(dir)).length;
  for (const im of images) {
    while (!await writeNewFile(dir, `${String(n).padStart(5, '0')}-${im.seed}.png`, im.png)) n++;
    n++;
  }
}

/** An upscaler by A1111 name: None, Lanczos, Nearest, or a file of the upscale_models folders (by stem). */
async function pixelUpscaler(deps: A1111Deps, name: string): Promise<'lanczos' | 'nearest' | UpscalerModel | undefined> {
  if (name === 'None' || name === '') return undefined;
  const canon = upscalerName(name);
  if (canon === 'Lanczos') return 'lanczos';
  if (canon === 'Nearest') return 'nearest';
  const file = deps.host.listFiles('upscale_models').find((f) => f === name || basename(f, extname(f)) === name);
  if (!file) throw runtimeError(`could not find upscaler named ${name}`, 'AssertionError');
  const path = deps.host.resolveFile('upscale_models', file);
  return deps.resources.get(`upscaler|${path}`, await fileSize(path), () => UpscalerModel.load(path));
}

async function txt2imgJob(deps: A1111Deps, r: Txt2ImgRequest, control: JobControl): Promise<GenerationAnswer> {
  const setup = await commonSetup(deps, r);
  const width = snap8(r.width ?? 512);
  const height = snap8(r.height ?? 512);
  let hires: Txt2ImgOptions['hires'];
  if (r.enable_hr) {
    const upscaler = r.hr_upscaler ?? String(deps.catalog.option('hires_fix_upscaler') ?? 'Latent');
    const named = upscalerName(upscaler);
    let up: string = named ?? upscaler;
    if (!named) {
      const model = await pixelUpscaler(deps, upscaler);
      up = model instanceof UpscalerModel ? model.path : 'Latent';
    }
    const scale = (r.hr_resize_x ?? 0) > 0 || (r.hr_resize_y ?? 0) > 0
      ? Math.max((r.hr_resize_x || 0) / width, (r.hr_resize_y || 0) / height, 1) : r.hr_scale ?? 2;
    const hrSampler = r.hr_sampler_name || r.hr_scheduler ? chooseSampler(r.hr_sampler_name ?? r.sampler_name ?? r.sampler_index, r.hr_scheduler ?? r.scheduler) : undefined;
    hires = {
      scale, steps: r.hr_second_pass_steps ?? 0, denoise: r.denoising_strength ?? 0.75, upscaler: up,
      prompt: r.hr_prompt || undefined, negativePrompt: r.hr_negative_prompt || undefined, sampler: hrSampler?.sampler, scheduler: hrSampler?.scheduler,
    };
  }
  const images = await iterate(deps, control, 'txt2img', r.n_iter ?? 1, setup, async (seed, subseed, onProgress, stopped) => (await txt2img(setup.model, {
    ...setup.base, width, height, seed, onProgress, stopped, hires,
    variationSeed: setup.strength > 0 ? subseed : undefined, variationStrength: setup.strength || undefined,
  })).images);
  if (r.save_images) await saveAll(deps, 'txt2img-images', images);
  const size = images[0] ?? { width, height };
  return answer(setup, r, images, await gridFirst(deps, r, 'txt2img', images), r as Record<string, unknown>, { width: size.width, height: size.height, denoising: r.enable_hr ? r.denoising_strength ?? 0.75 : null });
}

const FILL: readonly MaskedContent[] = ['fill', 'original', 'latent-noise', 'latent-nothing'];
const RESIZE: readonly ResizeMode[] = ['just', 'crop', 'fill', 'just'];

async function maskOfSize(bytes: Buffer, width: number, height: number): Promise<Buffer> {
  const meta = await sharp(bytes).metadata();
  if (meta.width === width && meta.height === height) return bytes;
  return sharp(bytes).resize(width, height, { fit: 'fill' }).png().toBuffer();
}

async function img2imgJob(deps: A1111Deps, r: Img2ImgRequest, control: JobControl): Promise<GenerationAnswer> {
  const inits = r.init_images ?? [];
  const decoded = await Promise.all(inits.map((s) => decodeImage(s, deps.host.maxPixels)));
  const setup = await commonSetup(deps, r);
  const width = snap8(r.width ?? 512);
  const height = snap8(r.height ?? 512);
  const strength = r.denoising_strength ?? 0.75;
  const resizeMode = RESIZE[r.resize_mode ?? 0] ?? 'just';
  const batch = setup.base.batchSize ?? 1;
  if (decoded.length > batch) throw runtimeError(`bs=${batch} > len(imgs)=${decoded.length}`, 'RuntimeError');
  const mask = r.mask ? await decodeImage(r.mask, deps.host.maxPixels) : undefined;
  const script = r.script_name?.trim().toLowerCase();
  let inpainting = false;
  const images = await iterate(deps, control, 'img2img', r.n_iter ?? 1, setup, async (seed, subseed, onProgress) => {
    const out: GeneratedImage[] = [];
    // one init image serves the whole batch; several are one image each (A1111's batch rule)
    const runs = decoded.length === 1 ? [{ image: decoded[0], batchSize: batch, seed }] : decoded.map((image, i) => ({ image, batchSize: 1, seed: seed + (setup.strength > 0 ? 0 : i) }));
    for (const run of runs) {
      const opts = {
        ...setup.base, batchSize: run.batchSize, width, height, seed: run.seed, onProgress, strength, resizeMode, image: run.image,
        variationSeed: setup.strength > 0 ? subseed : undefined, variationStrength: setup.strength || undefined,
      };
      if (script === 'sd upscale') {
        const [, overlap, upName, scale] = r.script_args ?? [];
        const rgb = await loadRgb(run.image);
        const up = await pixelUpscaler(deps, typeof upName === 'string' ? upName : 'Lanczos') ?? 'lanczos';
        const res = await sdUpscale(setup.model, {
          ...opts, image: { width: rgb.width, height: rgb.height, rgb: rgb.data } satisfies RgbImage, scale: Number(scale) || 2, upscaler: up,
          tileSize: width, tileOverlap: Math.min(width - 8, Math.floor((Number(overlap) || 64) / 8) * 8),
        });
        out.push({ width: res.width, height: res.height, rgb: res.rgb, png: res.png, seed: run.seed, parameters: res.parameters });
      } else if (mask) {
        const meta = await sharp(run.image).metadata();
        const m = await maskOfSize(mask, meta.width!, meta.height!);
        const raster: RasterImage = await loadRgb(m);
        const invert = (r.inpainting_mask_invert ?? 0) === 1;
        // an empty repaint area (all black, or all white inverted) is a plain img2img, as nothing is masked out
        const empty = raster.data.every((v) => (invert ? v === 255 : v === 0));
        if (empty) out.push(...(await img2img(setup.model, opts)).images);
        else {
          inpainting = true;
          out.push(...(await inpaint(setup.model, {
            ...opts, mask: m, maskBlur: r.mask_blur ?? r.mask_blur_x ?? 4, invertMask: invert,
            inpaintArea: r.inpaint_full_res === false ? 'whole' : 'masked', onlyMaskedPadding: r.inpaint_full_res_padding ?? 0,
            maskedContent: FILL[r.inpainting_fill ?? 0] ?? 'fill',
          })).images);
        }
      } else out.push(...(await img2img(setup.model, opts)).images);
    }
    return out;
  });
  if (r.save_images) await saveAll(deps, 'img2img-images', images);
  const parameters: Record<string, unknown> = { ...r };
  if (!r.include_init_images) { parameters.init_images = null; parameters.mask = null; }
  const size = images[0] ?? { width, height };
  return answer(setup, r, images, await gridFirst(deps, r, 'img2img', images), parameters, { width: size.width, height: size.height, denoising: strength, inpainting: inpainting && setup.model.concatChannels > 0 });
}

async function upscaleOne(deps: A1111Deps, r: ExtrasRequest, bytes: Buffer): Promise<Buffer> {
  const rgb = await loadRgb(bytes);
  const img: RgbImage = { width: rgb.width, height: rgb.height, rgb: rgb.data };
  const scaleBy = r.resize_mode === 1
    ? Math.max((r.upscaling_resize_w ?? 512) / img.width, (r.upscaling_resize_h ?? 512) / img.height) : r.upscaling_resize ?? 2;
  const run = async (name: string | null) => {
    const up = await pixelUpscaler(deps, name ?? 'None');
    return up ? upscaleImage(img, { scale: scaleBy, upscaler: up }) : upscaleImage(img, { scale: scaleBy, upscaler: 'lanczos' });
  };
  let out = await run(r.upscaler_1);
  const vis = r.extras_upscaler_2_visibility ?? 0;
  if (vis > 0 && r.upscaler_2 && r.upscaler_2 !== 'None') {
    const second = await run(r.upscaler_2);
    const rgb2 = Uint8Array.from(out.rgb, (v, i) => Math.round(v * (1 - vis) + second.rgb[i] * vis));
    out = { ...out, rgb: rgb2 };
  }
  let s = sharp(Buffer.from(out.rgb.buffer, out.rgb.byteOffset, out.rgb.byteLength), { raw: { width: out.width, height: out.height, channels: 3 } });
  if (r.resize_mode === 1) {
    const w = r.upscaling_resize_w ?? 512;
    const h = r.upscaling_resize_h ?? 512;
    s = s.resize(w, h, { fit: r.upscaling_crop === false ? 'fill' : 'cover' });
  }
  return s.png().toBuffer();
}

async function extrasJob(deps: A1111Deps, route: 'extra-single-image' | 'extra-batch-images', r: ExtraSingleRequest | ExtraBatchRequest): Promise<Record<string, unknown>> {
  if (route === 'extra-single-image') {
    const bytes = await decodeImage((r as ExtraSingleRequest).image, deps.host.maxPixels);
    return { html_info: '', image: (await upscaleOne(deps, r, bytes)).toString('base64') };
  }
  const out: string[] = [];
  for (const item of (r as ExtraBatchRequest).imageList) {
    const data = item && typeof item === 'object' ? (item as { data?: unknown }).data : undefined;
    out.push((await upscaleOne(deps, r, await decodeImage(data, deps.host.maxPixels))).toString('base64'));
  }
  return { html_info: '', images: out };
}

/** The runner's handler for A1111 (and OpenAI, which the routes translate) queue items. */
export function a1111Handler(deps: A1111Deps) {
  return async (payload: A1111Payload, control: JobControl): Promise<unknown> => {
    switch (payload.route) {
      case 'txt2img': return txt2imgJob(deps, payload.body, control);
      case 'img2img': return img2imgJob(deps, payload.body, control);
      case 'extra-single-image':
      case 'extra-batch-images': return extrasJob(deps, payload.route, payload.body);
      default: throw httpException(404, 'Not Found');
    }
  };
}
