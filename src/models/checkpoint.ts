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
import { StableDiffusionModel, type Family, type ModelParts, type TextEncoderPart } from './sd-model.js';
import { admWidth, type AdmKind } from './sdxl-vector.js';
import { detectUNet, type UNetConfig } from './unet.js';

export type { LoadOptions } from './load-options.js';

const UNET = 'model.diffusion_model';
const VAE = 'first_stage_model';
const TEXT_HF = 'cond_stage_model.transformer.text_model';
const TEXT_OPENCLIP = 'cond_stage_model.model';

function describeNonCheckpoint(path: string, keys: readonly string[]): string {
  const has = (p: string) => keys.some((k) => k.startsWith(p));
  if (has('conditioner.embedders.')) return `${path}: an SDXL-style checkpoint whose text encoders latentkit does not recognise`;
  if (keys.some((k) => /^(model\.diffusion_model\.)?joint_blocks\./.test(k))) return `${path}: an SD3 checkpoint; SD3 is not supported yet`;
  if (keys.some((k) => /^(model\.diffusion_model\.)?double_blocks\./.test(k))) return `${path}: a Flux checkpoint; Flux is not supported yet`;
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
  if (!keySet.has(`${UNET}.input_blocks.0.0.weight`)) throw new Error(describeNonCheckpoint(path, keys));
  if (keys.some((k) => k.startsWith('conditioner.embedders.'))) return describeSdxl(path, sd, keySet, options);
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

const SDXL_L = 'conditioner.embedders.0.transformer.text_model';

/**
 * SDXL single files (sgm layout): the base has CLIP-L at embedders.0 and OpenCLIP-G at embedders.1;
 * the refiner has G alone at embedders.0 (A1111's and ComfyUI's detection key: `…model.ln_final.weight`).
 */
function describeSdxl(path: string, sd: StateDict, keySet: ReadonlySet<string>, options: LoadOptions): Omit<ModelParts, 'weights' | 'close'> {
  const shape = (k: string) => sd.info(k)?.shape;
  const gAt = (i: number) => `conditioner.embedders.${i}.model`;
  const base = keySet.has(`${gAt(1)}.ln_final.weight`);
  const refiner = !base && keySet.has(`${gAt(0)}.ln_final.weight`);
  if (!base && !refiner) throw new Error(describeNonCheckpoint(path, sd.keys()));
  const family: Family = base ? 'sdxl' : 'sdxl-refiner';
  const adm: AdmKind = family;
  const encoders: TextEncoderPart[] = [];
  let unet;
  try {
    if (base) encoders.push({ name: 'clip_l', prefix: SDXL_L, padTokenId: 49407, config: detectClipText(keySet, shape, `${SDXL_L}.`, options.textHeads) });
    const g = gAt(base ? 1 : 0);
    encoders.push({ name: 'clip_g', prefix: g, padTokenId: 0, config: detectClipText(keySet, shape, `${g}.`, options.textHeads) });
    // SDXL's UNet heads are 64 wide at every level (5, 10, 20 heads in the released base).
    const heads: UNetConfig['heads'] = options.unetHeads ? { count: options.unetHeads } : { width: options.unetHeadWidth ?? 64 };
    unet = detectUNet(keySet, shape, `${UNET}.`, heads);
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`, { cause: err });
  }
  const g = encoders[encoders.length - 1].config;
  const context = encoders.reduce((a, e) => a + e.config.width, 0);
  if (unet.contextDim !== context) {
    throw new Error(`${path}: the UNet expects ${unet.contextDim}-wide text conditioning but the text encoders give ${context}`);
  }
  if (!g.projectionDim) throw new Error(`${path}: the OpenCLIP-G text encoder has no text_projection (its pooled output conditions the UNet)`);
  const want = admWidth(adm, g.projectionDim);
  if (unet.admInChannels !== want) {
    throw new Error(`${path}: the UNet's label_emb takes ${unet.admInChannels ?? 'no'} inputs; an SDXL ${base ? 'base' : 'refiner'} with a ${g.projectionDim}-wide pooled output needs ${want}`);
  }
  if (!keySet.has(`${VAE}.decoder.conv_in.weight`) && !options.vae) {
    throw new Error(`${path}: the checkpoint has no VAE ('${VAE}.*'); pass a separate VAE file`);
  }
  return {
    path, family, adm, prediction: options.prediction ?? predictionFromMetadata(sd.metadata) ?? 'eps', unet,
    // The single-encoder fields point at G so code that asks for "the" text encoder gets the one with the pooled output.
    text: g, textEncoders: encoders, prefixes: { unet: UNET, text: encoders[encoders.length - 1].prefix, vae: VAE },
    padTokenId: 0, textSkipBase: 2, textLayersRemoved: 0,
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
