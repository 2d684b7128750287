// `latentkit img2img | inpaint | outpaint`: the generate options plus each pipeline's own.
import { Command, Option } from 'commander';
import type { StableDiffusionModel } from '../models/sd-model.js';
import type { GeneratedImage } from '../pipelines/image-output.js';
import { RESIZE_MODES, type ResizeMode } from '../pipelines/image-input.js';
import { img2img, checkStrength } from '../pipelines/img2img.js';
import { inpaint, MASKED_CONTENT, type InpaintArea, type MaskedContent } from '../pipelines/inpaint.js';
import { outpaint } from '../pipelines/outpaint.js';
import { checkTxt2ImgOptions, type Progress } from '../pipelines/txt2img.js';
import { ClipTokenizer } from '../text/clip-tokenizer.js';
import { addGenerateOptions, generateRequest, runImageCommand, withModelRoots, type GenerateFlags } from './generate.js';
import { floatOption, intOption } from './options.js';

interface ImageFlags extends GenerateFlags {
  image: string;
  strength?: number;
  resizeMode: ResizeMode;
  mask?: string;
  maskBlur?: number;
  inpaintArea?: InpaintArea;
  onlyMaskedPadding?: number;
  maskedContent?: MaskedContent;
  invertMask?: boolean;
  left?: number;
  right?: number;
  top?: number;
  bottom?: number;
  feather?: number;
}

type Run = (model: StableDiffusionModel, request: ReturnType<typeof generateRequest> & { tokenizer: ClipTokenizer; onProgress: (p: Progress) => void }) => Promise<{ images: GeneratedImage[]; warnings?: readonly string[] }>;

/** Validate the image options, then the shared load → run → write body of every image command. */
async function imageRun(given: ImageFlags, run: Run): Promise<void> {
  const flags = withModelRoots(given);
  if (flags.variationStrength !== undefined && flags.variationSeed === undefined) throw new Error('--variation-strength needs --variation-seed');
  if (flags.strength !== undefined) checkStrength(flags.strength);
  const seed = flags.seed ?? Math.floor(Math.random() * 4294967295);
  const request = generateRequest(flags, seed);
  // Size may come from the image; check the rest now so bad input fails before any loading.
  checkTxt2ImgOptions({ ...request, width: request.width ?? 512, height: request.height ?? 512 });
  await runImageCommand(flags, seed, (model, extras) => run(model, { ...request, ...extras }));
}

function imageCommand(program: Command, name: string, description: string): Command {
  return addGenerateOptions(program.command(name).description(description), { imageInput: true })
    .requiredOption('-i, --image <file>', 'input image (PNG, JPEG, WebP, …)')
    .addOption(new Option('--resize-mode <mode>', 'A1111 resize mode when the size differs: just (Just resize), crop (Crop and resize), fill (Resize and fill)').choices([...RESIZE_MODES]).default('just'));
}

function inpaintOptions(cmd: Command): Command {
  return cmd
    .option('--mask-blur <px>', 'Gaussian blur of the mask (A1111 default 4)', floatOption('--mask-blur', 0, 64))
    .addOption(new Option('--masked-content <mode>', 'what the masked area starts from').choices([...MASKED_CONTENT]));
}

export function registerImg2Img(program: Command): void {
  imageCommand(program, 'img2img', 'image to image: repaint an image guided by the prompt')
    .option('--strength <x>', 'denoising strength, 0 (keep) to 1 (repaint fully); default 0.75', floatOption('--strength', 0, 1))
    .action((flags: ImageFlags) => imageRun(flags, (model, req) => img2img(model, { ...req, image: flags.image, strength: flags.strength, resizeMode: flags.resizeMode })));

  inpaintOptions(imageCommand(program, 'inpaint', 'repaint the masked part of an image (white = repaint)')
    .requiredOption('--mask <file>', 'mask image of the same size: white (or opaque) = repaint')
    .option('--strength <x>', 'denoising strength 0–1 (default 0.75)', floatOption('--strength', 0, 1))
    .addOption(new Option('--inpaint-area <area>', 'whole picture, or only the masked area at full resolution').choices(['whole', 'masked']).default('whole'))
    .option('--only-masked-padding <px>', 'padding around the mask in "masked" mode (default 32)', intOption('--only-masked-padding', 0, 4096))
    .option('--invert-mask', 'inpaint what is not masked'))
    .action((flags: ImageFlags) => imageRun(flags, (model, req) => inpaint(model, {
      ...req, image: flags.image, mask: flags.mask!, strength: flags.strength, resizeMode: flags.resizeMode, maskBlur: flags.maskBlur,
      inpaintArea: flags.inpaintArea, onlyMaskedPadding: flags.onlyMaskedPadding, maskedContent: flags.maskedContent, invertMask: flags.invertMask,
    })));

  inpaintOptions(imageCommand(program, 'outpaint', 'extend an image on chosen sides and paint the new area')
    .option('--left <px>', 'pixels to add on the left', intOption('--left', 0, 4096))
    .option('--right <px>', 'pixels to add on the right', intOption('--right', 0, 4096))
    .option('--top <px>', 'pixels to add at the top', intOption('--top', 0, 4096))
    .option('--bottom <px>', 'pixels to add at the bottom', intOption('--bottom', 0, 4096))
    .option('--feather <px>', 'blend width into the original (ComfyUI default 40)', intOption('--feather', 0, 4096))
    .option('--strength <x>', 'denoising strength 0–1 (default 1)', floatOption('--strength', 0, 1)))
    .action((flags: ImageFlags) => imageRun(flags, (model, req) => outpaint(model, {
      ...req, image: flags.image, strength: flags.strength, maskBlur: flags.maskBlur, maskedContent: flags.maskedContent,
      left: flags.left, right: flags.right, top: flags.top, bottom: flags.bottom, feather: flags.feather,
    })));
}
