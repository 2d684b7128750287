// Text to image, with the hires fix when asked: the entry point of the library and the CLI.
import type { StableDiffusionModel } from '../models/sd-model.js';
import { txt2imgHires } from './hires.js';
import type { Txt2ImgOptions, Txt2ImgResult } from './options.js';
import { withNetworks } from './prompt-setup.js';
import { txt2imgPass } from './txt2img-pass.js';

export { VERSION } from './infotext.js';
export { checkTxt2ImgOptions, type HiresOptions, type Txt2ImgOptions, type Txt2ImgResult } from './options.js';
export type { Progress } from './sample.js';

export async function txt2img(model: StableDiffusionModel, opts: Txt2ImgOptions): Promise<Txt2ImgResult> {
  // Patch once (options and `<lora:…>` tags), then run as if the caller had passed the patched view.
  if (!opts.networksResolved) return withNetworks(model, opts, txt2img);
  if (opts.hires) return txt2imgHires(model, { ...opts, hires: opts.hires });
  return txt2imgPass(model, opts);
}
