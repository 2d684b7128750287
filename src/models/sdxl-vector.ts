// SDXL's vector conditioning `y` (sgm GeneralConditioner's "vector" output, ComfyUI's `encode_adm`):
// the OpenCLIP-G pooled text embedding followed by a 256-wide sinusoidal embedding of each size
// number. The base embeds original size, crop and target size; the refiner original size, crop and
// an aesthetic score. Every pair is height before width, top before left, whatever the UI calls them.

/** Which vector a UNet's `label_emb` expects. */
export type AdmKind = 'sdxl' | 'sdxl-refiner';

/** The numbers of the size part, in the order they are embedded. */
export interface SdxlSizeParams {
  readonly originalHeight: number;
  readonly originalWidth: number;
  readonly cropTop: number;
  readonly cropLeft: number;
  /** Base only. */
  readonly targetHeight: number;
  readonly targetWidth: number;
  /** Refiner only. */
  readonly aestheticScore: number;
}

/** 256 numbers per size value (sgm ConcatTimestepEmbedderND(outdim=256), ComfyUI Timestep(256)). */
export const SIZE_EMBED_DIM = 256;

const f32 = Math.fround;

/**
 * timestep_embedding(v, dim) as torch computes it in float32: freqs = exp(−ln(10000)·i / half),
 * then [cos(v·f), sin(v·f)]. Sizes reach 1000s, so the rounding of each frequency matters (an ulp of
 * f times 1536 is 1e-4 of phase): every step is rounded as float32.
 */
export function sizeEmbedding(v: number, dim = SIZE_EMBED_DIM): Float32Array {
  const half = dim / 2;
  const out = new Float32Array(dim);
  const c = f32(-Math.log(10000));
  for (let i = 0; i < half; i++) {
    const freq = f32(Math.exp(f32(f32(c * i) / half)));
    const arg = f32(f32(v) * freq);
    out[i] = Math.cos(arg);
    out[half + i] = Math.sin(arg);
  }
  return out;
}

/** Width of `y` for a pooled width E: E + 6·256 (base) or E + 5·256 (refiner). */
export function admWidth(kind: AdmKind, pooledWidth: number): number {
  return pooledWidth + (kind === 'sdxl' ? 6 : 5) * SIZE_EMBED_DIM;
}

/** The numbers embedded after the pooled output, in order. */
export function sizeNumbers(kind: AdmKind, p: SdxlSizeParams): number[] {
  const common = [p.originalHeight, p.originalWidth, p.cropTop, p.cropLeft];
  return kind === 'sdxl' ? [...common, p.targetHeight, p.targetWidth] : [...common, p.aestheticScore];
}

/** y = [pooled | e(n₀) | e(n₁) | …] for one prompt. */
export function sdxlVector(kind: AdmKind, pooled: Float32Array, p: SdxlSizeParams): Float32Array {
  const numbers = sizeNumbers(kind, p);
  const out = new Float32Array(pooled.length + numbers.length * SIZE_EMBED_DIM);
  out.set(pooled);
  numbers.forEach((n, i) => out.set(sizeEmbedding(n), pooled.length + i * SIZE_EMBED_DIM));
  return out;
}
