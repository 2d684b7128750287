// `latentkit preprocess NAME --image IN --out OUT`: a control image from a picture, as the ControlNet
// 1.1 annotators make it. No resizing unless --resolution is given.
import sharp from 'sharp';
import type { Command } from 'commander';
import { canny } from '../pipelines/preprocess/canny.js';
import { floatOption, intOption } from './options.js';
import { writeAtomic } from './generate.js';

interface PreprocessFlags { image: string; out: string; low: number; high: number; resolution?: number }

/**
 * The annotators' HWC3: RGB as is; RGBA composited over white in float32 and truncated to uint8
 * (`color·α + 255·(1 − α)`); grey repeated to three channels.
 */
export async function readAnnotatorInput(path: string): Promise<{ rgb: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  const rgb = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    const a = info.channels === 4 ? Math.fround(data[p * 4 + 3] / 255) : 1;
    for (let c = 0; c < 3; c++) {
      const v = data[p * info.channels + Math.min(c, info.channels === 4 ? 2 : info.channels - 1)];
      rgb[p * 3 + c] = info.channels === 4 ? Math.min(255, Math.max(0, Math.trunc(Math.fround(Math.fround(v * a) + Math.fround(255 * Math.fround(1 - a)))))) : v;
    }
  }
  return { rgb, width: info.width, height: info.height };
}

async function preprocess(name: string, flags: PreprocessFlags): Promise<void> {
  if (name !== 'canny') throw new Error(`preprocessor '${name}' is not available yet (available: canny)`);
  if (flags.resolution !== undefined) throw new Error('--resolution (the annotator resize_image rule) is not supported yet; resize the image beforehand');
  const { rgb, width, height } = await readAnnotatorInput(flags.image);
  const edges = canny(rgb, height, width, 3, flags.low, flags.high);
  const png = await sharp(Buffer.from(edges), { raw: { width, height, channels: 1 } }).png().toBuffer();
  await writeAtomic(flags.out, png);
  console.log(flags.out);
}

export function registerPreprocess(program: Command): void {
  program.command('preprocess').argument('<name>', 'preprocessor: canny')
    .description('make a ControlNet control image from a picture (ControlNet 1.1 annotators)')
    .requiredOption('--image <file>', 'input image')
    .requiredOption('--out <file>', 'output PNG')
    .option('--low <n>', 'canny low threshold', floatOption('--low'), 100)
    .option('--high <n>', 'canny high threshold', floatOption('--high'), 200)
    .option('--resolution <n>', "resize with the annotator's resize_image rule first", intOption('--resolution'))
    .action(preprocess);
}
