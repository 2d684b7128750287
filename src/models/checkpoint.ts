// Loading a checkpoint as users have it: one file in the LDM single-file layout (or a diffusers folder),
// with the family and every width / depth read off the keys and shapes.
import { stat } from 'node:fs/promises';
import { openStateDict } from '../formats/open.js';
import type { StateDict } from '../formats/state-dict.js';
import { stateDictWeights } from '../graph/weights.js';
import type { RuntimeOptions } from '../runtime/session.js';
import type { LoadOptions } from './load-options.js';
import { predictionFromMetadata, sd2Prediction } from './classify.js';
import { detectClipText } from './clip-text.js';
import { configBeside, readLdmConfig } from './ldm-config.js';
import { openDiffusersFolder, openVaeWeights } from './diffusers.js';
import { fileIdentity } from '../formats/file-identity.js';
import { StableDiffusionModel, type Family, type ModelParts } from './sd-model.js';
import { detectUNet, type UNetConfig } from './unet.js';

export type { LoadOptions } from './load-options.js';

const UNET = 'model.diffusion_model';
const VAE = 'first_stage_model';
const TEXT_HF = 'cond_stage_model.transformer.text_model';
const TEXT_OPENCLIP = 'cond_stage_model.model';

function describeNonCheckpoint(path: string, keys: readonly string[]): string {
  const has = (p: string) => keys.some((k) => k.startsWith(p));
  if (has('conditioner.embedders.')) return `${path}: SDXL checkpoints are not supported yet (only SD 1.x and 2.x)`;
  if (has('lora_unet_') || has('lora_te') || keys.some((k) => k.includes('.lora_down.') || k.includes('.lora_A.'))) {
    return `${path}: this is a LoRA, not a checkpoint (use it with --lora)`;
  }
  if (has('encoder.down.') || has('decoder.up.')) return `${path}: this is a VAE, not a checkpoint (use it with --vae)`;
  if (has('string_to_param') || has('emb_params')) return `${path}: this is a textual-inversion embedding, not a checkpoint`;
  if (has('control_model.') || has('input_hint_block.')) return `${path}: this is a ControlNet, not a checkpoint`;
  return `${path}: not a Stable Diffusion checkpoint (no UNet weights under '${UNET}.', ${keys.length} tensors)`;
}

/** Detects architecture and prediction type from a single-file LDM checkpoint. */
export async function describeSingleFile(path: string, sd: StateDict, options: LoadOptions): Promise<Omit<ModelParts, 'weights' | 'close' | 'prefixes'> & { prefixes: ModelParts['prefixes'] }> {
  const keys = sd.keys();
  const keySet = new Set(keys);
  const shape = (k: string) => sd.info(k)?.shape;
  if (!keySet.has(`${UNET}.input_blocks.0.0.weight`) || keys.some((k) => k.startsWith('conditioner.embedders.'))) {
    throw new Error(describeNonCheckpoint(path, keys));
  }
  const textPrefix = keySet.has(`${TEXT_HF}.embeddings.token_embedding.weight`) ? TEXT_HF
    : keySet.has(`${TEXT_OPENCLIP}.token_embedding.weight`) ? TEXT_OPENCLIP : undefined;
  if (!textPrefix) throw new Error(`${path}: no text encoder found (expected '${TEXT_HF}.*' for SD1 or '${TEXT_OPENCLIP}.*' for SD2)`);
  const family: Family = textPrefix === TEXT_HF ? 'sd1' : 'sd2';
  const heads: UNetConfig['heads'] = options.unetHeads ? { count: options.unetHeads }
    : options.unetHeadWidth ? { width: options.unetHeadWidth }
      : family === 'sd1' ? { count: 8 } : { width: 64 };
  let unet: UNetConfig;
  let text;
  try {
    unet = detectUNet(keySet, shape, `${UNET}.`, heads);
    text = detectClipText(keySet, shape, `${textPrefix}.`, options.textHeads);
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`, { cause: err });
  }
  if (unet.contextDim !== text.width) {
    throw new Error(`${path}: the UNet expects ${unet.contextDim}-wide text conditioning but the text encoder is ${text.width} wide`);
  }
  if (!keySet.has(`${VAE}.decoder.conv_in.weight`) && !options.vae) {
    throw new Error(`${path}: the checkpoint has no VAE ('${VAE}.*'); pass a separate VAE file`);
  }
  const prediction = options.prediction ?? predictionFromMetadata(sd.metadata) ?? (family === 'sd2' ? await sd2Prediction(sd) : 'eps');
  let alphasCumprod: Float32Array | undefined;
  if (sd.info('alphas_cumprod')?.shape[0] === 1000) alphasCumprod = (await sd.read('alphas_cumprod')).toFloat32Array();
  return {
    path, family, prediction, unet, text, alphasCumprod, prefixes: { unet: UNET, text: textPrefix, vae: VAE },
    padTokenId: family === 'sd1' ? 49407 : 0, textSkipBase: family === 'sd1' ? 1 : 2, textLayersRemoved: 0,
  };
}

async function validated(model: StableDiffusionModel): Promise<StableDiffusionModel> {
  try {
    model.validate();
    return model;
  } catch (err) {
    await model.close();
    throw err;
  }
}

/**
 * Loads an SD 1.x / 2.x checkpoint: a `.safetensors` / `.ckpt` file in the single-file LDM layout or
 * a diffusers folder. Only headers are read here; weights are read when a session first needs them.
 */
export async function loadCheckpoint(path: string, options: LoadOptions = {}): Promise<StableDiffusionModel> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new Error(`${path}: no such file or folder`, { cause: err });
  }
  const runtime: RuntimeOptions = { device: options.device, threads: options.threads, fusedAttention: options.fusedAttention };
  const configPath = options.config ?? (info.isFile() ? configBeside(path) : undefined);
  if (configPath && (options.config || (await stat(configPath).catch(() => undefined))?.isFile())) {
    const hints = await readLdmConfig(configPath);
    const explicitHeads = options.unetHeads !== undefined || options.unetHeadWidth !== undefined;
    const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as LoadOptions;
    options = { ...(explicitHeads ? { prediction: hints.prediction } : hints), ...given };
  }
  if (info.isDirectory()) return validated(new StableDiffusionModel(await openDiffusersFolder(path, options), runtime));

  const sd = await openStateDict(path);
  try {
    const desc = await describeSingleFile(path, sd, options);
    const source = stateDictWeights(sd, await fileIdentity(path));
    let vae = { source, prefix: desc.prefixes.vae, close: async () => {} };
    if (options.vae) vae = await openVaeWeights(options.vae);
    const parts: ModelParts = {
      ...desc,
      prefixes: { ...desc.prefixes, vae: vae.prefix },
      weights: { unet: source, text: source, vae: vae.source },
      close: async () => { await vae.close(); await sd.close(); },
    };
    return await validated(new StableDiffusionModel(parts, runtime));
  } catch (err) {
    await sd.close();
    throw err;
  }
}
