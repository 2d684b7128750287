// One text-to-image pass: conditioning, initial noise, a sampler over the profile's σ schedule, VAE
// decode, PNG with A1111 metadata.
import type { StableDiffusionModel } from '../models/sd-model.js';
import { sigmasFor } from '../sampling/schedules.js';
import { imageInfotext } from './infotext.js';
import { checkTxt2ImgOptions, type Txt2ImgOptions, type Txt2ImgResult } from './options.js';
import { prepareText, withNetworks } from './prompt-setup.js';
import { sampleLatents } from './sample.js';
import { decodeLatents, encodePng, type GeneratedImage } from './image-output.js';
import { runNoise } from './profiles.js';
import { sampleWithRefiner } from './refiner.js';

/** One txt2img pass at the requested size (no hires fix): what `txt2img` and the hires first pass run. */
export async function txt2imgPass(model: StableDiffusionModel, opts: Txt2ImgOptions): Promise<Txt2ImgResult> {
  if (!opts.networksResolved) return withNetworks(model, opts, txt2imgPass);
  const { width, height, steps, cfgScale, batch, clipSkip, seed, profile, sampler, scheduler } = checkTxt2ImgOptions(opts);
  const schedule = profile.schedule();
  const sigmas = sigmasFor(profile.name, sampler, scheduler, steps);
  const shape: [number, number, number, number] = [batch, model.latentChannels, height / 8, width / 8];
  const text = await prepareText(model, opts, { seed, steps, clipSkip, profile, size: { width, height } });

  const noise = runNoise(profile, seed, shape, opts);
  const scale = profile.startScale(sigmas[0], schedule.sigmaMax);
  const x = Float64Array.from(noise.initial, (v) => v * scale);

  let latents: Float64Array;
  if (opts.refiner) {
    const refiner = opts.refiner.model;
    const refinerText = await prepareText(refiner, { ...opts, tokenizer: opts.tokenizer }, { seed, steps, clipSkip, profile, size: { width, height } });
    latents = await sampleWithRefiner({
      base: model, refiner, switchAt: opts.refiner.switchAt ?? 0.8, profile, sampler, sigmas, x, shape, cfgScale,
      baseText: text.conditioning, refinerText: refinerText.conditioning, noise: noise.source,
      freshNoise: () => runNoise(profile, seed, shape, opts).source, eta: opts.eta, sNoise: opts.sNoise, onProgress: opts.onProgress,
    });
  } else {
    latents = await sampleLatents({
      model, profile, sampler, sigmas, x, shape, conditioning: text.conditioning, cfgScale, noise: noise.source,
      eta: opts.eta, sNoise: opts.sNoise, onProgress: opts.onProgress,
    });
  }

  const rgb = await decodeLatents(model, latents, shape);
  const images: GeneratedImage[] = [];
  for (let i = 0; i < batch; i++) {
    const parameters = await imageInfotext(model, {
      ...opts, prompt: text.prompt, negativePrompt: text.negativePrompt, steps, sampler, scheduler, cfgScale,
      seed: noise.seeds[i], width, height, clipSkip, profile,
      variationSeed: opts.variationStrength ? opts.variationSeed! + i : undefined, text: text.conditioning.infotext,
    });
    images.push({ width, height, rgb: rgb[i], seed: noise.seeds[i], parameters, png: await encodePng(rgb[i], width, height, parameters) });
  }
  return { images, latents, latentShape: shape, sigmas, ...(text.warnings.length ? { warnings: text.warnings } : {}) };
}
