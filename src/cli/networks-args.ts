import { InvalidArgumentError } from 'commander';
import type { HypernetworkSpec } from '../adapters/hypernetwork.js';
import type { LoraSpec } from '../adapters/lora.js';

/**
 * Splits `PATH:W1[:W2]` from the right, so paths that contain ':' (Windows drives, odd names) keep
 * them: only trailing parts that are numbers count as strengths.
 */
function splitStrengths(v: string, max: number): { path: string; values: number[] } {
  const parts = v.split(':');
  const values: number[] = [];
  while (parts.length > 1 && values.length < max) {
    const last = parts[parts.length - 1];
    const n = Number(last);
    if (last.trim() === '' || !Number.isFinite(n)) break;
    values.unshift(n);
    parts.pop();
  }
  return { path: parts.join(':'), values };
}

/** `--lora PATH[:WEIGHT[:TE_WEIGHT]]` (A1111's `<lora:name:unet:te>` order). */
export function parseLoraArg(v: string): LoraSpec {
  const { path, values } = splitStrengths(v, 2);
  if (!path) throw new InvalidArgumentError(`--lora needs a file: PATH[:WEIGHT[:TE_WEIGHT]], got '${v}'`);
  return { path, weight: values[0] ?? 1, teWeight: values[1] };
}

/** `--hypernetwork PATH[:STRENGTH]`. */
export function parseHypernetworkArg(v: string): HypernetworkSpec {
  const { path, values } = splitStrengths(v, 1);
  if (!path) throw new InvalidArgumentError(`--hypernetwork needs a file: PATH[:STRENGTH], got '${v}'`);
  return { path, strength: values[0] ?? 1 };
}
