// `latentkit upscale`: an image through an ESRGAN-family model or a plain resampler. No checkpoint.
import { open, rm } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp from 'sharp';
import { Command, Option } from 'commander';
import { readRgbImage, RESAMPLERS, upscaleImage, UpscalerModel, type Resampler } from '../pipelines/upscale.js';
import { DEVICES, type Device } from '../runtime/session.js';
import { floatOption, intOption } from './options.js';
import { writeAtomic } from './generate.js';

interface UpscaleFlags {
  image: string;
  scale: number;
  upscaler?: Resampler;
  upscalerModel?: string;
  tile: number;
  overlap: number;
  out: string;
  device: Device;
  threads?: number;
}

const FORMATS: Record<string, 'png' | 'jpeg' | 'webp'> = { '.png': 'png', '.jpg': 'jpeg', '.jpeg': 'jpeg', '.webp': 'webp' };

/** Writes next to the target and renames, so a crash leaves either nothing or the whole file; never overwrites. */
/** Claims `path` (refusing an existing file), then writes it atomically; a failure leaves nothing behind. */
async function writeNew(path: string, data: Buffer): Promise<void> {
  try {
    await (await open(path, 'wx')).close();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new Error(`${path} already exists; choose another --out`, { cause: err });
    throw new Error(`${path}: cannot write (${(err as Error).message})`, { cause: err });
  }
  try {
    await writeAtomic(path, data);
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  }
}

async function run(flags: UpscaleFlags): Promise<void> {
  if (!flags.upscaler === !flags.upscalerModel) throw new Error('give exactly one of --upscaler (lanczos, nearest) or --upscaler-model FILE');
  const format = FORMATS[extname(flags.out).toLowerCase()];
  if (!format) throw new Error(`--out ${flags.out}: unknown image type (use .png, .jpg or .webp)`);
  if (flags.overlap >= flags.tile && flags.tile > 0) throw new Error(`--overlap ${flags.overlap} must be smaller than --tile ${flags.tile}`);
  const img = await readRgbImage(flags.image);
  const model = flags.upscalerModel ? await UpscalerModel.load(flags.upscalerModel, { device: flags.device, threads: flags.threads }) : undefined;
  try {
    const onTile = process.stderr.isTTY ? (done: number, total: number) => process.stderr.write(`\rtile ${done}/${total}${done === total ? '\n' : ''}`) : undefined;
    const out = await upscaleImage(img, { scale: flags.scale, upscaler: model ?? flags.upscaler!, tile: flags.tile, overlap: flags.overlap, onTile });
    const data = await sharp(Buffer.from(out.rgb.buffer, out.rgb.byteOffset, out.rgb.byteLength), { raw: { width: out.width, height: out.height, channels: 3 } })
      .toFormat(format).toBuffer();
    await writeNew(flags.out, data);
    console.log(`wrote ${flags.out} (${out.width}×${out.height}${model ? `, ${model.describe()}` : `, ${flags.upscaler}`})`);
  } finally {
    await model?.close();
  }
}

export function registerUpscale(program: Command): void {
  program.command('upscale')
    .description('upscale an image with an ESRGAN / Real-ESRGAN model (.pth / .safetensors) or a resampler; no checkpoint needed')
    .requiredOption('-i, --image <path>', 'input image (PNG, JPEG, WebP, …)')
    .requiredOption('-s, --scale <x>', 'output size ÷ input size', floatOption('--scale', 0.01, 16))
    .addOption(new Option('--upscaler <name>', 'plain resampling').choices([...RESAMPLERS]))
    .option('--upscaler-model <file>', 'ESRGAN-family model: RRDBNet (old / new / BasicSR keys) or SRVGGNetCompact')
    .option('--tile <px>', 'model tile size in input pixels (0 = whole image at once)', intOption('--tile', 0, 65536), 512)
    .option('--overlap <px>', 'overlap between model tiles in input pixels', intOption('--overlap', 0, 65535), 32)
    .requiredOption('-o, --out <path>', 'output image (.png, .jpg, .webp); never overwritten')
    .addOption(new Option('--device <name>', 'execution provider').choices([...DEVICES]).default('cpu'))
    .option('--threads <n>', 'CPU threads (default: all cores)', intOption('--threads', 1, 1024))
    .action(run);
}
