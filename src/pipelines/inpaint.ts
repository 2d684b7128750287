// Inpainting as A1111's img2img "Inpaint" tab does it (processing.StableDiffusionProcessingImg2Img):
// mask blur, inpaint masked / not masked, masked content, "only masked" at full resolution, latent
// blending for ordinary checkpoints, the extra UNet channels of inpainting checkpoints, and paste-back
// through an overlay so that pixels outside the (blurred) mask keep their original values.
import type { StableDiffusionModel } from '../models/sd-model.js';
import { decodeLatents, encodePng, type GeneratedImage } from './image-output.js';
import { cropImage, loadMask, loadRgb, resizeImage, rgbToTensor, type ImageSource, type RasterImage } from './image-input.js';
import {
  defaultEncodeMode, defaultSize, denoiseLatents, encodeImage, infotext, inpaintConcat, withNetworks, type Img2ImgOptions, type Img2ImgResult,
} from './img2img.js';
import { blurMask, cropRegion, expandCropRegion, fillMasked, interpolate, invertMask, pasteBack, pilResizeMask, placeInto, type Box } from './masks.js';
import type { InfoValue } from './parameters.js';
import { checkTxt2ImgOptions } from './options.js';

/** A1111's "Masked content": 0 fill, 1 original, 2 latent noise, 3 latent nothing. */
export type MaskedContent = 'original' | 'fill' | 'latent-noise' | 'latent-nothing';
export const MASKED_CONTENT: readonly MaskedContent[] = ['original', 'fill', 'latent-noise', 'latent-nothing'];
/** "Whole picture" or "Only masked". */
export type InpaintArea = 'whole' | 'masked';

export interface InpaintOptions extends Img2ImgOptions {
  /** White (or opaque, for an alpha mask) = repaint. Must have the image's size. */
  readonly mask: ImageSource;
  /** Gaussian blur σ in pixels (A1111 default 4). */
  readonly maskBlur?: number;
  /** "Inpaint not masked". */
  readonly invertMask?: boolean;
  readonly inpaintArea?: InpaintArea;
  /** "Only masked padding, pixels" (A1111 default 32). */
  readonly onlyMaskedPadding?: number;
  readonly maskedContent?: MaskedContent;
}

export interface InpaintResult extends Img2ImgResult {
  /** Where the repainted area was taken from in "only masked" mode ([x1, y1, x2, y2] of the input). */
  readonly cropRegion?: Box;
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

const CONTENT_INFO: Record<MaskedContent, string | undefined> = { original: undefined, fill: 'fill', 'latent-noise': 'latent noise', 'latent-nothing': 'latent nothing' };

/**
 * The repaint mask at latent resolution (1 = repaint). A1111 shrinks the 8-bit mask with PIL's
 * default (bicubic) filter and rounds it to 0/1 (`mask_round`); ComfyUI's noise mask is the mask
 * bilinearly interpolated, unrounded.
 */
function latentMask(mask: RasterImage, profile: 'a1111' | 'comfy'): Float64Array {
  const w = mask.width / 8;
  const h = mask.height / 8;
  if (profile === 'comfy') return interpolate(Float64Array.from(mask.data, (v) => v / 255), 1, mask.height, mask.width, h, w, 'bilinear');
  return pilResizeMask(mask, w, h).map((v) => Math.round(v / 255));
}

export async function inpaint(model: StableDiffusionModel, opts: InpaintOptions): Promise<InpaintResult> {
  if (opts.loras?.length || opts.hypernetworks?.length) return withNetworks(model, opts, inpaint);
  const strength = opts.strength ?? 0.75;
  const blur = opts.maskBlur ?? 4;
  const padding = opts.onlyMaskedPadding ?? 32;
  const area = opts.inpaintArea ?? 'whole';
  const content = opts.maskedContent ?? 'original';
  check(Number.isFinite(blur) && blur >= 0 && blur <= 64, `mask blur must be from 0 to 64, got ${blur}`);
  check(Number.isInteger(padding) && padding >= 0, `only-masked padding must be a non-negative integer, got ${padding}`);
  check(MASKED_CONTENT.includes(content), `masked content must be one of ${MASKED_CONTENT.join(', ')}, got '${content}'`);
  check(area === 'whole' || area === 'masked', `inpaint area must be 'whole' or 'masked', got '${area}'`);

  const input = await loadRgb(opts.image);
  let mask = await loadMask(opts.mask);
  const maskName = typeof opts.mask === 'string' ? opts.mask : 'mask';
  check(mask.width === input.width && mask.height === input.height, `${maskName}: the mask is ${mask.width}x${mask.height} but the image is ${input.width}x${input.height}`);
  if (opts.invertMask) mask = invertMask(mask);
  check(mask.data.some((v) => v !== 0), `${maskName}: the mask is empty (no pixel to repaint)`);
  const { width, height } = defaultSize(input, opts.width, opts.height);
  const checked = checkTxt2ImgOptions({ ...opts, width, height });
  const resizeMode = opts.resizeMode ?? 'just';
  const blurred = blur > 0 ? blurMask(mask, blur) : mask;

  // Processing-size image and mask, and what the result is pasted back onto.
  let image: RasterImage;
  let procMask: RasterImage;
  let overlayBase: RasterImage;
  let overlayMask: RasterImage;
  let crop: Box | undefined;
  if (area === 'masked') {
    crop = expandCropRegion(cropRegion(blurred, padding)!, width, height, mask.width, mask.height);
    procMask = await resizeImage(cropImage(blurred, ...crop), width, height, 'fill');
    image = await resizeImage(cropImage(input, ...crop), width, height, 'fill');
    overlayBase = input;
    overlayMask = blurred;
  } else {
    procMask = await resizeImage(blurred, width, height, resizeMode);
    image = await resizeImage(input, width, height, resizeMode);
    overlayBase = image;
    // A1111 doubles the blurred mask for the overlay, so the original shows through only where the blur is under half.
    overlayMask = { ...procMask, data: Uint8Array.from(procMask.data, (v) => Math.min(255, v * 2)) };
  }
  // Every mode but "original" pre-fills the masked area (A1111: `if self.inpainting_fill != 1`).
  if (content !== 'original') image = fillMasked(image, procMask);

  const mode = opts.encode ?? defaultEncodeMode(checked.profile);
  const one = await encodeImage(model, rgbToTensor(image, 1), mode, checked.seed);
  const init = new Float64Array(one.length * checked.batch);
  for (let b = 0; b < checked.batch; b++) init.set(one, b * one.length);
  const lmask = latentMask(procMask, checked.profile.name);
  const concat = model.concatChannels > 0
    ? await inpaintConcat(model, image, Float64Array.from(procMask.data, (v) => Math.round(v / 255)), checked.batch, mode, checked.seed)
    : undefined;

  const r = await denoiseLatents({
    model, opts, width, height, strength, fixSteps: opts.fixSteps, init, concat, latentMask: lmask,
    latentFill: content === 'latent-noise' ? 'noise' : content === 'latent-nothing' ? 'nothing' : undefined,
  });
  const rgb = await decodeLatents(model, r.latents, r.shape);

  const extra: [string, InfoValue][] = [
    ['Mask mode', opts.invertMask ? 'Inpaint not masked' : undefined],
    ['Mask blur', blur > 0 ? blur : undefined],
    ['Inpaint area', area === 'masked' ? 'Only masked' : undefined],
    ['Masked area padding', area === 'masked' ? padding : undefined],
    ['Masked content', CONTENT_INFO[content]],
  ];
  const images: GeneratedImage[] = [];
  for (let i = 0; i < checked.batch; i++) {
    let out: RasterImage = { width, height, channels: 3, data: rgb[i] };
    if (crop) {
      const [x1, y1, x2, y2] = crop;
      out = placeInto(overlayBase, await resizeImage(out, x2 - x1, y2 - y1, 'crop'), x1, y1);
    }
    out = pasteBack(out, overlayBase, overlayMask);
    const parameters = await infotext(model, opts, r.checked, i, r.seeds, { width, height }, { denoisingStrength: strength, extra, text: r.text });
    images.push({ width: out.width, height: out.height, rgb: out.data, seed: r.seeds[i], parameters, png: await encodePng(out.data, out.width, out.height, parameters) });
  }
  return { images, latents: r.latents, latentShape: r.shape, sigmas: r.sigmas, initLatent: r.init, cropRegion: crop };
}
