// Mask handling as A1111 does it (modules/processing.py `StableDiffusionProcessingImg2Img.init`,
// modules/masking.py): Gaussian mask blur, inversion, the "only masked" crop region, the "fill"
// masked-content pre-fill, paste-back through an overlay, and the resampling filters that take a mask
// (or a latent) to another size.
import type { RasterImage } from './image-input.js';

const u8 = (v: number) => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

/** 255 − m. */
export function invertMask(mask: RasterImage): RasterImage {
  return { ...mask, data: Uint8Array.from(mask.data, (v) => 255 - v) };
}

/** cv2.getGaussianKernel for an explicit σ. */
function gaussianKernel(size: number, sigma: number): Float64Array {
  const k = new Float64Array(size);
  const c = (size - 1) / 2;
  let sum = 0;
  for (let i = 0; i < size; i++) {
    k[i] = Math.exp((-0.5 * (i - c) * (i - c)) / (sigma * sigma));
    sum += k[i];
  }
  for (let i = 0; i < size; i++) k[i] /= sum;
  return k;
}

/** OpenCV's default border (BORDER_REFLECT_101: gfedcb|abcdefgh|gfedcba). */
function reflect101(i: number, n: number): number {
  if (n === 1) return 0;
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * n - 2 - i;
  return i;
}

/** One cv2.GaussianBlur pass along x or y on an 8-bit plane, rounded back to 8 bits. */
function blurPass(src: Uint8Array, w: number, h: number, sigma: number, alongX: boolean): Uint8Array {
  const size = 2 * Math.floor(2.5 * sigma + 0.5) + 1;
  const k = gaussianKernel(size, sigma);
  const r = (size - 1) / 2;
  const out = new Uint8Array(src.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      let acc = 0;
      for (let j = -r; j <= r; j++) {
        acc += k[j + r] * (alongX ? src[y * w + reflect101(x + j, w)] : src[reflect101(y + j, h) * w + x]);
      }
      out[y * w + x] = u8(acc);
    }
  }
  return out;
}

/**
 * A1111's mask blur: `cv2.GaussianBlur` with a (2·⌊2.5σ + 0.5⌋ + 1)-tap kernel, first along x, then
 * along y, each pass rounded to 8 bits. OpenCV's 8-bit path uses fixed-point kernels, so values can
 * differ from it by one level.
 */
export function blurMask(mask: RasterImage, blurX: number, blurY = blurX): RasterImage {
  let data = mask.data;
  if (blurX > 0) data = blurPass(data, mask.width, mask.height, blurX, true);
  if (blurY > 0) data = blurPass(data, mask.width, mask.height, blurY, false);
  return { ...mask, data };
}

/** Half-width of the blur's reach: pixels further than this from the mask keep a blurred value of 0. */
export function blurReach(blur: number): number {
  return blur > 0 ? Math.floor(2.5 * blur + 0.5) : 0;
}

export type Box = readonly [x1: number, y1: number, x2: number, y2: number];

/** Bounding box of the non-zero pixels ([x1, x2) × [y1, y2), as PIL's getbbox), or undefined for an empty mask. */
export function maskBoundingBox(mask: RasterImage): Box | undefined {
  let x1 = Infinity;
  let y1 = Infinity;
  let x2 = -1;
  let y2 = -1;
  for (let y = 0; y < mask.height; y++) {
    for (let x = 0; x < mask.width; x++) {
      if (mask.data[y * mask.width + x] === 0) continue;
      x1 = Math.min(x1, x); y1 = Math.min(y1, y); x2 = Math.max(x2, x + 1); y2 = Math.max(y2, y + 1);
    }
  }
  return x2 < 0 ? undefined : [x1, y1, x2, y2];
}

/** masking.get_crop_region_v2: the bounding box grown by `pad` on every side, clipped to the image. */
export function cropRegion(mask: RasterImage, pad: number): Box | undefined {
  const box = maskBoundingBox(mask);
  if (!box || !pad) return box;
  return [Math.max(box[0] - pad, 0), Math.max(box[1] - pad, 0), Math.min(box[2] + pad, mask.width), Math.min(box[3] + pad, mask.height)];
}

/** masking.expand_crop_region: grows the region to the processing size's aspect ratio, shifting it back inside the image. */
export function expandCropRegion(box: Box, width: number, height: number, imageWidth: number, imageHeight: number): Box {
  let [x1, y1, x2, y2] = box;
  const ratioCrop = (x2 - x1) / (y2 - y1);
  const ratioProcessing = width / height;
  if (ratioCrop > ratioProcessing) {
    const desired = (x2 - x1) / ratioProcessing;
    const diff = Math.trunc(desired - (y2 - y1));
    y1 -= Math.floor(diff / 2);
    y2 += diff - Math.floor(diff / 2);
    if (y2 >= imageHeight) { const d = y2 - imageHeight; y2 -= d; y1 -= d; }
    if (y1 < 0) { y2 -= y1; y1 = 0; }
    if (y2 >= imageHeight) y2 = imageHeight;
  } else {
    const desired = (y2 - y1) * ratioProcessing;
    const diff = Math.trunc(desired - (x2 - x1));
    x1 -= Math.floor(diff / 2);
    x2 += diff - Math.floor(diff / 2);
    if (x2 >= imageWidth) { const d = x2 - imageWidth; x2 -= d; x1 -= d; }
    if (x1 < 0) { x2 -= x1; x1 = 0; }
    if (x2 >= imageWidth) x2 = imageWidth;
  }
  return [x1, y1, x2, y2];
}

/** PIL's box-blur radius for a 3-pass Gaussian of the given radius (BoxBlur.c `_gaussian_blur_radius`). */
function boxRadius(radius: number, passes: number): number {
  const sigma2 = (radius * radius) / passes;
  const L = Math.sqrt(12 * sigma2 + 1);
  const l = Math.floor((L - 1) / 2);
  const a = ((2 * l + 1) * (l * (l + 1) - 3 * sigma2)) / (6 * (sigma2 - (l + 1) * (l + 1)));
  return l + a;
}

/** One fractional box blur along a line of `n` samples with stride, edges extended (PIL ImagingLineBoxBlur). */
function boxLine(src: Float64Array, dst: Float64Array, n: number, offset: number, stride: number, radius: number): void {
  const l = Math.floor(radius);
  const frac = radius - l;
  const norm = 2 * radius + 1;
  const at = (i: number) => src[offset + Math.min(Math.max(i, 0), n - 1) * stride];
  let sum = 0;
  for (let j = -l; j <= l; j++) sum += at(j);
  for (let i = 0; i < n; i++) {
    dst[offset + i * stride] = (sum + frac * (at(i - l - 1) + at(i + l + 1))) / norm;
    sum += at(i + l + 1) - at(i - l);
  }
}

/** PIL ImageFilter.GaussianBlur(radius) on float planes [C, H, W]: three box-blur passes per axis. */
function pilGaussianBlur(planes: Float64Array, c: number, w: number, h: number, radius: number): Float64Array {
  if (radius <= 0) return planes;
  const r = boxRadius(radius, 3);
  let a = Float64Array.from(planes);
  let b = new Float64Array(a.length);
  for (let pass = 0; pass < 3; pass++) {
    for (let ch = 0; ch < c; ch++) for (let y = 0; y < h; y++) boxLine(a, b, w, ch * w * h + y * w, 1, r);
    [a, b] = [b, a];
  }
  for (let pass = 0; pass < 3; pass++) {
    for (let ch = 0; ch < c; ch++) for (let x = 0; x < w; x++) boxLine(a, b, h, ch * w * h + x, w, r);
    [a, b] = [b, a];
  }
  return a;
}

/**
 * A1111's "fill" masked content (masking.fill): the unmasked pixels, blurred at radii 256 … 2 and
 * layered, bleed their colours into the masked area; unmasked pixels stay as they were.
 */
export function fillMasked(image: RasterImage, mask: RasterImage): RasterImage {
  const { width: w, height: h } = image;
  const n = w * h;
  // Premultiplied RGBa with alpha = 255 − mask, as PIL's paste through the inverted mask makes it.
  const pre = new Float64Array(4 * n);
  for (let i = 0; i < n; i++) {
    const a = (255 - mask.data[i]) / 255;
    for (let c = 0; c < 3; c++) pre[c * n + i] = image.data[i * 3 + c] * a;
    pre[3 * n + i] = 255 * a;
  }
  const outC = new Float64Array(3 * n);
  const outA = new Float64Array(n);
  for (const [radius, repeats] of [[256, 1], [64, 1], [16, 2], [4, 4], [2, 2], [0, 1]] as const) {
    const bl = pilGaussianBlur(pre, 4, w, h, radius);
    for (let rep = 0; rep < repeats; rep++) {
      for (let i = 0; i < n; i++) {
        const sa = bl[3 * n + i] / 255;
        if (sa <= 0) continue;
        const da = outA[i];
        const oa = sa + da * (1 - sa);
        for (let c = 0; c < 3; c++) {
          const sc = Math.min(255, bl[c * n + i] / sa);
          outC[c * n + i] = (sc * sa + outC[c * n + i] * da * (1 - sa)) / oa;
        }
        outA[i] = oa;
      }
    }
  }
  const data = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = u8(outC[c * n + i]);
  return { width: w, height: h, channels: 3, data };
}

/**
 * Paste-back through A1111's overlay (processing.apply_overlay): the original shows through where
 * the overlay mask is 0, the generated pixels where it is 255, blended in between. `generated` must
 * already be at the original's size and position.
 */
export function pasteBack(generated: RasterImage, original: RasterImage, overlayMask: RasterImage): RasterImage {
  const n = original.width * original.height;
  const data = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    const a = (255 - overlayMask.data[i]) / 255;
    for (let c = 0; c < 3; c++) data[i * 3 + c] = u8(original.data[i * 3 + c] * a + generated.data[i * 3 + c] * (1 - a));
  }
  return { width: original.width, height: original.height, channels: 3, data };
}

/** Places `crop` into a copy of `base` at (x, y). */
export function placeInto(base: RasterImage, crop: RasterImage, x: number, y: number): RasterImage {
  const out = { ...base, data: Uint8Array.from(base.data) };
  const c = base.channels;
  for (let row = 0; row < crop.height; row++) {
    out.data.set(crop.data.subarray(row * crop.width * c, (row + 1) * crop.width * c), ((y + row) * base.width + x) * c);
  }
  return out;
}

// ---------------------------------------------------------------- resampling

export type LatentResize = 'nearest' | 'nearest-exact' | 'bilinear' | 'bicubic';

/** One axis of torch.nn.functional.interpolate (align_corners=False): for each output index, taps and weights. */
type Taps = { idx: Int32Array; w: Float64Array; n: number };

function torchTaps(inSize: number, outSize: number, mode: LatentResize): Taps[] {
  const scale = Math.fround(inSize / outSize);
  const taps: Taps[] = [];
  for (let o = 0; o < outSize; o++) {
    if (mode === 'nearest' || mode === 'nearest-exact') {
      const src = Math.min(Math.floor(Math.fround((mode === 'nearest' ? o : o + 0.5) * scale)), inSize - 1);
      taps.push({ idx: Int32Array.of(src), w: Float64Array.of(1), n: 1 });
    } else if (mode === 'bilinear') {
      const src = Math.max(Math.fround(Math.fround(scale * (o + 0.5)) - 0.5), 0);
      const i0 = Math.floor(src);
      const i1 = Math.min(i0 + 1, inSize - 1);
      const l = src - i0;
      taps.push({ idx: Int32Array.of(i0, i1), w: Float64Array.of(1 - l, l), n: 2 });
    } else {
      const src = Math.fround(Math.fround(scale * (o + 0.5)) - 0.5);
      const i = Math.floor(src);
      const t = src - i;
      const A = -0.75;
      const c1 = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1;
      const c2 = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
      const w = Float64Array.of(c2(t + 1), c1(t), c1(1 - t), c2(2 - t));
      const clamp = (k: number) => Math.min(Math.max(k, 0), inSize - 1);
      taps.push({ idx: Int32Array.of(clamp(i - 1), clamp(i), clamp(i + 1), clamp(i + 2)), w, n: 4 });
    }
  }
  return taps;
}

/**
 * PIL's convolution resampler (and torch's antialiased interpolate, which copies it): the filter is
 * stretched by the downscale factor so every input pixel contributes. Triangle = bilinear, cubic with
 * a = −0.5 = PIL BICUBIC / torch bicubic antialias.
 */
function convolutionTaps(inSize: number, outSize: number, filter: 'triangle' | 'cubic'): Taps[] {
  const scale = inSize / outSize;
  const fscale = Math.max(scale, 1);
  const support = (filter === 'triangle' ? 1 : 2) * fscale;
  const f = filter === 'triangle'
    ? (x: number) => Math.max(0, 1 - Math.abs(x))
    : (x: number) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    };
  const taps: Taps[] = [];
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    const n = xmax - xmin;
    const idx = new Int32Array(n);
    const w = new Float64Array(n);
    let sum = 0;
    for (let j = 0; j < n; j++) {
      idx[j] = xmin + j;
      w[j] = f((j + xmin - center + 0.5) / fscale);
      sum += w[j];
    }
    if (sum !== 0) for (let j = 0; j < n; j++) w[j] /= sum;
    taps.push({ idx, w, n });
  }
  return taps;
}

function applyTaps(src: Float64Array, c: number, h: number, w: number, rows: Taps[], cols: Taps[]): Float64Array {
  const oh = rows.length;
  const ow = cols.length;
  const tmp = new Float64Array(c * h * ow);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      const base = ch * h * w + y * w;
      for (let x = 0; x < ow; x++) {
        const t = cols[x];
        let acc = 0;
        for (let j = 0; j < t.n; j++) acc += t.w[j] * src[base + t.idx[j]];
        tmp[ch * h * ow + y * ow + x] = acc;
      }
    }
  }
  const out = new Float64Array(c * oh * ow);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < oh; y++) {
      const t = rows[y];
      for (let x = 0; x < ow; x++) {
        let acc = 0;
        for (let j = 0; j < t.n; j++) acc += t.w[j] * tmp[ch * h * ow + t.idx[j] * ow + x];
        out[ch * oh * ow + y * ow + x] = acc;
      }
    }
  }
  return out;
}

/**
 * torch.nn.functional.interpolate on planes [N, H, W] (align_corners=False). `antialias` switches
 * bilinear / bicubic to torch's antialiased kernels (PIL-style; bicubic then uses a = −0.5).
 */
export function interpolate(src: ArrayLike<number>, planes: number, h: number, w: number, oh: number, ow: number, mode: LatentResize, antialias = false): Float64Array {
  const data = Float64Array.from(src);
  if (antialias && (mode === 'bilinear' || mode === 'bicubic')) {
    const f = mode === 'bilinear' ? 'triangle' : 'cubic';
    return applyTaps(data, planes, h, w, convolutionTaps(h, oh, f), convolutionTaps(w, ow, f));
  }
  return applyTaps(data, planes, h, w, torchTaps(h, oh, mode), torchTaps(w, ow, mode));
}

/** PIL `Image.resize(size)` of an 8-bit mask with its default filter (BICUBIC), as A1111 shrinks the mask to latent size. */
export function pilResizeMask(mask: RasterImage, width: number, height: number): Float64Array {
  const out = applyTaps(Float64Array.from(mask.data), 1, mask.height, mask.width, convolutionTaps(mask.height, height, 'cubic'), convolutionTaps(mask.width, width, 'cubic'));
  return out.map((v) => u8(v));
}
