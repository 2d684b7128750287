// The LDM inference config (`v1-inference.yaml`, `v2-inference-v.yaml`, …) that A1111 reads from
// `NAME.yaml` beside a checkpoint and ComfyUI's CheckpointLoader takes explicitly: it says what the
// weights cannot — the UNet's attention heads or head width, and the prediction type.
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import type { Prediction } from './sd-model.js';

export interface LdmConfigHints {
  readonly unetHeads?: number;
  readonly unetHeadWidth?: number;
  readonly prediction?: Prediction;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const positiveInt = (v: unknown): number | undefined => (Number.isInteger(v) && (v as number) > 0 ? v as number : undefined);

/** Reads the hints of an LDM config file; a file that is not one gets an error naming it. */
export async function readLdmConfig(path: string): Promise<LdmConfigHints> {
  let doc: unknown;
  try {
    doc = parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path}: not a readable YAML file (${(err as Error).message.split('\n')[0]})`, { cause: err });
  }
  const params = isObject(doc) && isObject(doc.model) && isObject(doc.model.params) ? doc.model.params : undefined;
  if (!params) throw new Error(`${path}: not an LDM inference config (no model.params)`);
  const unet = isObject(params.unet_config) && isObject(params.unet_config.params) ? params.unet_config.params : {};
  const heads = positiveInt(unet.num_heads);
  const width = positiveInt(unet.num_head_channels);
  const p = params.parameterization;
  return {
    // LDM configs write num_heads: -1 when they give the head width instead (SD2).
    ...(width ? { unetHeadWidth: width } : heads ? { unetHeads: heads } : {}),
    ...(p === 'v' ? { prediction: 'v' as const } : p === 'eps' ? { prediction: 'eps' as const } : {}),
  };
}

/** `NAME.yaml` beside `NAME.safetensors` / `.ckpt`, if there is one. */
export function configBeside(checkpoint: string): string {
  return checkpoint.replace(/\.(safetensors|ckpt|pt|pth|bin)$/i, '') + '.yaml';
}
