// The Generate form as a ComfyUI API graph, queued through `/prompt` like any other workflow: one
// queue, one history (so the Gallery sees every image), websocket progress and previews for free.
// `<lora:name:w>` tags become LoraLoader nodes; clip skip a CLIPSetLastLayer; hires fix a latent
// upscale and a second sampler pass; img2img / inpaint start from an uploaded image and mask.

export interface GenerateForm {
  prompt: string;
  negativePrompt: string;
  checkpoint: string;
  sampler: string;
  scheduler: string;
  steps: number;
  cfg: number;
  seed: number;
  width: number;
  height: number;
  batchSize: number;
  clipSkip: number;
  hires: { enabled: boolean; scale: number; steps: number; denoise: number };
  /** img2img / inpaint: uploaded names in the input folder, and the denoising strength. */
  init?: { image: string; mask?: string; denoise: number };
}

export type ApiGraph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;

const LORA_TAG = /<lora:([^:>]+)(?::([-\d.]+))?(?::[^>]*)?>/g;

/** The prompt without its LoRA tags, and the tags as (name, weight). */
export function extractLoras(prompt: string): { text: string; loras: { name: string; weight: number }[] } {
  const loras: { name: string; weight: number }[] = [];
  const text = prompt.replace(LORA_TAG, (_m, name: string, w?: string) => {
    loras.push({ name: name.trim(), weight: w === undefined || w === '' ? 1 : Number(w) });
    return '';
  });
  return { text: text.replace(/\s+,/g, ',').replace(/\s{2,}/g, ' ').trim(), loras };
}

/** A LoRA named in a tag (without extension or folder) as the file the server lists. */
function loraFile(name: string, available: readonly string[]): string {
  const base = (f: string) => f.replace(/\.[^./]+$/, '').split('/').pop();
  return available.find((f) => f === name || base(f) === name) ?? name;
}

export function generateGraph(f: GenerateForm, loraFiles: readonly string[] = []): ApiGraph {
  const g: ApiGraph = {};
  let n = 0;
  const add = (class_type: string, inputs: Record<string, unknown>): [string, number] => {
    const id = String(++n);
    g[id] = { class_type, inputs };
    return [id, 0];
  };
  const ckpt = add('CheckpointLoaderSimple', { ckpt_name: f.checkpoint });
  let model: [string, number] = [ckpt[0], 0];
  let clip: [string, number] = [ckpt[0], 1];
  const vae: [string, number] = [ckpt[0], 2];
  const pos = extractLoras(f.prompt);
  const neg = extractLoras(f.negativePrompt);
  for (const l of [...pos.loras, ...neg.loras]) {
    const [id] = add('LoraLoader', { model, clip, lora_name: loraFile(l.name, loraFiles), strength_model: l.weight, strength_clip: l.weight });
    model = [id, 0];
    clip = [id, 1];
  }
  if (f.clipSkip > 1) clip = [add('CLIPSetLastLayer', { clip, stop_at_clip_layer: -f.clipSkip })[0], 0];
  const positive = add('CLIPTextEncode', { clip, text: pos.text });
  const negative = add('CLIPTextEncode', { clip, text: neg.text });
  let latent: [string, number];
  let denoise = 1;
  if (f.init) {
    const image = add('LoadImage', { image: f.init.image });
    latent = add('VAEEncode', { pixels: image, vae });
    if (f.init.mask) {
      const mask = add('LoadImageMask', { image: f.init.mask, channel: 'red' });
      latent = add('SetLatentNoiseMask', { samples: latent, mask });
    }
    if (f.batchSize > 1) latent = add('RepeatLatentBatch', { samples: latent, amount: f.batchSize });
    denoise = f.init.denoise;
  } else {
    latent = add('EmptyLatentImage', { width: f.width, height: f.height, batch_size: f.batchSize });
  }
  const sample = (latent_image: [string, number], steps: number, d: number) => add('KSampler', {
    model, positive, negative, latent_image, seed: f.seed, steps, cfg: f.cfg, sampler_name: f.sampler, scheduler: f.scheduler, denoise: d,
  });
  let samples = sample(latent, f.steps, denoise);
  if (f.hires.enabled && !f.init) {
    const up = add('LatentUpscaleBy', { samples, upscale_method: 'nearest-exact', scale_by: f.hires.scale });
    samples = sample(up, f.hires.steps || f.steps, f.hires.denoise);
  }
  const image = add('VAEDecode', { samples, vae });
  add('SaveImage', { images: image, filename_prefix: f.init ? 'latentkit-img2img' : 'latentkit' });
  return g;
}

/** A1111's infotext parameters for one image of the form (the seed is that image's own). */
export function infotextParams(f: GenerateForm, seed: number): Record<string, string> {
  return {
    Steps: String(f.steps), Sampler: f.sampler, 'Schedule type': f.scheduler, 'CFG scale': String(f.cfg), Seed: String(seed),
    Size: `${f.width}x${f.height}`, Model: f.checkpoint.replace(/\.[^.]+$/, ''),
    ...(f.clipSkip > 1 ? { 'Clip skip': String(f.clipSkip) } : {}),
    ...(f.init ? { 'Denoising strength': String(f.init.denoise) } : {}),
    ...(f.hires.enabled && !f.init ? { 'Hires upscale': String(f.hires.scale), 'Hires steps': String(f.hires.steps), 'Denoising strength': String(f.hires.denoise) } : {}),
  };
}
