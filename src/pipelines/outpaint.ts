// Outpainting: pad the image on chosen sides (ComfyUI's ImagePadForOutpaint: grey border, a mask of 1
// over the border and a quadratic feather into the old image), then inpaint the new area. The border
// is pre-filled by A1111's "fill" masked content (the image's colours bled outwards by repeated blurs)
// — a simpler stand-in for A1111's "outpainting mk2" script, which shapes noise by FFT instead.
import type { StableDiffusionModel } from '../models/sd-model.js';
import { loadRgb, type RasterImage } from './image-input.js';
import { inpaint, type InpaintOptions, type InpaintResult } from './inpaint.js';

export interface OutpaintOptions extends Omit<InpaintOptions, 'mask' | 'invertMask' | 'inpaintArea' | 'onlyMaskedPadding'> {
  readonly left?: number;
  readonly right?: number;
  readonly top?: number;
  readonly bottom?: number;
  /** Feathering into the original image in pixels (ComfyUI default 40). */
  readonly feather?: number;
}

export interface PaddedImage {
  readonly image: RasterImage;
  /** 255 over the new border, a quadratic ramp over the feathered edge of the original, 0 elsewhere. */
  readonly mask: RasterImage;
}

function check(cond: boolean, message: string): void {
  if (!cond) throw new Error(message);
}

/** ComfyUI `ImagePadForOutpaint.expand_image` on 8-bit pixels (grey is 0.5 → 128). */
export function padForOutpaint(img: RasterImage, left: number, top: number, right: number, bottom: number, feather: number): PaddedImage {
  const W = img.width + left + right;
  const H = img.height + top + bottom;
  const data = new Uint8Array(W * H * 3).fill(128);
  const mask = new Uint8Array(W * H).fill(255);
  const { width: w, height: h } = img;
  const feathered = feather > 0 && feather * 2 < h && feather * 2 < w;
  for (let i = 0; i < h; i++) {
    for (let j = 0; j < w; j++) {
      const o = (i + top) * W + (j + left);
      data.set(img.data.subarray((i * w + j) * 3, (i * w + j) * 3 + 3), o * 3);
      let v = 0;
      if (feathered) {
        const d = Math.min(top ? i : h, bottom ? h - i : h, left ? j : w, right ? w - j : w);
        if (d < feather) v = ((feather - d) / feather) ** 2;
      }
      mask[o] = Math.round(v * 255);
    }
  }
  return { image: { width: W, height: H, channels: 3, data }, mask: { width: W, height: H, channels: 1, data: mask } };
}

export async function outpaint(model: StableDiffusionModel, opts: OutpaintOptions): Promise<InpaintResult> {
  let left = opts.left ?? 0;
  let right = opts.right ?? 0;
  let top = opts.top ?? 0;
  let bottom = opts.bottom ?? 0;
  const feather = opts.feather ?? 40;
  for (const [name, v] of [['left', left], ['right', right], ['top', top], ['bottom', bottom], ['feather', feather]] as const) {
    check(Number.isInteger(v) && v >= 0 && v <= 4096, `${name} must be an integer from 0 to 4096, got ${v}`);
  }
  check(left + right + top + bottom > 0, 'outpainting needs padding on at least one side (left, right, top or bottom)');
  const input = await loadRgb(opts.image);
  // Grow the padding so the new size is a multiple of 8: the original pixels then never get resampled.
  const growX = (8 - ((input.width + left + right) % 8)) % 8;
  const growY = (8 - ((input.height + top + bottom) % 8)) % 8;
  if (right || !left) right += growX; else left += growX;
  if (bottom || !top) bottom += growY; else top += growY;
  const padded = padForOutpaint(input, left, top, right, bottom, feather);
  return inpaint(model, {
    ...opts,
    image: padded.image,
    mask: padded.mask,
    width: opts.width ?? padded.image.width,
    height: opts.height ?? padded.image.height,
    strength: opts.strength ?? 1,
    maskBlur: opts.maskBlur ?? 0,
    maskedContent: opts.maskedContent ?? 'fill',
    inpaintArea: 'whole',
  });
}
