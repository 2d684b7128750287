// The values that flow along a workflow's links, by ComfyUI type name. Models are views that share
// sessions with what they came from, so a LoRA-patched MODEL and its base cost one load.
import type { UpscalerModel } from '../pipelines/upscale.js';
import type { StableDiffusionModel } from '../models/sd-model.js';
import type { VaeModel } from '../models/vae-model.js';
import type { ComfyConditioning } from '../pipelines/comfy-conditioning.js';
import type { EmbeddingLibrary } from '../adapters/textual-inversion.js';
import type { ClipTokenizer } from '../text/clip-tokenizer.js';
import type { ImageBatch, MaskBatch } from './types.js';

/** MODEL: the diffusion model (a checkpoint, possibly LoRA / hypernetwork patched). */
export interface ModelValue {
  readonly sd: StableDiffusionModel;
}

/** CLIP: the text encoder of a checkpoint, with ComfyUI's layer choice and the embeddings folder. */
export interface ClipValue {
  readonly sd: StableDiffusionModel;
  /** A1111-style clip skip: 1 = last layer (`stop_at_clip_layer` −1), 2 = penultimate, … */
  readonly clipSkip: number;
  readonly tokenizer: ClipTokenizer;
  readonly embeddings?: EmbeddingLibrary;
}

/** VAE: a checkpoint's own VAE or a separate file. */
export type VaeValue = Pick<StableDiffusionModel | VaeModel, 'decode' | 'encode' | 'scaleFactor' | 'latentChannels'>;

/** LATENT: unscaled VAE latents [B, C, h, w] (the sampler multiplies by the scale factor itself), as in ComfyUI. */
export interface LatentValue {
  readonly samples: Float32Array;
  readonly shape: readonly [number, number, number, number];
  /** Where to denoise (1) and keep (0), any resolution: SetLatentNoiseMask, VAEEncodeForInpaint. */
  readonly noiseMask?: MaskBatch;
  /** Which images of a larger batch these are (LatentFromBatch): noise is drawn as for the whole batch. */
  readonly batchIndex?: readonly number[];
}

export type { ComfyConditioning as ConditioningValue, ImageBatch as ImageValue, MaskBatch as MaskValue };
export type UpscaleModelValue = UpscalerModel;
