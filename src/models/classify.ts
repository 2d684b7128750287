// What a model file is, told from its keys, shapes and metadata alone (no weights read, except the
// one SD2 norm bias the prediction heuristic needs): the folder it belongs in, the family it was
// trained for, and the parts it carries. The model manager files downloads by it and lists folders
// with it; checkpoint loading uses it to name what a non-checkpoint file is.
import type { StateDict } from '../formats/state-dict.js';
import { detectUpscaler } from './esrgan.js';
import type { ModelKind } from './model-folders.js';
import type { Prediction } from './sd-model.js';
import { detectTaesd } from './taesd.js';

/** Families as users name them; undefined where the file does not say (a VAE fits SD1 and SD2 alike). */
export type ModelFamily = 'SD1' | 'SD2' | 'SDXL' | 'SDXL refiner' | 'SD3' | 'Flux';

export interface ModelDescription {
  readonly kind: ModelKind;
  /** LoRA and LyCORIS are both `loras`; this tells them (and the TAESD / ESRGAN variants) apart. */
  readonly format: string;
  readonly family?: ModelFamily;
  readonly prediction?: Prediction;
  /** The parts present: unet, text encoder(s), vae, … */
  readonly components: readonly string[];
}

const UNET = 'model.diffusion_model.';
const HF_TEXT = 'cond_stage_model.transformer.text_model.';
const OPENCLIP_TEXT = 'cond_stage_model.model.';

export function predictionFromMetadata(meta: Readonly<Record<string, string>>): Prediction | undefined {
  const raw = (meta['modelspec.prediction_type'] ?? meta['prediction_type'] ?? '').toLowerCase();
  if (raw === 'v' || raw === 'v_prediction' || raw === 'v-prediction') return 'v';
  if (raw === 'eps' || raw === 'epsilon') return 'eps';
  return undefined;
}

/**
 * SD 2.x files do not say whether they are the 512 eps model or the 768 v model. ComfyUI tells them
 * apart by the spread of one norm bias near the output (v models trained it further: std > 0.09);
 * files without that layer (small custom UNets) default to v, as most SD2 checkpoints are.
 */
export async function sd2Prediction(sd: StateDict): Promise<Prediction> {
  const key = `${UNET}output_blocks.11.1.transformer_blocks.0.norm1.bias`;
  if (!sd.info(key)) return 'v';
  const b = (await sd.read(key)).toFloat32Array();
  const mean = b.reduce((a, v) => a + v, 0) / b.length;
  const std = Math.sqrt(b.reduce((a, v) => a + (v - mean) ** 2, 0) / b.length);
  return std > 0.09 ? 'v' : 'eps';
}

/** Family from the metadata kohya and the modelspec standard write, when present. */
function familyFromMetadata(meta: Readonly<Record<string, string>>): ModelFamily | undefined {
  const arch = (meta['modelspec.architecture'] ?? '').toLowerCase();
  const base = (meta['ss_base_model_version'] ?? '').toLowerCase();
  const s = `${arch} ${base}`;
  if (/refiner/.test(s)) return 'SDXL refiner';
  if (/xl/.test(s)) return 'SDXL';
  if (/stable-diffusion-v3|sd3/.test(s)) return 'SD3';
  if (/flux/.test(s)) return 'Flux';
  if (/v2|sd_v2|stable-diffusion-v2/.test(s)) return 'SD2';
  if (/v1|sd_v1|stable-diffusion-v1/.test(s)) return 'SD1';
  if (meta['ss_v2'] === 'True') return 'SD2';
  return undefined;
}

/** Text width → the family whose text encoder has it (CLIP-L 768, OpenCLIP-H 1024). */
const familyOfWidth = (w: number | undefined): ModelFamily | undefined => (w === 768 ? 'SD1' : w === 1024 ? 'SD2' : undefined);

/** Whether the keys are those of a LoRA / LyCORIS file, and which of the two. */
function loraFormat(keys: readonly string[]): string | undefined {
  let lora = false;
  for (const k of keys) {
    if (/\.(hada_w1_a|lokr_w1|lokr_w1_a|oft_blocks|oft_diag|diff|diff_b)$/.test(k) && /^(lora_|lycoris_)/.test(k)) return 'LyCORIS';
    if (/\.(lora_down|lora_up|lora_A|lora_B)\.weight$/.test(k) || /^lora_(unet|te[12]?)_/.test(k)) lora = true;
  }
  return lora ? 'LoRA' : undefined;
}

function loraFamily(sd: StateDict): ModelFamily | undefined {
  const keys = sd.keys();
  if (keys.some((k) => /^lora_te[12]_/.test(k))) return 'SDXL';
  // SDXL's UNet has transformer depth 2+ in the middle block; SD1/SD2 have one.
  if (keys.some((k) => /transformer_blocks_1_|transformer_blocks\.1\./.test(k) && /(input_blocks|down_blocks|middle_block|mid_block)/.test(k))) return 'SDXL';
  for (const k of keys) {
    if (/^lora_te_.*(self_attn_k_proj|mlp_fc1)\.lora_down\.weight$/.test(k)) return familyOfWidth(sd.info(k)?.shape[1]);
  }
  for (const k of keys) {
    if (/attn2_to_k\.lora_down\.weight$/.test(k)) return familyOfWidth(sd.info(k)?.shape[1]);
  }
  return undefined;
}

function embeddingFamily(sd: StateDict): ModelFamily | undefined {
  if (sd.has('clip_g') || sd.has('clip_l') && sd.has('clip_g')) return 'SDXL';
  for (const k of ['emb_params', 'string_to_param.*', ...sd.keys()]) {
    const shape = sd.info(k)?.shape;
    if (shape) return familyOfWidth(shape[shape.length - 1]);
  }
  return undefined;
}

/** Kind and family from the keys; prediction only for checkpoints (it may read one small tensor). */
export async function describeModel(sd: StateDict): Promise<ModelDescription> {
  const keys = sd.keys();
  const has = (prefix: string) => keys.some((k) => k.startsWith(prefix));
  const meta = sd.metadata;
  const metaFamily = familyFromMetadata(meta);

  if (has(UNET) && !has('control_model.')) {
    const components = ['unet'];
    let family: ModelFamily | undefined;
    if (has('conditioner.embedders.')) {
      const clipL = has('conditioner.embedders.0.transformer.');
      if (clipL) components.push('text encoder (CLIP-L)');
      if (has('conditioner.embedders.1.model.') || (!clipL && has('conditioner.embedders.0.model.'))) components.push('text encoder (OpenCLIP-G)');
      family = clipL ? 'SDXL' : 'SDXL refiner';
    } else if (has(HF_TEXT)) {
      components.push('text encoder (CLIP-L)');
      family = 'SD1';
    } else if (has(OPENCLIP_TEXT)) {
      components.push('text encoder (OpenCLIP-H)');
      family = 'SD2';
    }
    if (has('first_stage_model.')) components.push('vae');
    family = metaFamily ?? family;
    const inChannels = sd.info(`${UNET}input_blocks.0.0.weight`)?.shape[1];
    const prediction = predictionFromMetadata(meta) ?? (family === 'SD2' ? await sd2Prediction(sd) : family === 'SD1' || family === 'SDXL' ? 'eps' : undefined);
    return { kind: 'checkpoints', format: inChannels === 9 ? 'inpainting checkpoint' : 'checkpoint', family, prediction, components };
  }
  if (has('control_model.') || has('input_hint_block.')) {
    const p = has('control_model.') ? 'control_model.' : '';
    const ctx = sd.info(`${p}input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight`)?.shape[1];
    return { kind: 'controlnet', format: 'ControlNet', family: metaFamily ?? (ctx === 2048 ? 'SDXL' : familyOfWidth(ctx)), components: ['controlnet'] };
  }
  const lora = loraFormat(keys);
  if (lora) {
    const components = [has('lora_unet_') || keys.some((k) => k.includes('unet')) ? 'unet' : undefined, keys.some((k) => /^lora_te|text_encoder/.test(k)) ? 'text encoder' : undefined].filter((c): c is string => !!c);
    return { kind: 'loras', format: lora, family: metaFamily ?? loraFamily(sd), components };
  }
  if (has('string_to_param') || sd.has('emb_params') || (sd.has('clip_l') && sd.has('clip_g'))) {
    return { kind: 'embeddings', format: 'textual inversion', family: metaFamily ?? embeddingFamily(sd), components: ['embedding'] };
  }
  if (has('encoder.down.') || has('decoder.up.') || has('first_stage_model.decoder.')) {
    return { kind: 'vae', format: 'VAE', family: metaFamily, components: ['vae'] };
  }
  const taesd = detectTaesd(sd);
  if (taesd.decoder || taesd.encoder) {
    return { kind: 'vae', format: 'TAESD', family: metaFamily, components: [taesd.decoder && 'decoder', taesd.encoder && 'encoder'].filter((c): c is string => !!c) };
  }
  // A1111 hypernetworks: Linear stacks under their context width (`768.0.linear.0.weight`).
  if (keys.length > 0 && keys.every((k) => /^\d+\./.test(k) || !k.includes('.')) && keys.some((k) => /^\d+\.\d+\.linear\.\d+\.weight$/.test(k))) {
    return { kind: 'hypernetworks', format: 'hypernetwork', family: metaFamily, components: ['hypernetwork'] };
  }
  try {
    const up = detectUpscaler(sd, sd.path);
    return { kind: 'upscale_models', format: `${up.kind === 'srvgg' ? 'Real-ESRGAN compact' : 'ESRGAN'} ×${up.scale}`, components: ['upscaler'] };
  } catch {
    // Not an upscaler either: fall through to the one error below.
  }
  throw new Error(`${sd.path}: not a model latentkit knows (no checkpoint, LoRA, VAE, embedding, ControlNet or upscaler keys among ${keys.length} tensors)`);
}
