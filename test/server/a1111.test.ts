// The A1111 API on the real engine and the tiny SD1 checkpoint: A1111's own API test bodies, seeds and
// infotext, same image as `latentkit generate --profile a1111`, png-info, options, the lists, and the
// shared queue (order in /queue, /progress while sampling, interrupt, a client that hangs up).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { readPngText } from '../../src/formats/png-text.js';
import { getJson, postJson, waitFor, type Json, type TestServer } from './helpers.js';
import { startProgressPoller } from './progress-poller.js';
import { NO_REF, refTest, startRealServer, TINY_SD1, txt2img as comfyTxt2img } from './real-engine.js';
import type { WorkflowEngine } from '../../src/workflow/engine.js';

const test = refTest('A1111 API on the real engine');
const API = '/sdapi/v1';

let s: TestServer;
let image64: string;
let mask64: string;

before(async () => {
  if (NO_REF) return;
  s = await startRealServer();
  await writeFile(join(s.dirs.data, 'styles.csv'), 'name,prompt,negative_prompt\n"fox style","{prompt}, a fox, snow",blurry\nplain,oil painting,\n');
  // A1111's fixtures are a 64×64-ish photo and a mask; these stand in: a gradient and a half-white mask
  const rgb = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < 64 * 64; i++) rgb.set([(i % 64) * 4, Math.floor(i / 64) * 4, 128], i * 3);
  image64 = (await sharp(rgb, { raw: { width: 64, height: 64, channels: 3 } }).png().toBuffer()).toString('base64');
  const m = Buffer.alloc(64 * 64);
  for (let i = 0; i < 64 * 64; i++) m[i] = i % 64 >= 32 ? 255 : 0;
  mask64 = (await sharp(m, { raw: { width: 64, height: 64, channels: 1 } }).png().toBuffer()).toString('base64');
});
after(async () => { await s?.close(); });

/** test/test_txt2img.py `simple_txt2img_request` (A1111 1.10). */
const simpleTxt2img = () => ({
  batch_size: 1, cfg_scale: 7, denoising_strength: 0, enable_hr: false, eta: 0, firstphase_height: 0, firstphase_width: 0,
  height: 64, n_iter: 1, negative_prompt: '', prompt: 'example prompt', restore_faces: false, s_churn: 0, s_noise: 1, s_tmax: 0,
  s_tmin: 0, sampler_index: 'Euler a', seed: -1, seed_resize_from_h: -1, seed_resize_from_w: -1, steps: 3, styles: [], subseed: -1,
  subseed_strength: 0, tiling: false, width: 64,
});

/** test/test_img2img.py `simple_img2img_request`. */
const simpleImg2img = () => ({
  batch_size: 1, cfg_scale: 7, denoising_strength: 0.75, eta: 0, height: 64, include_init_images: false, init_images: [image64],
  inpaint_full_res: false, inpaint_full_res_padding: 0, inpainting_fill: 0, inpainting_mask_invert: false, mask: null, mask_blur: 4,
  n_iter: 1, negative_prompt: '', override_settings: {}, prompt: 'example prompt', resize_mode: 0, restore_faces: false, s_churn: 0,
  s_noise: 1, s_tmax: 0, s_tmin: 0, sampler_index: 'Euler a', seed: -1, seed_resize_from_h: -1, seed_resize_from_w: -1, steps: 3,
  styles: [], subseed: -1, subseed_strength: 0, tiling: false, width: 64,
});

async function pixels(b64: string | Buffer): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(typeof b64 === 'string' ? Buffer.from(b64, 'base64') : b64).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

test("A1111's own txt2img test bodies pass (test_txt2img.py)", async () => {
  const cases: [string, Record<string, unknown>][] = [
    ['simple', {}], ['negative prompt', { negative_prompt: 'example negative prompt' }],
    ['complex prompt', { prompt: '((emphasis)), (emphasis1:1.1), [to:1], [from::2], [from:to:0.3], [alt|alt1]' }],
    ['not square', { height: 128 }], ['hires fix', { enable_hr: true }], ['tiling', { tiling: true }], ['restore faces', { restore_faces: true }],
    ['PLMS', { sampler_index: 'PLMS' }], ['DDIM', { sampler_index: 'DDIM' }], ['UniPC', { sampler_index: 'UniPC' }],
    ['multiple batches', { n_iter: 2 }], ['batch', { batch_size: 2 }],
  ];
  for (const [name, change] of cases) {
    const r = await postJson(`${s.url}${API}/txt2img`, { ...simpleTxt2img(), ...change });
    assert.equal(r.status, 200, `${name}: ${JSON.stringify(r.body).slice(0, 300)}`);
    const want = ((change.n_iter as number) ?? 1) * ((change.batch_size as number) ?? 1);
    assert.equal(r.body.images.length, want, name);
    const size = await pixels(r.body.images[0]);
    const scale = change.enable_hr ? 2 : 1;
    assert.deepEqual([size.width, size.height], [64 * scale, ((change.height as number) ?? 64) * scale], name);
    assert.equal(typeof r.body.info, 'string');
  }
});

test("A1111's own img2img and extras test bodies pass (test_img2img.py, test_extras.py)", async () => {
  const cases: [string, Record<string, unknown>][] = [
    ['simple', {}], ['inpainting', { mask: mask64 }], ['inverted mask', { mask: mask64, inpainting_mask_invert: true }],
    ['sd upscale', { script_name: 'sd upscale', script_args: ['', 8, 'Lanczos', 2.0] }],
  ];
  for (const [name, change] of cases) {
    const r = await postJson(`${s.url}${API}/img2img`, { ...simpleImg2img(), ...change });
    assert.equal(r.status, 200, `${name}: ${JSON.stringify(r.body).slice(0, 300)}`);
    assert.equal(r.body.images.length, 1, name);
    assert.equal(r.body.parameters.init_images, null, 'include_init_images false');
  }
  const upscale = {
    resize_mode: 0, show_extras_results: true, gfpgan_visibility: 0, codeformer_visibility: 0, codeformer_weight: 0, upscaling_resize: 2,
    upscaling_resize_w: 128, upscaling_resize_h: 128, upscaling_crop: true, upscaler_1: 'Lanczos', upscaler_2: 'None',
    extras_upscaler_2_visibility: 0, image: image64,
  };
  const one = await postJson(`${s.url}${API}/extra-single-image`, upscale);
  assert.equal(one.status, 200, JSON.stringify(one.body).slice(0, 300));
  assert.deepEqual([(await pixels(one.body.image)).width, (await pixels(one.body.image)).height], [128, 128]);
  // test_png_info_performed and test_interrogate_performed post these bodies to extra-single-image
  assert.equal((await postJson(`${s.url}${API}/extra-single-image`, { image: image64 })).status, 200);
  assert.equal((await postJson(`${s.url}${API}/extra-single-image`, { image: image64, model: 'clip' })).status, 200);
  const batch = await postJson(`${s.url}${API}/extra-batch-images`, { ...upscale, imageList: [{ data: image64, name: 'a.png' }, { data: `data:image/png;base64,${image64}`, name: 'b.png' }] });
  assert.equal(batch.status, 200);
  assert.equal(batch.body.images.length, 2);
  const missing = await postJson(`${s.url}${API}/extra-batch-images`, { ...upscale, image_list: [] });
  assert.deepEqual([missing.status, missing.body], [422, { detail: [{ loc: ['body', 'imageList'], msg: 'field required', type: 'value_error.missing' }] }]);
});

test('seeds, infotext in info and PNG, styles, png-info round trip, unknown sampler falls back', async () => {
  const r = await postJson(`${s.url}${API}/txt2img`, {
    prompt: 'a cat', negative_prompt: 'ugly', styles: ['fox style', 'nope'], seed: 1000, subseed: 7, n_iter: 2, batch_size: 2,
    steps: 2, width: 64, height: 64, sampler_name: 'DPM++ 2M Karras', cfg_scale: '6.5',
  });
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  const info = JSON.parse(r.body.info);
  assert.deepEqual(info.all_seeds, [1000, 1001, 1002, 1003]);
  assert.deepEqual(info.all_subseeds, [7, 8, 9, 10]);
  assert.equal(info.prompt, 'a cat, a fox, snow');
  assert.equal(info.negative_prompt, 'ugly, blurry');
  assert.equal(info.sampler_name, 'DPM++ 2M');
  assert.equal(info.cfg_scale, 6.5);
  assert.equal(info.denoising_strength, null);
  assert.equal(info.sd_model_hash, '96c25ad794');
  assert.equal(info.infotexts.length, 4);
  assert.match(info.job_timestamp, /^\d{14}$/);
  for (const [i, b64] of r.body.images.entries()) {
    const text = readPngText(Buffer.from(b64, 'base64')).parameters;
    assert.equal(text, info.infotexts[i]);
    assert.match(text, new RegExp(`Sampler: DPM\\+\\+ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: ${1000 + i}, Size: 64x64`));
  }
  const png = await postJson(`${s.url}${API}/png-info`, { image: `data:image/png;base64,${r.body.images[1]}` });
  assert.equal(png.status, 200);
  assert.equal(png.body.info, info.infotexts[1]);
  assert.equal(png.body.parameters.Prompt, 'a cat, a fox, snow');
  assert.equal(png.body.parameters['Negative prompt'], 'ugly, blurry');
  assert.deepEqual([png.body.parameters.Seed, png.body.parameters['Size-1'], png.body.parameters['Size-2']], ['1001', '64', '64']);
  assert.deepEqual((await postJson(`${s.url}${API}/png-info`, {})).body.detail[0].type, 'value_error.missing');

  const odd = await postJson(`${s.url}${API}/txt2img`, { prompt: 'x', steps: 2, width: 64, height: 64, seed: 3, sampler_name: 'No Such Sampler' });
  assert.equal(odd.status, 200, 'an unknown sampler falls back as in A1111');
  assert.equal(JSON.parse(odd.body.info).sampler_name, 'DPM++ 2M');
  // the infotext field fills what the request leaves out
  const again = await postJson(`${s.url}${API}/txt2img`, { infotext: info.infotexts[2], steps: 1 });
  const againInfo = JSON.parse(again.body.info);
  assert.deepEqual([againInfo.prompt, againInfo.negative_prompt, againInfo.seed, againInfo.steps, againInfo.cfg_scale, againInfo.sampler_name, againInfo.width],
    ['a cat, a fox, snow', 'ugly, blurry', 1002, 1, 6.5, 'DPM++ 2M', 64]);
  assert.match(againInfo.infotexts[0], /Schedule type: Karras/);
  const none = await postJson(`${s.url}${API}/txt2img`, { prompt: 'x', steps: 2, width: 64, height: 64, seed: 3, send_images: false });
  assert.deepEqual(none.body.images, []);
  assert.equal(JSON.parse(none.body.info).sampler_name, 'Euler', 'no sampler given: sampler_index default Euler');
});

test('same seed, same image: /sdapi/v1/txt2img agrees with latentkit generate --profile a1111 within one level', async () => {
  const api = await postJson(`${s.url}${API}/txt2img`, { prompt: 'a red fox', negative_prompt: 'blurry', seed: 4242, steps: 4, cfg_scale: 6, width: 64, height: 96, sampler_name: 'Euler a' });
  assert.equal(api.status, 200);
  const out = join(s.dirs.root, 'cli.png');
  const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
  const args = ['--import', 'tsx', entry, 'generate', '-m', TINY_SD1, '-p', 'a red fox', '-n', 'blurry', '--seed', '4242', '--steps', '4', '--cfg', '6', '-W', '64', '-H', '96', '--sampler', 'Euler a', '--profile', 'a1111', '-o', out];
  const code = await new Promise<number>((resolve) => {
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    c.on('exit', (n) => resolve(n ?? 1));
  });
  assert.equal(code, 0);
  const a = await pixels(api.body.images[0]);
  const b = await pixels(await readFile(out));
  assert.deepEqual([a.width, a.height], [b.width, b.height]);
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
  console.log(`# API vs generate: worst pixel difference ${worst} level(s) of 255`);
  assert.ok(worst <= 1, `worst difference ${worst}`);
});

test('save_images: the grid comes first (A1111 image_grid rows), infotext floats as the API writes them', async () => {
  const r = await postJson(`${s.url}${API}/txt2img`, { prompt: 'a red barn', seed: 41, steps: 2, width: 64, height: 64, batch_size: 3, cfg_scale: 7, save_images: true });
  assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
  const info = JSON.parse(r.body.info);
  assert.equal(r.body.images.length, 4);
  assert.equal(info.index_of_first_image, 1);
  assert.deepEqual(info.all_seeds, [41, 42, 43]);
  assert.equal(info.infotexts.length, 4);
  assert.match(info.infotexts[1], /CFG scale: 7\.0, Seed: 41,/);
  // three images: round(√3) = 2 rows of 2, the fourth cell black
  const grid = await pixels(r.body.images[0]);
  assert.deepEqual([grid.width, grid.height], [128, 128]);
  const cells = await Promise.all(r.body.images.slice(1).map((b: string) => pixels(b)));
  for (const [i, cell] of cells.entries()) {
    const x0 = (i % 2) * 64;
    const y0 = Math.floor(i / 2) * 64;
    for (const [x, y] of [[0, 0], [63, 0], [17, 40], [63, 63]]) {
      const g = ((y0 + y) * 128 + x0 + x) * 3;
      const c = (y * 64 + x) * 3;
      assert.deepEqual([...grid.data.subarray(g, g + 3)], [...cell.data.subarray(c, c + 3)], `cell ${i} pixel ${x},${y}`);
    }
  }
  assert.deepEqual([...grid.data.subarray((100 * 128 + 100) * 3, (100 * 128 + 100) * 3 + 3)], [0, 0, 0]);
  assert.equal(readPngText(Buffer.from(r.body.images[0], 'base64')).parameters, info.infotexts[1]);
  assert.equal((await readdir(join(s.dirs.output, 'txt2img-grids'))).length, 1);
  assert.equal((await readdir(join(s.dirs.output, 'txt2img-images'))).length, 3);
  const one = await postJson(`${s.url}${API}/txt2img`, { prompt: 'a red barn', seed: 41, steps: 2, width: 64, height: 64, save_images: true });
  assert.equal(one.body.images.length, 1, 'no grid for a single image (grid_only_if_multiple)');
  const unsaved = await postJson(`${s.url}${API}/txt2img`, { prompt: 'a red barn', seed: 41, steps: 2, width: 64, height: 64, batch_size: 2 });
  assert.equal(unsaved.body.images.length, 2, 'API runs without save_images make no grid');
});

test('hires fix with its own prompt and sampler: second pass differs, infotext names both', async () => {
  const base = { prompt: 'a lighthouse', negative_prompt: 'fog', seed: 5, steps: 2, width: 64, height: 64, enable_hr: true, hr_scale: 1.5, denoising_strength: 0.6, sampler_name: 'Euler' };
  const plain = await postJson(`${s.url}${API}/txt2img`, base);
  const own = await postJson(`${s.url}${API}/txt2img`, { ...base, hr_prompt: 'a red lighthouse at night', hr_sampler_name: 'DPM++ 2M' });
  assert.equal(own.status, 200, JSON.stringify(own.body).slice(0, 300));
  const text = JSON.parse(own.body.info).infotexts[0];
  assert.match(text, /^a lighthouse\nNegative prompt: fog\nSteps: 2, Sampler: Euler, /);
  assert.match(text, /Denoising strength: 0\.6, .*Hires sampler: DPM\+\+ 2M, Hires prompt: a red lighthouse at night, Hires upscale: 1\.5, Hires upscaler: Latent/);
  assert.doesNotMatch(text, /Hires negative prompt/);
  assert.doesNotMatch(JSON.parse(plain.body.info).infotexts[0], /Hires prompt/);
  const [a, b] = [await pixels(plain.body.images[0]), await pixels(own.body.images[0])];
  assert.deepEqual([b.width, b.height], [96, 96]);
  assert.notDeepEqual(a.data, b.data, 'the second pass used its own prompt');
});

test('options: checkpoint by title, name or hash; unknown → 500 RuntimeError; override_settings per request', async () => {
  const o = (await getJson(`${s.url}${API}/options`)).body;
  assert.equal(o.sd_model_checkpoint, 'tiny-sd1.safetensors [96c25ad794]');
  assert.equal(o.CLIP_stop_at_last_layers, 1);
  for (const v of ['tiny-sd1', 'tiny-sd1.safetensors', '96c25ad794', o.sd_checkpoint_hash, o.sd_model_checkpoint]) {
    const r = await postJson(`${s.url}${API}/options`, { sd_model_checkpoint: v });
    assert.deepEqual([r.status, r.body], [200, null], String(v));
  }
  const bad = await postJson(`${s.url}${API}/options`, { sd_model_checkpoint: 'nope' });
  assert.deepEqual([bad.status, bad.body], [500, { error: 'RuntimeError', detail: '', body: '', errors: "model 'nope' not found" }]);
  const over = await postJson(`${s.url}${API}/txt2img`, { prompt: 'x', steps: 1, width: 64, height: 64, override_settings: { sd_model_checkpoint: 'nope' } });
  assert.equal(over.status, 500);
  const clip = await postJson(`${s.url}${API}/txt2img`, { prompt: 'x', steps: 1, width: 64, height: 64, seed: 1, override_settings: { CLIP_stop_at_last_layers: 2 } });
  assert.match(JSON.parse(clip.body.info).infotexts[0], /Clip skip: 2/);
  assert.equal((await getJson(`${s.url}${API}/options`)).body.CLIP_stop_at_last_layers, 1, 'restored after the request');
});

test('lists and state routes answer in A1111 shapes', async () => {
  await mkdir(join(s.dirs.models, 'loras'), { recursive: true });
  await writeFile(join(s.dirs.models, 'loras', 'detail.safetensors'), '');
  const get = async (p: string): Promise<Json> => {
    const r = await getJson(`${s.url}${API}${p}`);
    assert.equal(r.status, 200, p);
    return r.body;
  };
  assert.deepEqual((await get('/samplers'))[0], { name: 'DPM++ 2M', aliases: ['k_dpmpp_2m'], options: {} });
  assert.deepEqual((await get('/schedulers'))[0], { name: 'automatic', label: 'Automatic', aliases: null, default_rho: -1, need_inner_model: false });
  assert.deepEqual((await get('/upscalers')).map((u: Json) => u.name), ['None', 'Lanczos', 'Nearest']);
  assert.equal((await get('/latent-upscale-modes')).length, 6);
  const [m] = await get('/sd-models');
  assert.deepEqual([m.title, m.model_name, m.hash, m.sha256.length, m.config], ['tiny-sd1.safetensors [96c25ad794]', 'tiny-sd1', '96c25ad794', 64, null]);
  assert.deepEqual(await get('/prompt-styles'), [{ name: 'fox style', prompt: '{prompt}, a fox, snow', negative_prompt: 'blurry' }, { name: 'plain', prompt: 'oil painting', negative_prompt: '' }]);
  assert.deepEqual((await get('/loras')).map((l: Json) => l.name), ['detail']);
  assert.deepEqual(await get('/embeddings'), { loaded: {}, skipped: {} });
  assert.ok((await get('/memory')).ram.total > 0);
  assert.equal(typeof await get('/cmd-flags'), 'object');
  assert.deepEqual(await get('/hypernetworks'), []);
  assert.deepEqual(await get('/sd-vae'), []);
  for (const p of ['/refresh-checkpoints', '/refresh-vae', '/refresh-loras', '/refresh-embeddings']) {
    assert.deepEqual(await postJson(`${s.url}${API}${p}`, {}), { status: 200, body: null }, p);
  }
  const res = await fetch(`${s.url}${API}/samplers`);
  assert.match(res.headers.get('x-process-time') ?? '', /^\d+(\.\d+)?(e-\d+)?$/);
  assert.deepEqual(await getJson(`${s.url}${API}/nope`), { status: 404, body: { detail: 'Not Found' } });
});

test('one queue: API jobs in /queue in order, /progress answered between sampler steps, interrupt, skip, hang-up leaves the queue', async () => {
  const slow = { prompt: 'slow', steps: 200, width: 64, height: 64, seed: 9, n_iter: 2 };
  const first = postJson(`${s.url}${API}/txt2img`, slow);
  const running = await waitFor(async () => {
    const p = (await getJson(`${s.url}${API}/progress`)).body;
    return p.state.sampling_step > 1 ? p : undefined;
  }, 'sampling to start', 60_000);
  assert.equal(running.state.job_count, 2);
  const second = postJson(`${s.url}${API}/txt2img`, { prompt: 'second', steps: 1, width: 64, height: 64, seed: 1 });
  const gone = new AbortController();
  const third = fetch(`${s.url}${API}/txt2img`, { method: 'POST', body: JSON.stringify({ prompt: 'hang up', steps: 1, width: 64, height: 64 }), signal: gone.signal }).catch(() => 'aborted');
  const queue = await waitFor(async () => {
    const q = (await getJson(`${s.url}/queue`)).body;
    return q.queue_pending.length === 2 ? q : undefined;
  }, 'two pending');
  assert.equal(queue.queue_running.length, 1);
  assert.equal(queue.queue_running[0][3].api, 'a1111');
  assert.ok(queue.queue_pending[0][0] < queue.queue_pending[1][0], 'pending in arrival order');
  gone.abort();
  assert.equal(await third, 'aborted');
  await waitFor(async () => (await getJson(`${s.url}/queue`)).body.queue_pending.length === 1, 'hung-up job removed');

  // Measured from another thread (a client in this process would wait on the sampler too). ONNX
  // Runtime's run() is synchronous on the event loop, so an answer can wait for the model call in
  // progress: the bound checked here is "between steps, not after the job" — the 100 ms of the issue
  // holds only while one model call is shorter than that (see bench/a1111.ts for the numbers).
  const poller = startProgressPoller(s.url, { intervalMs: 10, count: 20 });
  await poller.ready;
  const t0 = (await getJson(`${s.url}${API}/progress`)).body.state.sampling_step;
  const polled = await poller.done;
  const t1 = (await getJson(`${s.url}${API}/progress`)).body.state.sampling_step;
  const worst = Math.max(...polled.latencies);
  console.log(`# /progress while sampling (other thread): ${polled.busy} calls over ${t1 - t0} steps, median ${polled.latencies.sort((a, b) => a - b)[10].toFixed(1)} ms, worst ${worst.toFixed(1)} ms`);
  assert.ok(polled.busy === 20 && t1 - t0 < 200, 'twenty answers while the job kept sampling');
  assert.ok(worst < 1000, `progress took ${worst} ms`);
  assert.ok(polled.previews >= 1, 'current_image when asked');
  const one = (await getJson(`${s.url}${API}/progress`)).body;
  await sharp(Buffer.from(one.current_image, 'base64')).metadata();
  assert.ok(one.progress > 0 && one.progress <= 1);
  assert.equal((await getJson(`${s.url}${API}/progress?skip_current_image=true`)).body.current_image, null);
  assert.deepEqual(await postJson(`${s.url}${API}/skip`, {}), { status: 200, body: null });
  await waitFor(async () => (await getJson(`${s.url}${API}/progress`)).body.state.job_no === 1, 'skipped to the second batch');
  assert.deepEqual(await postJson(`${s.url}/interrupt`, {}), { status: 200, body: {} });
  const r1 = await first;
  assert.equal(r1.status, 200);
  // A1111 decodes the latent reached when a batch is skipped or interrupted: one partial image each
  assert.equal(r1.body.images.length, 2, 'the skipped and the interrupted batch each leave their partial image');
  assert.deepEqual(JSON.parse(r1.body.info).all_seeds, [9, 10]);
  for (const b64 of r1.body.images) assert.equal((await pixels(b64)).width, 64);
  const r2 = await second;
  assert.equal(r2.status, 200);
  assert.equal(r2.body.images.length, 1);
  assert.equal((await getJson(`${s.url}/queue`)).body.queue_pending.length, 0);
});

test('a ComfyUI prompt and an A1111 request share the loaded checkpoint (one entry in the engine cache)', async () => {
  const { prompt_id: id } = (await postJson(`${s.url}/prompt`, { prompt: comfyTxt2img(3, { steps: 1 }) })).body;
  await waitFor(async () => (await getJson(`${s.url}/history/${id}`)).body[id], 'ComfyUI prompt', 60_000);
  assert.equal((await postJson(`${s.url}${API}/txt2img`, { prompt: 'x', steps: 1, width: 64, height: 64 })).status, 200);
  assert.equal((s.engine as WorkflowEngine).resources.size, 1);
});
