// One entry point for "extra networks" on a model: what txt2img's `loras` / `hypernetworks` options and
// the CLI's --lora / --hypernetwork use, and what the prompt syntax (`<lora:name:w[:te]>`,
// `<hypernet:name:w>`) feeds once names are resolved to files.
import { loraShortHash } from '../formats/hash.js';
import type { StableDiffusionModel } from '../models/sd-model.js';
import { applyHypernetworks, type HypernetworkSpec } from './hypernetwork.js';
import { applyLoras, type LoraSpec, type ResolvedLora } from './lora.js';

export interface ExtraNetworks {
  readonly loras?: readonly LoraSpec[];
  readonly hypernetworks?: readonly HypernetworkSpec[];
}

export interface AppliedNetworks {
  /** The model to generate with: a view sharing the base model's session cache, or the base itself. */
  readonly model: StableDiffusionModel;
  readonly loras: readonly ResolvedLora[];
  /** Files with keys that matched nothing, one line each (print them; never silently dropped). */
  readonly warnings: readonly string[];
  /** A1111's `Lora hashes` infotext value ("name: 0123456789ab, …"), or undefined without LoRAs. */
  readonly loraHashes?: string;
}

/** A1111 strips ':' and ',' from names in `Lora hashes` so the list stays parseable. */
const cleanName = (name: string): string => name.replace(/[:,]/g, '');

export async function applyExtraNetworks(model: StableDiffusionModel, nets: ExtraNetworks): Promise<AppliedNetworks> {
  const lo = await applyLoras(model, nets.loras ?? []);
  const withHn = await applyHypernetworks(lo.model, nets.hypernetworks ?? []);
  let loraHashes: string | undefined;
  if (lo.loras.length) {
    const seen = new Map<string, string>();
    for (const l of lo.loras) seen.set(cleanName(l.name), await loraShortHash(l.path));
    loraHashes = [...seen].map(([n, h]) => `${n}: ${h}`).join(', ');
  }
  return { model: withHn, loras: lo.loras, warnings: lo.warnings, loraHashes };
}
