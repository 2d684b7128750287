import { Command } from 'commander';

export async function main(argv: string[]): Promise<void> {
  const program = new Command('latentkit')
    .description('Stable Diffusion on ONNX Runtime')
    .version('0.1.0');
  await program.parseAsync(argv);
}
