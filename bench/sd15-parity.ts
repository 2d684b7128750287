// Full-size SD1.5 architecture against the reference outputs in ../shared/ref/out/sd15-full (stored in
// fp16, so agreement is limited to about 1e-3 relative).
import { fileURLToPath } from 'node:url';
import { openSafetensors } from '../src/formats/safetensors.js';
import type { StableDiffusionModel } from '../src/models/sd-model.js';

function relError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < want.length; i++) {
    d = Math.max(d, Math.abs(got[i] - want[i]));
    m = Math.max(m, Math.abs(want[i]));
  }
  return d / m;
}

export async function sd15Parity(model: StableDiffusionModel): Promise<Record<string, number>> {
  const dir = fileURLToPath(new URL('../../shared/ref/out/sd15-full/', import.meta.url));
  const te = await openSafetensors(`${dir}text_encoder.safetensors`);
  const un = await openSafetensors(`${dir}unet.safetensors`);
  const va = await openSafetensors(`${dir}vae.safetensors`);
  const hidden = await model.encodeText(await te.read('input_ids'));
  const out = await model.predict(await un.read('x'), await un.read('t_500'), await un.read('context'));
  const img = await model.decode(await va.read('z'));
  const errors = {
    'text encoder (last hidden state)': relError(hidden.toFloat32Array(), (await te.read('last_hidden_state')).toFloat32Array()),
    'UNet (t=500, 32×32)': relError(out.toFloat32Array(), (await un.read('out_t_500')).toFloat32Array()),
    'VAE decode (256×256)': relError(img.toFloat32Array(), (await va.read('decoded')).toFloat32Array()),
  };
  await Promise.all([te.close(), un.close(), va.close()]);
  return errors;
}
