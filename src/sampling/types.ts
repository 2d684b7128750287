// Host-side types of the sampler loop. Latents are flattened Float64Arrays (batch included): the
// samplers only do element-wise math between model calls, and float64 keeps them within the
// reference tolerance of both k-diffusion's float64 and ComfyUI's float32 runs.

/**
 * The model's denoised prediction D(x, σ) in k-diffusion's parameterisation (x = x0 + σ·ε), with
 * CFG already applied. The sampler never mutates the returned array.
 */
export type Denoiser = (x: Float64Array, sigma: number) => Promise<Float64Array>;

/** Both halves of a guided evaluation, as ComfyUI's post-CFG hook sees them. */
export interface GuidedPrediction {
  /** CFG-combined prediction (what a plain {@link Denoiser} returns). */
  denoised: Float64Array;
  /** The unconditional prediction on its own. */
  uncond: Float64Array;
}

/**
 * A denoiser that can also report the unconditional prediction. The CFG++ samplers
 * (`*_cfg_pp`) step along the uncond prediction and add the guidance separately, so they call
 * `withUncond`. Like ComfyUI with `disable_cfg1_optimization`, the uncond pass must then be
 * evaluated even at cfg 1. A plain denoiser handed to a CFG++ sampler counts as unguided
 * (uncond = denoised), which reduces each CFG++ sampler to its base method.
 */
export interface GuidedDenoiser extends Denoiser {
  withUncond: (x: Float64Array, sigma: number) => Promise<GuidedPrediction>;
}

/**
 * Standard-normal noise of the latent's size for the step σ → σ_next. Ancestral and SDE samplers
 * call it once per noise injection (k-diffusion's `noise_sampler(sigma, sigma_next)`); churn and
 * restart draws pass (σ, σ_hat). A seeded per-step Gaussian stream, a Brownian-tree-like source or
 * a recorded bank all fit this shape. The returned array is read, never written.
 */
export type NoiseSource = (sigma: number, sigmaNext: number) => Float64Array;

/** Called once per step with the state *before* the step and the model's prediction at it. */
export type ProgressCallback = (step: number, total: number, x: Float64Array, denoised: Float64Array) => void;

/**
 * Every knob the samplers take, camel-cased from the originals' keyword arguments. Each sampler
 * reads only its own and applies the original's default when one is absent.
 */
export interface SamplerOptions {
  /** Ancestral / SDE noise amount (k-diffusion `eta`; 1 for ancestral and SDE samplers, 0 for ddim). */
  eta?: number;
  /** Scale of injected noise (`s_noise`, default 1). */
  sNoise?: number;
  /** Karras churn (`s_churn`, default 0) and its σ window (`s_tmin` 0, `s_tmax` ∞). */
  sChurn?: number;
  sTmin?: number;
  sTmax?: number;
  /** Intermediate-point ratio: dpmpp_sde / seeds_2 `r` (0.5). */
  r?: number;
  /** seeds_3 intermediate points (1/3, 2/3). */
  r1?: number;
  r2?: number;
  /** lms `order` (4); ipndm / ipndm_v / deis `max_order` (4 / 4 / 3). */
  order?: number;
  /** dpmpp_2m_sde: 'midpoint' (default) or 'heun'. */
  solverType?: 'midpoint' | 'heun';
  /** gradient_estimation `ge_gamma` (2). */
  geGamma?: number;
  /** er_sde `max_stage` (3). */
  maxStage?: number;
  /** sa_solver predictor / corrector orders (3 / 4) and the simplified order-2 scheme. */
  predictorOrder?: number;
  correctorOrder?: number;
  simpleOrder2?: boolean;
  /**
   * sa_solver stochastic interval [σ_start, σ_end] where τ = eta (else 0). ComfyUI takes
   * `percent_to_sigma(0.2)` and `percent_to_sigma(0.8)` of the model's table; the default is that
   * pair for the SD1/SD2/SDXL scaled-linear table.
   */
  saTauInterval?: [number, number];
  /** dpm_adaptive settings (k-diffusion defaults: 3, 0.05, 0.0078, 0.05, 0, 1, 0, 0.81). */
  adaptiveOrder?: 2 | 3;
  rtol?: number;
  atol?: number;
  hInit?: number;
  pcoeff?: number;
  icoeff?: number;
  dcoeff?: number;
  acceptSafety?: number;
  /**
   * Final step of `lms`: ComfyUI returns `denoised` on the step to σ = 0, upstream k-diffusion
   * (and so A1111) applies the LMS update there too. Default false = ComfyUI.
   */
  lmsUpdateOnLastStep?: boolean;
  /** Restart sampler: `{ σ_min: [steps, times, σ_max] }` as in A1111; undefined = its automatic choice. */
  restartList?: Record<number, [number, number, number]>;
  /**
   * Round the sampler's scalar coefficient arithmetic to float32, as torch does on float32 σ
   * tensors. Only uni_pc reads it: its σ = 0.001 end point loses precision in float32 (1 + σ²),
   * which moves ComfyUI's float32 result by ~2e-4 relative. Latent math stays float64.
   */
  float32?: boolean;
  callback?: ProgressCallback;
}

/** The uniform signature every sampler in the registry has. */
export type Sampler = (
  model: Denoiser,
  x: Float64Array,
  sigmas: ArrayLike<number>,
  options?: SamplerOptions,
  noise?: NoiseSource,
) => Promise<Float64Array>;
