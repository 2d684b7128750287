// The public library surface.
export * from './tensor/index.js';
export type { StateDict, TensorInfo } from './formats/state-dict.js';
export { openStateDict } from './formats/open.js';
export { openSafetensors, writeSafetensors, serializeSafetensors } from './formats/safetensors.js';
export { openTorchFile } from './formats/torch-file.js';
export { readPngText, withPngText } from './formats/png-text.js';
export { sha256File, autoV2Hash, legacyModelHash, addnetHash, loraShortHash, configureHashCache } from './formats/hash.js';
export { GraphBuilder, WeightScope } from './graph/builder.js';
export type { GraphIR } from './graph/ir.js';
export { MemoryWeights, stateDictWeights, type WeightSource } from './graph/weights.js';
export { countFlops } from './graph/flops.js';
export { createSession, SessionCache, Session, type Device, type RuntimeOptions } from './runtime/session.js';
export { loadCheckpoint, type LoadOptions } from './models/checkpoint.js';
export { StableDiffusionModel } from './models/sd-model.js';
export { ClipTokenizer } from './text/clip-tokenizer.js';
export { SAMPLERS, SAMPLER_NAMES, getSampler } from './sampling/registry.js';
export { SCHEDULER_IDS, sigmasFor } from './sampling/schedules.js';
export { parseSamplerName, toA1111Names } from './sampling/names.js';
export { TorchCpuGenerator, torchRandn } from './sampling/rng-torch-cpu.js';
export { PhiloxGenerator, ImageRNG } from './sampling/rng-philox.js';
export type { Denoiser, NoiseSource, SamplerOptions } from './sampling/types.js';
export { txt2img, type Txt2ImgOptions, type Txt2ImgResult, type Progress } from './pipelines/txt2img.js';
export type { GeneratedImage } from './pipelines/image-output.js';
export { formatParameters, parseParameters } from './pipelines/parameters.js';
export { getProfile, PROFILES, type ProfileName } from './pipelines/profiles.js';
export { detectUpscaler, buildUpscaler, describeUpscaler, type UpscalerConfig } from './models/esrgan.js';
export { TinyAutoencoder, detectTaesd, buildTaesdDecoder, buildTaesdEncoder } from './models/taesd.js';
export {
  UpscalerModel, upscaleImage, upscaleTensor, sdUpscale, readRgbImage, resample, RESAMPLERS,
  type RgbImage, type Resampler, type UpscaleOptions, type SdUpscaleOptions, type SdUpscaleResult,
} from './pipelines/upscale.js';
export { runTiled, tileStarts, type TileOptions } from './pipelines/tiling.js';
export { decodeTiled, encodeTiled, decodeMaybeTiled, encodeMaybeTiled, type VaeTiling, type VaeTilingOptions } from './pipelines/vae-tiling.js';
export { withPreview, taesdPreviewer, latentRgbPreviewer, previewPng, SD15_LATENT_RGB, type PreviewImage, type PreviewDecoder } from './pipelines/preview.js';
export {
  img2img, img2imgSigmas, denoiseLatents, encodeImage, type Img2ImgOptions, type Img2ImgResult, type EncodeMode, type DenoiseJob,
} from './pipelines/img2img.js';
export { inpaint, MASKED_CONTENT, type InpaintOptions, type InpaintResult, type MaskedContent, type InpaintArea } from './pipelines/inpaint.js';
export { outpaint, padForOutpaint, type OutpaintOptions } from './pipelines/outpaint.js';
export { txt2imgHires, LATENT_UPSCALE_MODES, PIXEL_UPSCALERS, type HiresOptions } from './pipelines/hires.js';
export { loadRgb, loadMask, resizeImage, RESIZE_MODES, type RasterImage, type ImageSource, type ResizeMode } from './pipelines/image-input.js';
export { blurMask, cropRegion, expandCropRegion, fillMasked, interpolate as interpolateLatent } from './pipelines/masks.js';
export { applyLoras, resolveLora, type LoraSpec, type AppliedLoras, type ResolvedLora } from './adapters/lora.js';
export { applyHypernetworks, loadHypernetwork, type HypernetworkSpec } from './adapters/hypernetwork.js';
export { applyExtraNetworks, type ExtraNetworks, type AppliedNetworks } from './adapters/networks.js';
export { mergeCheckpoints, blockIndex, BLOCK_NAMES, type MergeOptions, type MergeResult, type MergeMode } from './adapters/merge.js';
export { PatchedWeights, type WeightPatch } from './adapters/patched-weights.js';
export { parseAttention, promptSchedule, splitAnd, stripComments, PromptSyntaxError, type AttentionSegment, type ScheduleEntry } from './text/prompt-a1111.js';
export { parseComfyWeights, tokenWeights } from './text/prompt-comfy.js';
export { chunkA1111, chunkComfy, type PromptChunk, type ComfyTokenEntry } from './text/chunking.js';
export { parseExtraNetworks, loraRequests, type ExtraNetworkParams, type ExtraNetworkPrompt, type LoraRequest } from './text/extra-networks.js';
export { resolveDynamicPrompt } from './text/dynamic-prompts.js';
export { EmbeddingLibrary, loadTextualInversion, formatTiHashes, type TextualInversion } from './adapters/textual-inversion.js';
export {
  encodeConditioning, PROMPT_SYNTAXES, EMPHASIS_MODES,
  type TextConditioning, type ConditioningResult, type ConditioningOptions, type PromptSyntax, type EmphasisMode,
} from './pipelines/conditioning.js';
