// A1111's extra-network tags (modules/extra_networks.py): `<lora:name:0.8>`, `<hypernet:name:1>`,
// `<lyco:…>` are cut out of the positive prompt before it is parsed, and handed to whatever applies
// that network. `<kind:arg1:arg2…>` with `key=value` arguments counted as named.
import { RE_WORD } from './py.js';

export interface ExtraNetworkParams {
  /** The `:`-separated arguments as written. */
  readonly items: string[];
  /** Arguments without `=`, in order (for LoRA: name, weight, [text-encoder weight]). */
  readonly positional: string[];
  /** `key=value` arguments (`te=0.5`, `unet=1`). */
  readonly named: Record<string, string>;
}

export interface ExtraNetworkPrompt {
  /** The prompt with every tag removed (nothing else changes, not even the spaces around it). */
  readonly prompt: string;
  /** By kind (`lora`, `hypernet`, …), in the order written; a tag written twice appears twice. */
  readonly networks: Record<string, ExtraNetworkParams[]>;
}

const RE_EXTRA_NET = new RegExp(`<([${RE_WORD}]+):([^>]+)>`, 'gu');

function params(args: string): ExtraNetworkParams {
  const items = args.split(':');
  const positional: string[] = [];
  const named: Record<string, string> = Object.create(null);
  for (const item of items) {
    const parts = item.split('=');
    // Python's split('=', 2) gives two parts only for exactly one '='.
    if (parts.length === 2) named[parts[0]] = parts[1];
    else positional.push(item);
  }
  return { items, positional, named };
}

export function parseExtraNetworks(prompt: string): ExtraNetworkPrompt {
  const networks: Record<string, ExtraNetworkParams[]> = Object.create(null);
  const cleaned = prompt.replace(RE_EXTRA_NET, (_m, name: string, args: string) => {
    (networks[name] ??= []).push(params(args));
    return '';
  });
  return { prompt: cleaned, networks };
}

export interface LoraRequest {
  readonly name: string;
  /** UNet multiplier; also the text-encoder one unless `te` is given. */
  readonly weight: number;
  readonly textEncoderWeight: number;
  /** Dynamic-rank / block-weight arguments, untouched. */
  readonly named: Readonly<Record<string, string>>;
}

/**
 * A1111's reading of `<lora:name:te:unet>` / `<lora:name:te=…:unet=…>` (extensions-builtin/Lora):
 * first positional = name, second = text-encoder multiplier (default 1), third = UNet multiplier
 * (defaults to the second); `te=` / `unet=` override. Applying them is the LoRA loader's job.
 */
export function loraRequests(networks: Record<string, ExtraNetworkParams[]>): LoraRequest[] {
  const out: LoraRequest[] = [];
  for (const kind of ['lora', 'lyco']) {
    for (const p of networks[kind] ?? []) {
      const name = p.positional[0] ?? '';
      const te = p.named.te !== undefined ? Number(p.named.te) : p.positional[1] !== undefined ? Number(p.positional[1]) : 1.0;
      const unet = p.named.unet !== undefined ? Number(p.named.unet) : p.positional[2] !== undefined ? Number(p.positional[2]) : te;
      out.push({ name, weight: unet, textEncoderWeight: te, named: p.named });
    }
  }
  return out;
}
