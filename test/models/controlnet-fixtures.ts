// A tiny ControlNet for any SD1/SD2 checkpoint: the checkpoint's own encoder half under
// `control_model.`, plus a hint block and zero convs with small deterministic weights.
import { openStateDict } from '../../src/formats/open.js';
import { writeSafetensors } from '../../src/formats/safetensors.js';
import { Tensor } from '../../src/tensor/tensor.js';

const UNET = 'model.diffusion_model.';
const TRUNK = /^(time_embed|input_blocks|middle_block)\./;

function small(shape: number[], seed: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.f32(shape, Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.05));
}

/** Writes `control_model.*` for the checkpoint at `ckpt` (hint channels 3→16→…→256→model channels). */
export async function writeTinyControlNet(path: string, ckpt: string): Promise<void> {
  const sd = await openStateDict(ckpt);
  const out: Record<string, Tensor> = {};
  const shape = (k: string) => sd.info(`${UNET}${k}`)?.shape;
  for (const k of sd.keys()) if (k.startsWith(UNET) && TRUNK.test(k.slice(UNET.length))) out[`control_model.${k.slice(UNET.length)}`] = await sd.read(k);
  const mc = shape('input_blocks.0.0.weight')![0];
  const chans = [3, 16, 16, 32, 32, 96, 96, 256, mc];
  chans.slice(1).forEach((c, i) => {
    out[`control_model.input_hint_block.${2 * i}.weight`] = small([c, chans[i], 3, 3], 2 * i);
    out[`control_model.input_hint_block.${2 * i}.bias`] = small([c], 2 * i + 1);
  });
  const width = (block: string) => (shape(`${block}.0.out_layers.3.weight`) ?? shape(`${block}.0.op.weight`))![0];
  const widths = [mc];
  for (let i = 1; shape(`input_blocks.${i}.0.out_layers.3.weight`) || shape(`input_blocks.${i}.0.op.weight`); i++) widths.push(width(`input_blocks.${i}`));
  widths.forEach((c, i) => {
    out[`control_model.zero_convs.${i}.0.weight`] = small([c, c, 1, 1], 100 + i);
    out[`control_model.zero_convs.${i}.0.bias`] = small([c], 200 + i);
  });
  const mid = (shape('middle_block.2.out_layers.3.weight') ?? shape('middle_block.1.out_layers.3.weight'))![0];
  out['control_model.middle_block_out.0.weight'] = small([mid, mid, 1, 1], 300);
  out['control_model.middle_block_out.0.bias'] = small([mid], 301);
  await sd.close();
  await writeSafetensors(path, out);
}
