import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { openStateDict } from '../formats/open.js';
import { readPngText } from '../formats/png-text.js';
import { registerGenerate } from './generate.js';
import { registerPreprocess } from './preprocess.js';
import { registerPrompt } from './prompt.js';
import { registerImg2Img } from './img2img.js';
import { registerMerge } from './merge.js';
import { registerModels } from './models.js';
import { registerUpscale } from './upscale.js';
import { registerServe } from './serve.js';

export const VERSION = '0.1.0';

async function inspect(file: string): Promise<void> {
  const sd = await openStateDict(file);
  try {
    const meta = Object.entries(sd.metadata);
    if (meta.length) {
      console.log('metadata:');
      for (const [k, v] of meta) console.log(`  ${k}: ${v.length > 200 ? `${v.slice(0, 200)}…` : v}`);
    }
    let params = 0;
    for (const key of sd.keys()) {
      const info = sd.info(key)!;
      params += info.shape.reduce((a, b) => a * b, 1);
      console.log(`${key}\t${info.dtype}\t[${info.shape.join(', ')}]`);
    }
    console.log(`${sd.keys().length} tensors, ${(params / 1e6).toFixed(2)} M values`);
  } finally {
    await sd.close();
  }
}

async function pnginfo(file: string): Promise<void> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch {
    throw new Error(`${file}: cannot read`);
  }
  const text = readPngText(buf, file);
  if (text.parameters === undefined) throw new Error(`${file}: no 'parameters' text chunk (not written by A1111 or latentkit)`);
  console.log(text.parameters);
}

export async function main(argv: string[]): Promise<void> {
  const program = new Command('latentkit')
    .description('Stable Diffusion on ONNX Runtime: loads .safetensors / .ckpt checkpoints, runs on CPU or GPU')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)');
  program.command('inspect').argument('<file>', 'checkpoint, LoRA, VAE or embedding file')
    .description('list the tensors of a model file (dtype, shape) and its metadata without loading the weights')
    .action(inspect);
  program.command('pnginfo').argument('<file>', 'PNG image')
    .description("print the generation parameters stored in an image (A1111's 'parameters' chunk)")
    .action(pnginfo);
  registerGenerate(program);
  registerPrompt(program);
  registerImg2Img(program);
  registerMerge(program);
  registerUpscale(program);
  registerModels(program);
  registerPreprocess(program);
  registerServe(program);
  await program.parseAsync(argv);
}
