// One full-size SD1.5 measurement in a fresh process (so peak RSS is this size's alone):
//   node --import tsx bench/sd15-child.ts CHECKPOINT SIZE STEPS
// Prints one JSON line with the timings.
import { fileURLToPath } from 'node:url';
import { countFlops } from '../src/graph/flops.js';
import { loadCheckpoint } from '../src/models/checkpoint.js';
import { encodePair } from '../src/pipelines/conditioning.js';
import { txt2img } from '../src/pipelines/txt2img.js';
import { ClipTokenizer } from '../src/text/clip-tokenizer.js';
import { Tensor } from '../src/tensor/tensor.js';

const [path, sizeArg, stepsArg] = process.argv.slice(2);
if (sizeArg === 'parity') {
  const { sd15Parity } = await import('./sd15-parity.js');
  const model = await loadCheckpoint(path);
  console.log(JSON.stringify(await sd15Parity(model)));
  await model.close();
  process.exit(0);
}
const size = Number(sizeArg);
const steps = Number(stepsArg);
const t = () => performance.now() / 1000;

const start = t();
const model = await loadCheckpoint(path);
const loadS = t() - start;
const tokenizer = await ClipTokenizer.load(fileURLToPath(new URL('../data/clip/', import.meta.url)));
const prompt = 'a photograph of an astronaut riding a horse, highly detailed';

let t0 = t();
const { cond, uncond } = await encodePair(model, tokenizer, prompt, 'blurry', 1, 1);
const textColdS = t() - t0;
t0 = t();
await encodePair(model, tokenizer, prompt, 'blurry', 1, 1);
const textS = t() - t0;

// UNet with CFG: one batch-2 call per step, as txt2img makes it.
const h = size / 8;
const x = Tensor.f32([2, 4, h, h], Float32Array.from({ length: 2 * 4 * h * h }, (_, i) => Math.sin(i)));
const ts = Tensor.f32([2], [500, 500]);
const ctx = Tensor.f32([2, 77, cond.shape[2]], new Float32Array([...cond.toFloat32Array(), ...uncond.toFloat32Array()]));
t0 = t();
await model.predict(x, ts, ctx);
const unetFirstS = t() - t0;
const stepTimes: number[] = [];
for (let i = 0; i < steps; i++) {
  t0 = t();
  await model.predict(x, ts, ctx);
  stepTimes.push(t() - t0);
}
const stepS = stepTimes.reduce((a, b) => a + b, 0) / stepTimes.length;
const flops = countFlops(model.unetGraph(), { B: 2, H: h, W: h, T: 77 });

const z = Tensor.f32([1, 4, h, h], Float32Array.from({ length: 4 * h * h }, (_, i) => Math.cos(i)));
t0 = t();
await model.decode(z);
const vaeColdS = t() - t0;
t0 = t();
await model.decode(z);
const vaeS = t() - t0;

t0 = t();
await txt2img(model, { prompt, negativePrompt: 'blurry', width: size, height: size, steps, seed: 1, tokenizer });
const runWarmS = t() - t0;
const totalS = t() - start;
await model.close();

console.log(JSON.stringify({
  size, steps, loadS, textColdS, textS, unetFirstS, stepS, unetGflops: flops / stepS / 1e9, unetTflopPerStep: flops / 1e12,
  vaeColdS, vaeS, runWarmS, totalS, peakRssGiB: process.resourceUsage().maxRSS / 1024 / 1024,
}));
