// The A1111 infotext of a generated image, in A1111's field order, shared by every pipeline.
import { basename, extname } from 'node:path';
import { autoV2Hash } from '../formats/hash.js';
import type { StableDiffusionModel } from '../models/sd-model.js';
import { a1111InfotextFields } from '../sampling/names.js';
import { pyFloatRepr } from '../text/py.js';
import { formatParameters, type InfoValue } from './parameters.js';
import type { Profile, RngName } from './profiles.js';

export const VERSION = 'latentkit 0.1.0';

export interface InfotextInput {
  readonly prompt: string;
  readonly negativePrompt: string;
  readonly steps: number;
  readonly sampler: string;
  readonly scheduler: string;
  readonly cfgScale: number;
  readonly seed: number;
  readonly width: number;
  readonly height: number;
  readonly clipSkip: number;
  readonly profile: Profile;
  readonly rng?: RngName;
  readonly eta?: number;
  readonly variationSeed?: number;
  readonly variationStrength?: number;
  readonly seedResizeFrom?: { readonly width: number; readonly height: number };
  readonly etaNoiseSeedDelta?: number;
  readonly denoisingStrength?: number;
  readonly loraHashes?: string;
  /** Pipeline fields (mask blur, hires settings, …) placed after the sampling ones. */
  readonly extra?: ReadonlyArray<readonly [string, InfoValue]>;
  /** Text fields from the conditioning (TI hashes, emphasis, …). */
  readonly text?: ReadonlyArray<readonly [string, InfoValue]>;
  /**
   * Write the float settings as Python floats (`CFG scale: 7.0`): A1111's API parses them into floats
   * before the infotext is written, its UI's sliders do not.
   */
  readonly pythonFloats?: boolean;
}

/** A float setting as the infotext writes it: Python's `str(float)` for API requests, else as given. */
export function infoFloat(v: number | undefined, python: boolean | undefined): InfoValue {
  return v === undefined || !python ? v : pyFloatRepr(v);
}

export async function imageInfotext(model: StableDiffusionModel, f: InfotextInput): Promise<string> {
  const names = a1111InfotextFields(f.sampler, f.scheduler);
  const hash = await autoV2Hash(model.path).catch(() => undefined);
  const rng = f.rng ?? f.profile.defaultRng;
  return formatParameters(f.prompt, f.negativePrompt, [
    ['Steps', f.steps], ['Sampler', names.Sampler], ['Schedule type', names['Schedule type']], ['CFG scale', infoFloat(f.cfgScale, f.pythonFloats)],
    ['Seed', f.seed], ['Size', `${f.width}x${f.height}`], ['Model hash', hash], ['Model', basename(model.path, extname(model.path))],
    ['Variation seed', f.variationStrength ? f.variationSeed : undefined],
    ['Variation seed strength', infoFloat(f.variationStrength || undefined, f.pythonFloats)],
    ['Seed resize from', f.seedResizeFrom ? `${f.seedResizeFrom.width}x${f.seedResizeFrom.height}` : undefined],
    ['Denoising strength', infoFloat(f.denoisingStrength, f.pythonFloats)],
    ['Conditional mask weight', model.concatChannels > 0 ? 1 : undefined],
    ['Clip skip', f.clipSkip > 1 ? f.clipSkip : undefined],
    ['ENSD', f.etaNoiseSeedDelta || undefined],
    ['RNG', rng === 'gpu' ? undefined : (rng === 'cpu' ? 'CPU' : 'NV')],
    ['Eta', infoFloat(f.eta, f.pythonFloats)],
    ...(f.extra ?? []),
    ['Profile', f.profile.name === 'a1111' ? undefined : f.profile.name],
    ['Lora hashes', f.loraHashes],
    ...(f.text ?? []),
    ['Version', VERSION],
  ]);
}
