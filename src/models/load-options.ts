// How a checkpoint is loaded: device and threads, and what the weights cannot say about themselves.
import type { RuntimeOptions } from '../runtime/session.js';
import type { Prediction } from './sd-model.js';

export interface LoadOptions extends RuntimeOptions {
  /** eps or v; read from metadata when the file says, otherwise SD1 → eps, SD2 → v. */
  readonly prediction?: Prediction;
  /** A separate VAE file that replaces the checkpoint's own. */
  readonly vae?: string;
  /**
   * Attention heads cannot be read off the weights. Defaults follow the released models
   * (SD1: 8 heads, SD2: 64-wide heads, CLIP: 64-wide heads); small custom models set them here.
   */
  readonly unetHeads?: number;
  readonly unetHeadWidth?: number;
  readonly textHeads?: number;
  /**
   * An LDM inference config for the heads and the prediction type; by default `NAME.yaml` beside the
   * checkpoint is read when it exists (A1111's convention). Explicit options win over the file.
   */
  readonly config?: string;
}
