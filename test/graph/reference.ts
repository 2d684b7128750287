// Plain TypeScript reference implementations (float64 arithmetic, NCHW, row-major), written to be
// obviously correct rather than fast. The compiled graphs are checked against these.

export interface Arr {
  shape: number[];
  data: Float64Array;
}

export function arr(shape: number[], data: ArrayLike<number>): Arr {
  return { shape: [...shape], data: Float64Array.from(data) };
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Deterministic uniform(-1, 1) numbers (mulberry32), so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

export function random(shape: number[], seed: number, scale = 1): Arr {
  const r = rng(seed);
  return arr(shape, Array.from({ length: numel(shape) }, () => r() * scale));
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

export function map(a: Arr, f: (x: number) => number): Arr {
  return { shape: [...a.shape], data: a.data.map(f) };
}

/** Element-wise binary op with numpy broadcasting. */
export function broadcast(a: Arr, b: Arr, f: (x: number, y: number) => number): Arr {
  const n = Math.max(a.shape.length, b.shape.length);
  const pa = [...new Array(n - a.shape.length).fill(1), ...a.shape];
  const pb = [...new Array(n - b.shape.length).fill(1), ...b.shape];
  const shape = pa.map((d, i) => Math.max(d, pb[i]));
  const sa = strides(pa).map((s, i) => (pa[i] === 1 ? 0 : s));
  const sb = strides(pb).map((s, i) => (pb[i] === 1 ? 0 : s));
  const so = strides(shape);
  const out = new Float64Array(numel(shape));
  for (let k = 0; k < out.length; k++) {
    let ia = 0;
    let ib = 0;
    let rem = k;
    for (let i = 0; i < n; i++) {
      const idx = Math.floor(rem / so[i]);
      rem -= idx * so[i];
      ia += idx * sa[i];
      ib += idx * sb[i];
    }
    out[k] = f(a.data[ia], b.data[ib]);
  }
  return { shape, data: out };
}

export function conv2d(
  x: Arr, w: Arr, b: Arr | undefined,
  o: { stride?: [number, number]; pads?: [number, number, number, number]; dilation?: [number, number]; groups?: number } = {},
): Arr {
  const [n, c, h, wd] = x.shape;
  const [oc, icg, kh, kw] = w.shape;
  const [sh, sw] = o.stride ?? [1, 1];
  const [pt, pl, pb, pr] = o.pads ?? [0, 0, 0, 0];
  const [dh, dw] = o.dilation ?? [1, 1];
  const g = o.groups ?? 1;
  const oh = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((wd + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  const out = new Float64Array(n * oc * oh * ow);
  const ocg = oc / g;
  for (let bi = 0; bi < n; bi++)
    for (let co = 0; co < oc; co++) {
      const grp = Math.floor(co / ocg);
      for (let y = 0; y < oh; y++)
        for (let xx = 0; xx < ow; xx++) {
          let s = b ? b.data[co] : 0;
          for (let ci = 0; ci < icg; ci++) {
            const cin = grp * icg + ci;
            for (let ky = 0; ky < kh; ky++) {
              const iy = y * sh - pt + ky * dh;
              if (iy < 0 || iy >= h) continue;
              for (let kx = 0; kx < kw; kx++) {
                const ix = xx * sw - pl + kx * dw;
                if (ix < 0 || ix >= wd) continue;
                s += x.data[((bi * c + cin) * h + iy) * wd + ix] * w.data[((co * icg + ci) * kh + ky) * kw + kx];
              }
            }
          }
          out[((bi * oc + co) * oh + y) * ow + xx] = s;
        }
    }
  return { shape: [n, oc, oh, ow], data: out };
}

/** Batched matmul over the last two axes, batch dims broadcast. */
export function matmul(a: Arr, b: Arr): Arr {
  const m = a.shape[a.shape.length - 2];
  const k = a.shape[a.shape.length - 1];
  const nn = b.shape[b.shape.length - 1];
  const ba = a.shape.slice(0, -2);
  const bb = b.shape.slice(0, -2);
  // Use broadcast over a dummy element to get the batch shape and index maps.
  const batchShape = broadcast(arr(ba, new Array(numel(ba)).fill(0)), arr(bb, new Array(numel(bb)).fill(0)), () => 0).shape;
  const nb = numel(batchShape);
  const idxA = broadcast(arr(ba, Array.from({ length: numel(ba) }, (_, i) => i)), arr(batchShape, new Array(nb).fill(0)), (x) => x).data;
  const idxB = broadcast(arr(bb, Array.from({ length: numel(bb) }, (_, i) => i)), arr(batchShape, new Array(nb).fill(0)), (x) => x).data;
  const out = new Float64Array(nb * m * nn);
  for (let bi = 0; bi < nb; bi++) {
    const oa = idxA[bi] * m * k;
    const ob = idxB[bi] * k * nn;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < nn; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) s += a.data[oa + i * k + t] * b.data[ob + t * nn + j];
        out[(bi * m + i) * nn + j] = s;
      }
  }
  return { shape: [...batchShape, m, nn], data: out };
}

export function transpose(a: Arr, perm: number[]): Arr {
  const shape = perm.map((p) => a.shape[p]);
  const sIn = strides(a.shape);
  const sOut = strides(shape);
  const out = new Float64Array(a.data.length);
  for (let k = 0; k < out.length; k++) {
    let rem = k;
    let src = 0;
    for (let i = 0; i < shape.length; i++) {
      const idx = Math.floor(rem / sOut[i]);
      rem -= idx * sOut[i];
      src += idx * sIn[perm[i]];
    }
    out[k] = a.data[src];
  }
  return { shape, data: out };
}

/** torch.nn.Linear: y = x·Wᵀ + b with W [out, in]. */
export function linear(x: Arr, w: Arr, b?: Arr): Arr {
  const y = matmul(x, transpose(w, [1, 0]));
  return b ? broadcast(y, b, (p, q) => p + q) : y;
}

export function groupNorm(x: Arr, groups: number, w: Arr, b: Arr, eps: number): Arr {
  const [n, c] = x.shape;
  const sp = numel(x.shape.slice(2));
  const cg = c / groups;
  const out = new Float64Array(x.data.length);
  for (let bi = 0; bi < n; bi++)
    for (let g = 0; g < groups; g++) {
      const start = (bi * c + g * cg) * sp;
      const len = cg * sp;
      let mean = 0;
      for (let i = 0; i < len; i++) mean += x.data[start + i];
      mean /= len;
      let v = 0;
      for (let i = 0; i < len; i++) v += (x.data[start + i] - mean) ** 2;
      v /= len;
      const inv = 1 / Math.sqrt(v + eps);
      for (let i = 0; i < len; i++) {
        const ch = g * cg + Math.floor(i / sp);
        out[start + i] = (x.data[start + i] - mean) * inv * w.data[ch] + b.data[ch];
      }
    }
  return { shape: [...x.shape], data: out };
}

export function layerNorm(x: Arr, w: Arr, b: Arr | undefined, eps: number): Arr {
  const c = x.shape[x.shape.length - 1];
  const rows = x.data.length / c;
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < c; i++) mean += x.data[r * c + i];
    mean /= c;
    let v = 0;
    for (let i = 0; i < c; i++) v += (x.data[r * c + i] - mean) ** 2;
    v /= c;
    const inv = 1 / Math.sqrt(v + eps);
    for (let i = 0; i < c; i++) out[r * c + i] = (x.data[r * c + i] - mean) * inv * w.data[i] + (b ? b.data[i] : 0);
  }
  return { shape: [...x.shape], data: out };
}

/** Softmax over the last axis. */
export function softmax(x: Arr): Arr {
  const c = x.shape[x.shape.length - 1];
  const out = new Float64Array(x.data.length);
  for (let r = 0; r < x.data.length / c; r++) {
    let m = -Infinity;
    for (let i = 0; i < c; i++) m = Math.max(m, x.data[r * c + i]);
    let s = 0;
    for (let i = 0; i < c; i++) s += (out[r * c + i] = Math.exp(x.data[r * c + i] - m));
    for (let i = 0; i < c; i++) out[r * c + i] /= s;
  }
  return { shape: [...x.shape], data: out };
}

/** Multi-head attention on [B, S, H·D] inputs, as SD's CrossAttention computes it. */
export function attention(q: Arr, k: Arr, v: Arr, heads: number, scale?: number): Arr {
  const [bq, s, dq] = q.shape;
  const [bk, l] = k.shape;
  const dv = v.shape[2];
  const b = Math.max(bq, bk);
  const d = dq / heads;
  const e = dv / heads;
  const sc = scale ?? 1 / Math.sqrt(d);
  const out = new Float64Array(b * s * dv);
  for (let bi = 0; bi < b; bi++) {
    const qb = bq === 1 ? 0 : bi;
    const kb = bk === 1 ? 0 : bi;
    for (let h = 0; h < heads; h++)
      for (let i = 0; i < s; i++) {
        const logits = new Float64Array(l);
        for (let j = 0; j < l; j++) {
          let dot = 0;
          for (let t = 0; t < d; t++) dot += q.data[(qb * s + i) * dq + h * d + t] * k.data[(kb * l + j) * dq + h * d + t];
          logits[j] = dot * sc;
        }
        const p = softmax({ shape: [l], data: logits }).data;
        for (let t = 0; t < e; t++) {
          let acc = 0;
          for (let j = 0; j < l; j++) acc += p[j] * v.data[(kb * l + j) * dv + h * e + t];
          out[(bi * s + i) * dv + h * e + t] = acc;
        }
      }
  }
  return { shape: [b, s, dv], data: out };
}

export function erf(x: number): number {
  // Abramowitz–Stegun 7.1.26 is too coarse for 1e-6 checks; integrate the series / continued fraction instead.
  const ax = Math.abs(x);
  let r: number;
  if (ax < 2.5) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 60; n++) {
      term *= (-ax * ax) / n;
      sum += term / (2 * n + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc continued fraction
    let f = 0;
    for (let n = 60; n >= 1; n--) f = (n / 2) / (ax + f);
    r = 1 - Math.exp(-ax * ax) / Math.sqrt(Math.PI) / (ax + f);
  }
  return x < 0 ? -r : r;
}

export const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
export const silu = (x: number) => x * sigmoid(x);
export const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
export const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
export const quickGelu = (x: number) => x * sigmoid(1.702 * x);

export function upsampleNearest(x: Arr, s: number): Arr {
  const [n, c, h, w] = x.shape;
  const out = new Float64Array(n * c * h * s * w * s);
  for (let p = 0; p < n * c; p++)
    for (let y = 0; y < h * s; y++)
      for (let xx = 0; xx < w * s; xx++) out[(p * h * s + y) * w * s + xx] = x.data[(p * h + Math.floor(y / s)) * w + Math.floor(xx / s)];
  return { shape: [n, c, h * s, w * s], data: out };
}

/** Worst error relative to the reference's largest magnitude. */
export function relError(got: ArrayLike<number>, want: Arr): number {
  if (got.length !== want.data.length) throw new Error(`length ${got.length} vs ${want.data.length}`);
  let maxRef = 0;
  let maxDiff = 0;
  for (let i = 0; i < got.length; i++) {
    maxRef = Math.max(maxRef, Math.abs(want.data[i]));
    const d = Math.abs(got[i] - want.data[i]);
    if (!(d <= maxDiff)) maxDiff = Number.isNaN(d) ? Infinity : d;
  }
  return maxRef === 0 ? maxDiff : maxDiff / maxRef;
}
