// The weight update of each LoRA-family module type, as the published loaders compute it
// (A1111 extensions-builtin/Lora/network_*.py, ComfyUI comfy/weight_adapter/*, LyCORIS):
//
//   LoRA / LoCon   ΔW = (α/r) · up · down            (conv: down [r, in, kh, kw], up [out, r, 1, 1])
//   LoRA + mid     ΔW = (α/r) · Σ mid[n,m,k,l] up[i,n] down[m,j]         (Tucker conv, `lora_mid`)
//   LoHa           ΔW = (α/r) · (w1a·w1b) ⊙ (w2a·w2b)  (Tucker: t1/t2 rebuild each factor, r = w1b rows)
//   LoKr           ΔW = (α/r) · w1 ⊗ w2               (each factor whole or a·b; r from w1b or w2b, else scale 1)
//   (IA)³          ΔW = W ⊙ w                         (w per output row, or per input column when on_input)
//   full diff      ΔW = diff, Δb = diff_b
//   DoRA           W' = W + s·(V·m/‖V‖ − W), V = W + ΔW  (norm per input column, or per output row
//                  when dora_scale has one entry per row)
//
// Everything here is float32-in, float64-accumulated, float32-out on the host.

export type Mat = { readonly data: Float32Array; readonly shape: readonly number[] };

export const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** a [m, k] · b [k, n] → [m, n], with the i-k-j loop order that streams both operands. */
export function matmul(a: Float32Array, b: Float32Array, m: number, k: number, n: number): Float32Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const row = i * n;
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      if (av === 0) continue;
      const bo = p * n;
      for (let j = 0; j < n; j++) out[row + j] += av * b[bo + j];
    }
  }
  return Float32Array.from(out);
}

/** up [out, r, …1] · down [r, rest…] → [out, rest…]: the conventional rebuild for linear and conv layers. */
export function upDown(up: Mat, down: Mat): Mat {
  const out = up.shape[0];
  const r = up.shape.length > 1 ? up.shape[1] : 1;
  const rest = numel(down.shape) / down.shape[0];
  if (down.shape[0] !== r) throw new Error(`rank mismatch: up is [${up.shape.join(', ')}] but down is [${down.shape.join(', ')}]`);
  if (numel(up.shape) !== out * r) throw new Error(`up has shape [${up.shape.join(', ')}]; only 1×1 up projections are defined`);
  return { data: matmul(up.data, down.data, out, r, rest), shape: [out, ...down.shape.slice(1)] };
}

/**
 * Tucker rebuild: out[p, q, k, l] = Σ_{i,j} t[i, j, k, l] · a[i, p] · b[j, q].
 * `a` is [r1, out] and `b` [r2, in] as LyCORIS stores them next to a core (hada_t*, lokr_t2).
 */
export function tucker(t: Mat, a: Mat, b: Mat): Mat {
  const [r1, r2] = t.shape;
  const kk = numel(t.shape) / (r1 * r2);
  const outD = numel(a.shape) / r1;
  const inD = numel(b.shape) / r2;
  if (a.shape[0] !== r1 || b.shape[0] !== r2) {
    throw new Error(`Tucker core [${t.shape.join(', ')}] does not fit factors [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
  }
  // temp[i, q, kk] = Σ_j t[i, j, kk] · b[j, q]
  const temp = new Float64Array(r1 * inD * kk);
  for (let i = 0; i < r1; i++) {
    for (let j = 0; j < r2; j++) {
      for (let q = 0; q < inD; q++) {
        const bv = b.data[j * inD + q];
        if (bv === 0) continue;
        const to = (i * inD + q) * kk;
        const tt = (i * r2 + j) * kk;
        for (let s = 0; s < kk; s++) temp[to + s] += t.data[tt + s] * bv;
      }
    }
  }
  const out = new Float64Array(outD * inD * kk);
  for (let i = 0; i < r1; i++) {
    for (let p = 0; p < outD; p++) {
      const av = a.data[i * outD + p];
      if (av === 0) continue;
      const oo = p * inD * kk;
      const to = i * inD * kk;
      for (let s = 0; s < inD * kk; s++) out[oo + s] += av * temp[to + s];
    }
  }
  return { data: Float32Array.from(out), shape: [outD, inD, ...t.shape.slice(2)] };
}

/** kohya's Tucker conv: mid [r, r, kh, kw] between down [r, in, 1, 1] and up [out, r, 1, 1]. */
export function loraMid(up: Mat, down: Mat, mid: Mat): Mat {
  const out = up.shape[0];
  const r = numel(up.shape) / out;
  const inD = numel(down.shape) / down.shape[0];
  // In the Tucker form the up factor is stored transposed ([r, out]) compared with LoRA's [out, r].
  const upT = new Float32Array(r * out);
  for (let i = 0; i < out; i++) for (let n = 0; n < r; n++) upT[n * out + i] = up.data[i * r + n];
  return tucker(mid, { data: upT, shape: [r, out] }, { data: down.data, shape: [down.shape[0], inD] });
}

/** Kronecker product of w1 [a, b] and w2 [c, d, …k] → [a·c, b·d, …k] (w1 broadcast over the kernel). */
export function kron(w1: Mat, w2: Mat): Mat {
  const [a, b] = w1.shape;
  const [c, d] = w2.shape;
  const kk = numel(w2.shape) / (c * d);
  const out = new Float32Array(a * c * b * d * kk);
  const cols = b * d;
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) {
      const s = w1.data[i * b + j];
      if (s === 0) continue;
      for (let p = 0; p < c; p++) {
        for (let q = 0; q < d; q++) {
          const src = (p * d + q) * kk;
          const dst = ((i * c + p) * cols + (j * d + q)) * kk;
          for (let t = 0; t < kk; t++) out[dst + t] = s * w2.data[src + t];
        }
      }
    }
  }
  return { data: out, shape: [a * c, b * d, ...w2.shape.slice(2)] };
}

export function hadamard(x: Mat, y: Mat): Mat {
  if (x.data.length !== y.data.length) throw new Error(`LoHa factors rebuild to [${x.shape.join(', ')}] and [${y.shape.join(', ')}]`);
  return { data: x.data.map((v, i) => v * y.data[i]), shape: x.shape };
}

/** (IA)³: W ⊙ w, w per output row (default) or per input column (`on_input`). */
export function ia3Delta(w: Float32Array, wShape: readonly number[], scale: Float32Array, onInput: boolean): Float32Array {
  const out = wShape[0];
  const inner = w.length / out;
  const d = new Float32Array(w.length);
  if (!onInput) {
    for (let o = 0; o < out; o++) for (let i = 0; i < inner; i++) d[o * inner + i] = w[o * inner + i] * scale[o];
  } else {
    const cin = wShape[1];
    const kk = inner / cin;
    for (let o = 0; o < out; o++) for (let c = 0; c < cin; c++) for (let s = 0; s < kk; s++) {
      const at = (o * cin + c) * kk + s;
      d[at] = w[at] * scale[c];
    }
  }
  return d;
}

const F32_EPS = 1.1920928955078125e-7;

/**
 * DoRA, applied to `w` in place. `delta` is the already-scaled (α/r) update. The norm runs over the
 * merged weight V = W + ΔW, per input column for LyCORIS' dora_scale [1, in, …] or per output row
 * when dora_scale has one entry per row; float32 epsilon as ComfyUI adds it; `strength` scales the
 * resulting change, as ComfyUI applies it.
 */
export function applyDora(w: Float32Array, shape: readonly number[], delta: Float32Array, doraScale: Mat, strength: number): void {
  const out = shape[0];
  const cin = shape[1] ?? 1;
  const kk = w.length / (out * cin);
  const v = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) v[i] = w[i] + delta[i];
  const m = doraScale.data;
  // ComfyUI's test: the scale lies along the output axis when its first dimension is the row count.
  if (doraScale.shape[0] === out && out !== 1) {
    if (m.length !== out) throw new Error(`dora_scale [${doraScale.shape.join(', ')}] does not fit a weight with ${out} rows`);
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0; i < cin * kk; i++) s += v[o * cin * kk + i] ** 2;
      const f = m[o] / (Math.sqrt(s) + F32_EPS);
      for (let i = 0; i < cin * kk; i++) {
        const at = o * cin * kk + i;
        w[at] += strength * (v[at] * f - w[at]);
      }
    }
    return;
  }
  if (m.length !== cin) throw new Error(`dora_scale [${doraScale.shape.join(', ')}] fits neither the ${out} rows nor the ${cin} columns of the weight`);
  const norm = new Float64Array(cin);
  for (let o = 0; o < out; o++) for (let c = 0; c < cin; c++) for (let s = 0; s < kk; s++) norm[c] += v[(o * cin + c) * kk + s] ** 2;
  for (let c = 0; c < cin; c++) norm[c] = m[c] / (Math.sqrt(norm[c]) + F32_EPS);
  for (let o = 0; o < out; o++) for (let c = 0; c < cin; c++) for (let s = 0; s < kk; s++) {
    const at = (o * cin + c) * kk + s;
    w[at] += strength * (v[at] * norm[c] - w[at]);
  }
}
