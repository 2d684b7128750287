// The ControlNet annotator's canny: OpenCV's cv2.Canny(img, low, high) with its defaults (3×3 Sobel,
// L1 magnitude). On a colour image each channel gets its own Sobel and every pixel keeps the
// gradient of the channel with the largest magnitude (the first on ties), as OpenCV does.
// Integer arithmetic throughout, so the result is OpenCV's pixel for pixel.

// tan(22.5°) in OpenCV's 15-bit fixed point: the direction tests compare |dy|·2^15 with |dx|·TG22.
const SHIFT = 15;
const TG22 = Math.trunc((Math.SQRT2 - 1) * (1 << SHIFT) + 0.5); // 13573, as OpenCV rounds it

/** Sobel dx, dy (3×3, replicated border) of one channel of an HWC uint8 image. */
function sobel(src: Uint8Array, h: number, w: number, cn: number, c: number): { dx: Int32Array; dy: Int32Array } {
  const dx = new Int32Array(h * w);
  const dy = new Int32Array(h * w);
  const at = (y: number, x: number) => src[(Math.min(Math.max(y, 0), h - 1) * w + Math.min(Math.max(x, 0), w - 1)) * cn + c];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const a = at(y - 1, x - 1), b = at(y - 1, x), d = at(y - 1, x + 1);
      const l = at(y, x - 1), r = at(y, x + 1);
      const e = at(y + 1, x - 1), f = at(y + 1, x), g = at(y + 1, x + 1);
      dx[y * w + x] = (d + 2 * r + g) - (a + 2 * l + e);
      dy[y * w + x] = (e + 2 * f + g) - (a + 2 * b + d);
    }
  }
  return { dx, dy };
}

/**
 * cv2.Canny on an HWC uint8 image with `channels` channels; returns one uint8 channel (0 / 255).
 * Thresholds are floored to integers as OpenCV does for the L1 norm; swapped when low > high.
 */
export function canny(src: Uint8Array, height: number, width: number, channels: number, lowThreshold: number, highThreshold: number): Uint8Array {
  if (lowThreshold > highThreshold) [lowThreshold, highThreshold] = [highThreshold, lowThreshold];
  const low = Math.floor(lowThreshold);
  const high = Math.floor(highThreshold);
  const h = height, w = width, n = h * w;
  const dx = new Int32Array(n);
  const dy = new Int32Array(n);
  // Magnitudes with a zero ring around the image (OpenCV zeroes the rows and columns beyond it).
  const W = w + 2;
  const mag = new Int32Array((h + 2) * W);
  for (let c = 0; c < channels; c++) {
    const s = sobel(src, h, w, channels, c);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        const m = Math.abs(s.dx[i]) + Math.abs(s.dy[i]);
        const at = (y + 1) * W + x + 1;
        if (c === 0 || m > mag[at]) {
          mag[at] = m;
          dx[i] = s.dx[i];
          dy[i] = s.dy[i];
        }
      }
    }
  }
  // 0: may be an edge, 1: cannot be, 2: is an edge. Strong local maxima seed the hysteresis.
  const map = new Uint8Array((h + 2) * W).fill(1);
  const stack: number[] = [];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const at = (y + 1) * W + x + 1;
      const m = mag[at];
      if (m <= low) continue;
      const xs = dx[y * w + x], ys = dy[y * w + x];
      const ax = Math.abs(xs);
      const ay = Math.abs(ys) * (1 << SHIFT);
      const tg22x = ax * TG22;
      let max: boolean;
      if (ay < tg22x) max = m > mag[at - 1] && m >= mag[at + 1];
      else if (ay > tg22x + ax * (1 << (SHIFT + 1))) max = m > mag[at - W] && m >= mag[at + W];
      else {
        const s = (xs ^ ys) < 0 ? -1 : 1;
        max = m > mag[at - W - s] && m > mag[at + W + s];
      }
      if (!max) continue;
      if (m > high) {
        map[at] = 2;
        stack.push(at);
      } else map[at] = 0;
    }
  }
  const around = [-1, 1, -W - 1, -W, -W + 1, W - 1, W, W + 1];
  while (stack.length > 0) {
    const p = stack.pop()!;
    for (const d of around) {
      if (map[p + d] === 0) {
        map[p + d] = 2;
        stack.push(p + d);
      }
    }
  }
  const out = new Uint8Array(n);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[y * w + x] = map[(y + 1) * W + x + 1] === 2 ? 255 : 0;
  return out;
}
