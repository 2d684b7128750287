// The SDXL end-to-end cases of ../shared/ref/sdxl/e2e through the library (txt2img under the comfy
// profile, from the seed alone): final latent ≤ 1e-3 relative, pixels within ±2 on ≥ 99%. The cases
// that need ConditioningZeroOut or separate text_g / text_l run as workflows (test/workflow/sdxl.test.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { loadCheckpoint } from '../../src/models/checkpoint.js';
import type { Txt2ImgOptions, Txt2ImgResult } from '../../src/pipelines/options.js';
import { txt2img } from '../../src/pipelines/txt2img.js';
import { CLIP_DIR, HAS_REF, maxRelError, REF, refTests } from '../ref.js';
import { testTokenizer } from './models.js';

const SDXL = join(REF, 'sdxl');
const test = refTests('SDXL txt2img end to end (comfy profile)', [SDXL, CLIP_DIR]);

interface Settings {
  id: string; kind: string; prompt: string; negative: string; width: number; height: number; steps: number; cfg: number; seed: number;
  sampler: string; scheduler: string; negative_zero_out?: boolean; text_l?: string; switch_step?: number; ascore?: number; negative_ascore?: number;
  sizes?: { width: number; height: number; crop_w: number; crop_h: number; target_width: number; target_height: number };
}
const settings = (id: string) => JSON.parse(readFileSync(join(SDXL, 'e2e', 'cases', id, 'settings.json'), 'utf8')) as Settings;
const ids = HAS_REF ? (JSON.parse(readFileSync(join(SDXL, 'e2e', 'cases.json'), 'utf8')) as { cases: { id: string }[] }).cases.map((c) => c.id) : [];

async function compareWithCase(id: string, r: Txt2ImgResult, latentKey = 'final_latent'): Promise<void> {
  const ref = await openSafetensors(join(SDXL, 'e2e', 'cases', id, 'tensors.safetensors'));
  const lat = maxRelError(r.latents, (await ref.read(latentKey)).toFloat32Array());
  const want = (await ref.read('image_u8')).data as Uint8Array;
  const got = r.images[0].rgb;
  let within = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (d <= 2) within++;
    worst = Math.max(worst, d);
  }
  console.log(`  ${id}: final latent ${lat.toExponential(2)} (tolerance 1e-3), pixels within ±2 ${(100 * within / want.length).toFixed(2)}% (worst ${worst})`);
  assert.ok(lat <= 1e-3, `latent error ${lat}`);
  assert.ok(within / want.length >= 0.99);
  await ref.close();
}

function caseOptions(s: Settings): Txt2ImgOptions {
  const z = s.sizes;
  return {
    prompt: s.prompt, negativePrompt: s.negative, width: s.width, height: s.height, steps: s.steps, cfgScale: s.cfg,
    sampler: s.sampler, scheduler: s.scheduler, seed: s.seed, profile: 'comfy',
    // CLIPTextEncodeSDXL's width/height are the original size; crop is TOPxLEFT = crop_h, crop_w.
    sdxl: z ? { originalSize: { width: z.width, height: z.height }, crop: { top: z.crop_h, left: z.crop_w }, targetSize: { width: z.target_width, height: z.target_height } } : undefined,
  };
}

for (const id of ids) {
  const s = settings(id);
  if (s.negative_zero_out || s.text_l) continue;
  test(`${id}: txt2img under the comfy profile reproduces ComfyUI`, async () => {
    const model = await loadCheckpoint(join(SDXL, 'ckpt', 'tiny-sdxl.safetensors'));
    const refiner = s.kind === 'handoff' ? await loadCheckpoint(join(SDXL, 'ckpt', 'tiny-sdxl-refiner.safetensors')) : undefined;
    // The hand-off: switch step round(0.8·10) = 8, refiner conds with aesthetic scores 6 / 2.5 (the defaults).
    const r = await txt2img(model, {
      ...caseOptions(s), tokenizer: await testTokenizer(),
      ...(refiner ? { refiner: { model: refiner, switchAt: s.switch_step! / s.steps }, sdxl: { aestheticScore: s.ascore, negativeAestheticScore: s.negative_ascore } } : {}),
    });
    await compareWithCase(id, r);
    await model.close();
    await refiner?.close();
  });
}
