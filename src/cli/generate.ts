import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, extname, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { writeSafetensors } from '../formats/safetensors.js';
import { loadCheckpoint } from '../models/checkpoint.js';
import { defaultModelsDir, listModelFiles, modelFolders, modelRoots, resolveModel } from '../models/model-folders.js';
import type { StableDiffusionModel } from '../models/sd-model.js';
import type { GeneratedImage } from '../pipelines/image-output.js';
import { PROFILES, type ProfileName, type RngName } from '../pipelines/profiles.js';
import { checkSwitchAt } from '../pipelines/refiner.js';
import { checkTxt2ImgOptions, txt2img, type Progress } from '../pipelines/txt2img.js';
import { DEVICES, type Device } from '../runtime/session.js';
import { ClipTokenizer } from '../text/clip-tokenizer.js';
import { Tensor } from '../tensor/tensor.js';
import { floatOption, intOption } from './options.js';
import { parseHypernetworkArg, parseLoraArg } from './networks-args.js';
import type { LoraSpec } from '../adapters/lora.js';
import type { HypernetworkSpec } from '../adapters/hypernetwork.js';

export interface GenerateFlags {
  /** Absent on the command line when the models folder holds exactly one checkpoint. */
  model: string;
  models: string[];
  prompt: string;
  negative: string;
  steps: number;
  cfg: number;
  sampler: string;
  scheduler: string;
  seed?: number;
  rng?: RngName;
  profile: ProfileName;
  /** Unset: the input image's size (img2img…), else 512×512, or 1024×1024 for SDXL models. */
  width?: number;
  height?: number;
  batch: number;
  clipSkip: number;
  eta?: number;
  variationSeed?: number;
  variationStrength?: number;
  seedResizeFrom?: { width: number; height: number };
  ensd?: number;
  out?: string;
  saveLatent?: string;
  vae?: string;
  prediction?: 'eps' | 'v';
  clipVocab?: string;
  device: Device;
  threads?: number;
  unetHeads?: number;
  unetHeadWidth?: number;
  textHeads?: number;
  promptSyntax?: 'a1111' | 'comfy';
  emphasis: 'original' | 'none' | 'ignore' | 'off';
  embeddings: string[];
  wildcards: string[];
  lora: LoraSpec[];
  hypernetwork: HypernetworkSpec[];
  loraDir: string[];
  hypernetworkDir: string[];
  hiresScale?: number;
  hiresSteps?: number;
  hiresDenoise?: number;
  hiresUpscaler?: string;
  refiner?: string;
  refinerSwitchAt: number;
  aestheticScore?: number;
  negativeAestheticScore?: number;
  originalSize?: { width: number; height: number };
  targetSize?: { width: number; height: number };
  crop?: { top: number; left: number };
}

/** `WxH` (or TOPxLEFT): two non-negative integers. */
function sizeOption(flag: string) {
  return (v: string) => {
    const m = /^(\d+)x(\d+)$/i.exec(v.trim());
    if (!m) throw new InvalidArgumentError(`${flag} takes WxH (two whole numbers), got '${v}'`);
    const list = [Number(m[1]), Number(m[2])];
    return { width: list[0], height: list[1], list };
  };
}

/** A free name: FILE, else FILE-1, FILE-2 … — an existing image is never overwritten. */
export async function claimPath(wanted: string): Promise<string> {
  const ext = extname(wanted);
  const stem = wanted.slice(0, wanted.length - ext.length);
  for (let i = 0; ; i++) {
    const candidate = i === 0 ? wanted : `${stem}-${i}${ext}`;
    try {
      const fh = await open(candidate, 'wx');
      await fh.close();
      return candidate;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new Error(`${candidate}: cannot write (${(err as Error).message})`, { cause: err });
    }
  }
}

/** Writes next to the target and renames, so a crash leaves either nothing or the whole file. */
export async function writeAtomic(path: string, data: Buffer): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export function defaultOut(seed: number): string {
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return resolve('outputs', `${stamp}-${seed}.png`);
}

/** `generate` without -m: the one checkpoint of the models folder, or one line saying what to do. */
function onlyCheckpoint(roots: readonly string[]): string {
  const files = listModelFiles(roots, 'checkpoints');
  if (files.length === 1) return files[0];
  const where = roots.length ? roots.join(', ') : defaultModelsDir();
  if (files.length === 0) throw new Error(`no -m given and no checkpoint in ${where}; fetch one with: latentkit models pull sd15`);
  throw new Error(`no -m given and ${files.length} checkpoints in ${where}; choose one with -m NAME (latentkit models list shows them)`);
}

/**
 * Resolves names given relative to a ComfyUI / A1111 install (`-m dreamshaper_8`, `--lora detail:0.5`)
 * and fills the folder lists the prompt's `<lora:…>` tags and embeddings are found in.
 */
export function withModelRoots<F extends GenerateFlags>(given: F): F {
  const roots = modelRoots(given.models);
  const flags = { ...given, model: (given.model as string | undefined) ?? onlyCheckpoint(roots) };
  if (roots.length === 0) return flags;
  const hiresUpscaler = flags.hiresUpscaler && /[./\\]/.test(flags.hiresUpscaler) ? resolveModel(flags.hiresUpscaler, roots, 'upscale_models') : flags.hiresUpscaler;
  return {
    ...flags,
    model: resolveModel(flags.model, roots, 'checkpoints'),
    vae: flags.vae ? resolveModel(flags.vae, roots, 'vae') : undefined,
    lora: flags.lora.map((l) => ({ ...l, path: resolveModel(l.path, roots, 'loras') })),
    hypernetwork: flags.hypernetwork.map((h) => ({ ...h, path: resolveModel(h.path, roots, 'hypernetworks') })),
    loraDir: [...flags.loraDir, ...modelFolders(roots, 'loras')],
    hypernetworkDir: [...flags.hypernetworkDir, ...modelFolders(roots, 'hypernetworks')],
    embeddings: [...flags.embeddings, ...modelFolders(roots, 'embeddings')],
    hiresUpscaler,
  };
}

/** The txt2img request the shared image options describe (img2img / inpaint / outpaint build on it). */
export function generateRequest(flags: GenerateFlags, seed: number) {
  return {
    prompt: flags.prompt, negativePrompt: flags.negative, width: flags.width, height: flags.height, steps: flags.steps,
    cfgScale: flags.cfg, sampler: flags.sampler, scheduler: flags.scheduler, seed, rng: flags.rng, profile: flags.profile,
    batchSize: flags.batch, clipSkip: flags.clipSkip, eta: flags.eta, variationSeed: flags.variationSeed,
    variationStrength: flags.variationStrength, etaNoiseSeedDelta: flags.ensd, seedResizeFrom: flags.seedResizeFrom,
    loras: flags.lora, hypernetworks: flags.hypernetwork, loraDirs: flags.loraDir, hypernetworkDirs: flags.hypernetworkDir,
    promptSyntax: flags.promptSyntax, emphasis: flags.emphasis === 'none' ? 'no-norm' as const : flags.emphasis,
    embeddings: flags.embeddings, wildcards: flags.wildcards,
    sdxl: {
      originalSize: flags.originalSize, targetSize: flags.targetSize, crop: flags.crop,
      aestheticScore: flags.aestheticScore, negativeAestheticScore: flags.negativeAestheticScore,
    },
  };
}

/** The image size when none was given: SDXL models are made for 1024×1024, SD1/SD2 for 512×512. */
export function defaultSide(model: StableDiffusionModel): number {
  return model.isSdxl ? 1024 : 512;
}

function hiresRequest(flags: GenerateFlags) {
  if (flags.hiresScale === undefined) {
    if (flags.hiresSteps !== undefined || flags.hiresDenoise !== undefined || flags.hiresUpscaler !== undefined) {
      throw new Error('--hires-steps, --hires-denoise and --hires-upscaler need --hires-scale');
    }
    return undefined;
  }
  return { scale: flags.hiresScale, steps: flags.hiresSteps, denoise: flags.hiresDenoise, upscaler: flags.hiresUpscaler };
}

type ImageResult = { images: GeneratedImage[]; warnings?: readonly string[] };

/**
 * The body every image command shares: load the model, run the pipeline with a progress bar on a
 * terminal, print warnings, write the PNGs (never over an existing file); `after` adds extra outputs.
 */
export async function runImageCommand<R extends ImageResult>(
  flags: GenerateFlags, seed: number,
  run: (model: StableDiffusionModel, extras: { tokenizer: ClipTokenizer; onProgress: (p: Progress) => void }) => Promise<R>,
  after?: (model: StableDiffusionModel, result: R) => Promise<void>,
): Promise<void> {
  const model = await loadCheckpoint(flags.model, {
    device: flags.device, threads: flags.threads, vae: flags.vae, prediction: flags.prediction,
    unetHeads: flags.unetHeads, unetHeadWidth: flags.unetHeadWidth, textHeads: flags.textHeads,
  });
  try {
    const tokenizer = await ClipTokenizer.load({ path: flags.clipVocab, modelPath: flags.model, hint: 'pass --clip-vocab DIR (a folder with vocab.json and merges.txt)' });
    const bar = process.stderr.isTTY
      ? new cliProgress.SingleBar({ format: 'sampling |{bar}| {value}/{total} steps | {duration_formatted} elapsed, eta {eta_formatted}', stream: process.stderr, hideCursor: true }, cliProgress.Presets.shades_classic)
      : undefined;
    const onProgress = (p: Progress) => {
      if (!bar) return;
      if (p.step === 1) bar.start(p.total, 0);
      bar.update(p.step);
    };
    let result: R;
    try {
      result = await run(model, { tokenizer, onProgress });
    } finally {
      bar?.stop();
    }
    for (const w of result.warnings ?? []) console.error(`latentkit: warning: ${w}`);
    const out = resolve(flags.out ?? defaultOut(seed));
    await mkdir(dirname(out), { recursive: true });
    for (const [i, image] of result.images.entries()) {
      const path = await claimPath(result.images.length > 1 ? out.replace(/(\.png)?$/i, `-${i}.png`) : out);
      await writeAtomic(path, image.png);
      console.log(`wrote ${path} (seed ${image.seed})`);
    }
    await after?.(model, result);
  } finally {
    await model.close();
  }
}

async function generate(given: GenerateFlags): Promise<void> {
  const flags = withModelRoots(given);
  if (flags.variationStrength !== undefined && flags.variationSeed === undefined) {
    throw new Error('--variation-strength needs --variation-seed');
  }
  const seed = flags.seed ?? Math.floor(Math.random() * 4294967295);
  const request = { ...generateRequest(flags, seed), hires: hiresRequest(flags) };
  checkTxt2ImgOptions(request);
  checkSwitchAt(flags.refinerSwitchAt);
  const refinerPath = flags.refiner ? resolveModel(flags.refiner, modelRoots(given.models), 'checkpoints') : undefined;
  await runImageCommand(flags, seed, async (model, extras) => {
    const side = defaultSide(model);
    const sized = { ...request, width: request.width ?? side, height: request.height ?? side };
    if (!refinerPath) return txt2img(model, { ...sized, ...extras });
    const refiner = await loadCheckpoint(refinerPath, { device: flags.device, threads: flags.threads });
    try {
      return await txt2img(model, { ...sized, ...extras, refiner: { model: refiner, switchAt: flags.refinerSwitchAt } });
    } finally {
      await refiner.close();
    }
  }, async (model, result) => {
    if (!flags.saveLatent) return;
    // ComfyUI's SaveLatent format: the latent in the VAE's space (sampler output ÷ scale factor).
    const latent = Float32Array.from(result.latents, (v) => v / model.scaleFactor);
    const path = await claimPath(resolve(flags.saveLatent));
    await writeSafetensors(path, {
      latent_tensor: Tensor.f32(result.latentShape, latent),
      latent_format_version_0: Tensor.f32([0]),
    });
    console.log(`wrote ${path} (latent [${result.latentShape.join(', ')}])`);
  });
}

/**
 * The options every image command takes (generate, img2img, inpaint, outpaint). With `imageInput`
 * the size defaults to the input image's instead of 512×512.
 */
export function addGenerateOptions(cmd: Command, o: { imageInput?: boolean } = {}): Command {
  return cmd
    .option('-m, --model <path>', 'checkpoint (.safetensors / .ckpt, SD 1.x or 2.x) or diffusers folder; with --models also a name; default: the only checkpoint in the models folder')
    .option('--models <dir>', 'a ComfyUI or A1111 install (or its models/ folder): -m, --vae, --lora, --hypernetwork take names from it, <lora:…> tags and embeddings are found there; repeatable (also LATENTKIT_MODELS)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .requiredOption('-p, --prompt <text>', 'what to draw')
    .option('-n, --negative <text>', 'negative prompt', '')
    .option('--steps <n>', 'sampling steps', intOption('--steps', 1, 1000), 20)
    .option('--cfg <x>', 'classifier-free guidance scale', floatOption('--cfg', 0, 100), 7)
    .option('--sampler <name>', 'ComfyUI id (euler, dpmpp_2m, …) or A1111 name ("DPM++ 2M Karras")', 'euler')
    .option('--scheduler <name>', 'normal, karras, exponential, sgm_uniform, simple, ddim_uniform, beta, … or automatic', 'automatic')
    .option('--seed <n>', 'seed (random when omitted)', intOption('--seed', 0, Number.MAX_SAFE_INTEGER))
    .addOption(new Option('--rng <source>', 'noise source: gpu/nv (A1111 Philox) or cpu (torch CPU generator); default by profile').choices(['cpu', 'gpu', 'nv']))
    .addOption(new Option('--profile <name>', 'reproduce the image of this tool for the same seed').choices([...PROFILES]).default('a1111'))
    .option('-W, --width <px>', `image width, a multiple of 8 (default: ${o.imageInput ? 'the input\'s, rounded down to 8' : '512, 1024 for SDXL'})`, intOption('--width', 8, 8192))
    .option('-H, --height <px>', `image height, a multiple of 8 (default: ${o.imageInput ? 'the input\'s, rounded down to 8' : '512, 1024 for SDXL'})`, intOption('--height', 8, 8192))
    .option('--batch <n>', 'images per run', intOption('--batch', 1, 64), 1)
    .option('--clip-skip <n>', 'stop the text encoder this many layers from the end (A1111 clip skip)', intOption('--clip-skip', 1, 12), 1)
    .option('--eta <x>', 'noise amount of ancestral / SDE samplers', floatOption('--eta', 0, 10))
    .option('--variation-seed <n>', 'A1111 variation seed', intOption('--variation-seed', 0, Number.MAX_SAFE_INTEGER))
    .option('--variation-strength <x>', 'A1111 variation strength, 0–1', floatOption('--variation-strength', 0, 1))
    .option('--seed-resize-from <WxH>', 'A1111 "resize seed from": draw the noise as for this size', (v: string) => {
      const m = /^(\d+)x(\d+)$/.exec(v);
      if (!m || Number(m[1]) < 8 || Number(m[2]) < 8) throw new InvalidArgumentError(`--seed-resize-from must look like 512x768, got '${v}'`);
      return { width: Number(m[1]), height: Number(m[2]) };
    })
    .option('--ensd <n>', 'A1111 eta noise seed delta', intOption('--ensd', 0, Number.MAX_SAFE_INTEGER))
    .option('-o, --out <file>', 'output PNG (never overwritten: -1, -2 … are appended); default outputs/<time>-<seed>.png')
    .option('--save-latent <file>', 'also save the final latent as ComfyUI SaveLatent safetensors')
    .option('--vae <file>', 'a separate VAE that replaces the checkpoint\'s')
    .addOption(new Option('--prediction <type>', 'override the prediction type').choices(['eps', 'v']))
    .option('--clip-vocab <dir>', 'folder (or file) with the CLIP vocabulary: vocab.json + merges.txt or bpe_simple_vocab_16e6.txt.gz')
    .addOption(new Option('--device <name>', 'execution provider').choices([...DEVICES]).default('cpu'))
    .option('--threads <n>', 'CPU threads (default: all cores)', intOption('--threads', 1, 1024))
    .option('--unet-heads <n>', 'UNet attention heads (custom models; SD1 default 8)', intOption('--unet-heads', 1, 1024))
    .option('--unet-head-width <n>', 'UNet attention head width (custom models; SD2 default 64)', intOption('--unet-head-width', 1, 4096))
    .option('--text-heads <n>', 'text-encoder attention heads (custom models; default width/64)', intOption('--text-heads', 1, 1024))
    .addOption(new Option('--prompt-syntax <name>', 'read prompts as A1111 or ComfyUI does (default: the profile\'s)').choices(['a1111', 'comfy']))
    .addOption(new Option('--emphasis <mode>', 'A1111 emphasis: original (restore the mean), none (multiply only, "No norm"), ignore, off (brackets are text)').choices(['original', 'none', 'ignore', 'off']).default('original'))
    .option('--embeddings <dir>', 'textual-inversion folder (A1111: trigger by file name; ComfyUI: embedding:name); repeatable', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--wildcards <dir>', 'wildcard folder for dynamic prompts (__name__ → name.txt); repeatable', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--lora <path:weight[:te]>', 'apply a LoRA / LyCORIS file at a strength (text encoder: te, default = weight); repeatable', (v: string, prev: LoraSpec[]) => [...prev, parseLoraArg(v)], [] as LoraSpec[])
    .option('--hypernetwork <path:weight>', 'apply an A1111 hypernetwork (.pt) at a strength; repeatable', (v: string, prev: HypernetworkSpec[]) => [...prev, parseHypernetworkArg(v)], [] as HypernetworkSpec[])
    .option('--lora-dir <dir>', 'folder searched for <lora:name:weight> in the prompt (subfolders too); repeatable', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--hypernetwork-dir <dir>', 'folder searched for <hypernet:name:weight> in the prompt; repeatable', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--original-size <WxH>', 'SDXL size conditioning: original size (default: the image size)', sizeOption('--original-size'))
    .option('--target-size <WxH>', 'SDXL size conditioning: target size (default: the image size)', sizeOption('--target-size'))
    .option('--crop <TOPxLEFT>', 'SDXL size conditioning: crop coordinates, top then left (default 0x0)', (v: string) => {
      const [top, left] = sizeOption('--crop')(v).list;
      return { top, left };
    })
    .option('--aesthetic-score <x>', 'SDXL refiner: aesthetic score of the prompt (default 6)', floatOption('--aesthetic-score', 0, 1000))
    .option('--negative-aesthetic-score <x>', 'SDXL refiner: aesthetic score of the negative prompt (default 2.5)', floatOption('--negative-aesthetic-score', 0, 1000));
}

export function registerGenerate(program: Command): void {
  addGenerateOptions(program.command('generate')
    .description('text to image: write a PNG with A1111-style "parameters" metadata'))
    .option('--hires-scale <x>', 'hires fix: upscale by this factor, then a second img2img pass', floatOption('--hires-scale', 1, 8))
    .option('--hires-steps <n>', 'hires fix second-pass steps (default: --steps)', intOption('--hires-steps', 0, 1000))
    .option('--hires-denoise <x>', 'hires fix denoising strength, 0–1 (default 0.7)', floatOption('--hires-denoise', 0, 1))
    .option('--hires-upscaler <name|file>', 'Latent, "Latent (antialiased)", "Latent (bicubic)", "Latent (bicubic antialiased)", "Latent (nearest)", "Latent (nearest-exact)", Lanczos, Nearest, or an ESRGAN model file (default Latent)')
    .option('--refiner <file>', 'SDXL refiner checkpoint: it samples the end of the schedule (comfy: KSamplerAdvanced hand-off; a1111: switch inside the sampler)')
    .option('--refiner-switch-at <x>', 'fraction of the schedule the base samples before the refiner takes over', floatOption('--refiner-switch-at', 0, 1), 0.8)
    .action(generate);
}
