import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BLOCK_NAMES, mergeCheckpoints, type MergeDType, type MergeMode } from '../adapters/merge.js';
import { floatOption } from './options.js';

interface MergeFlags {
  a: string;
  b: string;
  c?: string;
  mode: MergeMode;
  alpha: number;
  blockWeights?: number[];
  vae?: string;
  dtype: MergeDType;
  out: string;
  force?: boolean;
}

function blockWeights(v: string): number[] {
  const parts = v.split(',').map((s) => s.trim());
  const nums = parts.map(Number);
  if (parts.length !== 25 || parts.some((p) => p === '') || !nums.every(Number.isFinite)) {
    throw new InvalidArgumentError(`--block-weights needs 25 comma-separated numbers (${BLOCK_NAMES[0]}…${BLOCK_NAMES[11]}, ${BLOCK_NAMES[12]}, ${BLOCK_NAMES[13]}…${BLOCK_NAMES[24]}), got ${parts.length}`);
  }
  return nums;
}

async function merge(flags: MergeFlags): Promise<void> {
  const out = resolve(flags.out);
  if (!flags.force) {
    const exists = await access(out).then(() => true, () => false);
    if (exists) throw new Error(`${out}: already exists (pass --force to replace it)`);
  }
  const r = await mergeCheckpoints({
    a: resolve(flags.a), b: resolve(flags.b), c: flags.c && resolve(flags.c), mode: flags.mode, alpha: flags.alpha,
    blockWeights: flags.blockWeights, vae: flags.vae && resolve(flags.vae), dtype: flags.dtype, out,
  });
  const vae = r.vaeReplaced ? `, VAE baked in (${r.vaeReplaced} tensors)` : '';
  console.log(`wrote ${r.out} (${r.tensors} tensors: ${r.merged} merged, ${r.copied} copied from A${vae})`);
}

export function registerMerge(program: Command): void {
  program.command('merge')
    .description('merge checkpoints: weighted sum (1−α)·A + α·B or add difference A + α·(B − C), optionally per UNet block; writes .safetensors with the recipe in its metadata')
    .requiredOption('--a <file>', 'model A (primary)')
    .requiredOption('--b <file>', 'model B (secondary)')
    .option('--c <file>', 'model C (tertiary; add-difference only)')
    .addOption(new Option('--mode <mode>', 'merge formula').choices(['weighted-sum', 'add-difference']).makeOptionMandatory())
    .requiredOption('--alpha <x>', 'multiplier α (also for keys outside the UNet when block weights are given)', floatOption('--alpha'))
    .option('--block-weights <w1,…,w25>', 'per-block α for the UNet: IN00–IN11, M00, OUT00–OUT11', blockWeights)
    .option('--vae <file>', 'bake this VAE into the result')
    .addOption(new Option('--dtype <type>', 'stored float type (keep = as in model A)').choices(['keep', 'f16', 'f32', 'bf16']).default('keep'))
    .requiredOption('-o, --out <file>', 'output .safetensors')
    .option('--force', 'replace the output if it exists')
    .action(merge);
}
