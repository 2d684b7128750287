// ComfyUI ControlNet runs (ControlNetApplyAdvanced / ControlNetApply, two units stacked, a diff
// ControlNet, a hint of another size) reproduced from the seed alone on tiny-sd1.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { openSafetensors } from '../../src/formats/safetensors.js';
import { loadControlNet, type ControlNet } from '../../src/models/controlnet-model.js';
import { comfyConditioning, controlNetApply, controlNetApplyAdvanced, type ComfyConditioning } from '../../src/pipelines/comfy-conditioning.js';
import { resizeHint, type ControlImage } from '../../src/pipelines/comfy-controlnet.js';
import { comfyKSamplerSigmas, comfySample } from '../../src/pipelines/comfy-sample.js';
import { encodeComfyPrompt } from '../../src/pipelines/conditioning.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { CLIP_DIR, HAS_REF, maxRelError, REF, refTests } from '../ref.js';
import { loadTiny, testTokenizer } from './models.js';

const CN = `${REF}/controlnet`;
const test = refTests('ControlNet end to end against ComfyUI', [REF, CLIP_DIR]);

interface Unit { file: string; image: string; strength: number; start?: number; end?: number; diff?: boolean }
interface Case { id: string; dir: string; W: number; H: number; sampler: string; scheduler: string; steps: number; cfg: number; seed: number; prompt: string; negative: string; node?: string; units: Unit[] }

const index = HAS_REF ? JSON.parse(await readFile(`${CN}/e2e_cases.json`, 'utf8')) as { cases: Case[] } : { cases: [] };

/** LoadImage: RGB, float32(u8) / 255, [1, H, W, 3]. */
export async function loadControlImage(path: string): Promise<ControlImage> {
  const { data, info } = await sharp(path).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: Float32Array.from(data, (v) => v / 255), batch: 1, height: info.height, width: info.width, channels: 3 };
}

for (const c of index.cases) {
  test(`ControlNet e2e ${c.id}: ComfyUI's latent (1e-3) and image (±2 on 99%) from the seed`, async () => {
    const model = await loadTiny('tiny-sd1');
    const tok = await testTokenizer();
    const ref = await openSafetensors(`${CN}/${c.dir}/tensors.safetensors`);
    const nets: ControlNet[] = [];
    try {
      let positive: ComfyConditioning = comfyConditioning(await encodeComfyPrompt(model, tok, c.prompt));
      let negative: ComfyConditioning = comfyConditioning(await encodeComfyPrompt(model, tok, c.negative));
      for (const [k, u] of c.units.entries()) {
        const base = u.diff ? { base: { weights: model.parts.weights.unet, prefix: model.parts.prefixes.unet } } : {};
        const net = await loadControlNet(`${CN}/models/${u.file}.safetensors`, base);
        nets.push(net);
        const image = await loadControlImage(`${CN}/images/${u.image}`);
        if (k === 0) {
          const hint = resizeHint(image, c.W, c.H);
          assert.ok(maxRelError(hint, (await ref.read('unit0_hint')).toFloat32Array()) === 0, 'the hint as ComfyUI resizes it');
        }
        if (c.node === 'ControlNetApply') positive = controlNetApply(positive, net, image, u.strength);
        else [positive, negative] = controlNetApplyAdvanced(positive, negative, net, image, u.strength, u.start ?? 0, u.end ?? 1);
      }
      const shape = [1, 4, c.H / 8, c.W / 8] as const;
      const samples = await comfySample({
        model, positive, negative, latent: { samples: new Float32Array(shape.reduce((a, b) => a * b)), shape }, seed: c.seed, cfg: c.cfg,
        sampler: c.sampler, sigmas: comfyKSamplerSigmas(c.sampler, c.scheduler, c.steps),
      });
      const lat = maxRelError(samples, (await ref.read('comfy_latent_out')).toFloat32Array());
      // VAEDecode then SaveImage: clamp((x + 1) / 2) · 255, truncated to uint8.
      const decoded = (await model.decode(Tensor.f32([...shape], samples))).toFloat32Array();
      const [H, W] = [c.H, c.W];
      const want = (await ref.read('image_u8')).data as Uint8Array;
      let within = 0;
      let worst = 0;
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < W; x++) {
          for (let ch = 0; ch < 3; ch++) {
            const v = Math.min(Math.max(Math.fround(Math.fround(decoded[(ch * H + y) * W + x] + 1) / 2), 0), 1);
            const d = Math.abs(Math.trunc(Math.fround(v * 255)) - want[(y * W + x) * 3 + ch]);
            if (d <= 2) within++;
            worst = Math.max(worst, d);
          }
        }
      }
      console.log(`  ${c.id}: final latent ${lat.toExponential(2)}, pixels within ±2 ${(100 * within / want.length).toFixed(2)}% (worst ${worst})`);
      assert.ok(lat <= 1e-3, `latent ${lat}`);
      assert.ok(within / want.length >= 0.99);
    } finally {
      for (const n of nets) await n.close();
      await ref.close();
      await model.close();
    }
  });
}
