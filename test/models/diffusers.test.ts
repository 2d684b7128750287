import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSafetensors, writeSafetensors } from '../../src/formats/safetensors.js';
import { loadCheckpoint } from '../../src/models/checkpoint.js';
import { unetLdmKey, vaeLdmKey, type UNetKeyLayout } from '../../src/models/diffusers-keys.js';
import type { StableDiffusionModel } from '../../src/models/sd-model.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { maxRelError, REF, refTests } from '../ref.js';

const refTest = refTests('diffusers folders against the tiny single files');

const tmp = await mkdtemp(join(tmpdir(), 'latentkit-diffusers-'));
after(() => rm(tmp, { recursive: true, force: true }));

// The conversion below goes LDM → diffusers from the LDM side, as diffusers' own
// convert_original_stable_diffusion_to_diffusers.py does, so it shares no code with the loader's map.

const RESNET: Record<string, string> = {
  'in_layers.0': 'norm1', 'in_layers.2': 'conv1', 'emb_layers.1': 'time_emb_proj',
  'out_layers.0': 'norm2', 'out_layers.3': 'conv2', skip_connection: 'conv_shortcut',
};

function resnet(rest: string): string {
  const [, name, leaf] = /^(.+)\.(weight|bias)$/.exec(rest)!;
  return `${RESNET[name]}.${leaf}`;
}

/** tiny-sd1/2 UNets: num_res_blocks 1, so each input level is [res(+attn), down] and each output level three blocks. */
function unetToDiffusers(key: string, resBlocks: number, ldmKeys: Set<string>): string {
  const top: Record<string, string> = {
    'time_embed.0': 'time_embedding.linear_1', 'time_embed.2': 'time_embedding.linear_2',
    'input_blocks.0.0': 'conv_in', 'out.0': 'conv_norm_out', 'out.2': 'conv_out',
  };
  for (const [from, to] of Object.entries(top)) if (key.startsWith(`${from}.`)) return to + key.slice(from.length);
  let m = /^input_blocks\.(\d+)\.(\d)\.(.+)$/.exec(key);
  if (m) {
    const n = Number(m[1]) - 1;
    const level = Math.floor(n / (resBlocks + 1));
    const layer = n % (resBlocks + 1);
    if (m[3].startsWith('op.')) return `down_blocks.${level}.downsamplers.0.conv.${m[3].slice(3)}`;
    return m[2] === '0' ? `down_blocks.${level}.resnets.${layer}.${resnet(m[3])}` : `down_blocks.${level}.attentions.${layer}.${m[3]}`;
  }
  m = /^middle_block\.(\d)\.(.+)$/.exec(key);
  if (m) return m[1] === '1' ? `mid_block.attentions.0.${m[2]}` : `mid_block.resnets.${m[1] === '0' ? 0 : 1}.${resnet(m[2])}`;
  m = /^output_blocks\.(\d+)\.(\d)\.(.+)$/.exec(key);
  if (m) {
    const n = Number(m[1]);
    const level = Math.floor(n / (resBlocks + 1));
    const layer = n % (resBlocks + 1);
    if (m[3].startsWith('conv.')) return `up_blocks.${level}.upsamplers.0.conv.${m[3].slice(5)}`;
    if (m[2] === '0') return `up_blocks.${level}.resnets.${layer}.${resnet(m[3])}`;
    assert.ok(ldmKeys.has(`output_blocks.${n}.1.proj_in.weight`), key);
    return `up_blocks.${level}.attentions.${layer}.${m[3]}`;
  }
  throw new Error(`unexpected UNet key ${key}`);
}

function vaeToDiffusers(key: string, levels: number, legacyAttentionNames: boolean): string {
  if (/^(post_)?quant_conv\./.test(key)) return key;
  const [, part, rest] = /^(encoder|decoder)\.(.+)$/.exec(key)!;
  const block = (s: string) => s.replace('nin_shortcut', 'conv_shortcut');
  let m = /^down\.(\d+)\.block\.(\d+)\.(.+)$/.exec(rest);
  if (m) return `${part}.down_blocks.${m[1]}.resnets.${m[2]}.${block(m[3])}`;
  m = /^down\.(\d+)\.downsample\.conv\.(.+)$/.exec(rest);
  if (m) return `${part}.down_blocks.${m[1]}.downsamplers.0.conv.${m[2]}`;
  m = /^up\.(\d+)\.block\.(\d+)\.(.+)$/.exec(rest);
  if (m) return `${part}.up_blocks.${levels - 1 - Number(m[1])}.resnets.${m[2]}.${block(m[3])}`;
  m = /^up\.(\d+)\.upsample\.conv\.(.+)$/.exec(rest);
  if (m) return `${part}.up_blocks.${levels - 1 - Number(m[1])}.upsamplers.0.conv.${m[2]}`;
  m = /^mid\.block_(\d)\.(.+)$/.exec(rest);
  if (m) return `${part}.mid_block.resnets.${Number(m[1]) - 1}.${block(m[2])}`;
  m = /^mid\.attn_1\.(norm|q|k|v|proj_out)\.(.+)$/.exec(rest);
  if (m) {
    const names = legacyAttentionNames
      ? { norm: 'group_norm', q: 'query', k: 'key', v: 'value', proj_out: 'proj_attn' }
      : { norm: 'group_norm', q: 'to_q', k: 'to_k', v: 'to_v', proj_out: 'to_out.0' };
    return `${part}.mid_block.attentions.0.${names[m[1] as keyof typeof names]}.${m[2]}`;
  }
  if (rest.startsWith('norm_out.')) return `${part}.conv_norm_out.${rest.slice(9)}`;
  if (/^conv_(in|out)\./.test(rest)) return key;
  throw new Error(`unexpected VAE key ${key}`);
}

function rows(t: Tensor, start: number, end: number): Tensor {
  const cols = t.shape.length === 2 ? t.shape[1] : 1;
  const shape = t.shape.length === 2 ? [end - start, cols] : [end - start];
  return new Tensor(t.dtype, shape, t.data.slice(start * cols, end * cols));
}

/** OpenCLIP → transformers CLIPTextModel, dropping the last layer as diffusers' SD2 conversion does. */
async function openClipToHf(read: (k: string) => Promise<Tensor>, keys: string[], out: Map<string, Tensor>): Promise<number> {
  const P = 'cond_stage_model.model.';
  let layers = 0;
  while (keys.includes(`${P}transformer.resblocks.${layers}.ln_1.weight`)) layers++;
  out.set('text_model.embeddings.token_embedding.weight', await read(`${P}token_embedding.weight`));
  out.set('text_model.embeddings.position_embedding.weight', await read(`${P}positional_embedding`));
  for (const leaf of ['weight', 'bias']) out.set(`text_model.final_layer_norm.${leaf}`, await read(`${P}ln_final.${leaf}`));
  for (let i = 0; i < layers - 1; i++) {
    const src = `${P}transformer.resblocks.${i}.`;
    const dst = `text_model.encoder.layers.${i}.`;
    const inW = await read(`${src}attn.in_proj_weight`);
    const inB = await read(`${src}attn.in_proj_bias`);
    const W = inW.shape[1];
    ['q', 'k', 'v'].forEach((n, j) => {
      out.set(`${dst}self_attn.${n}_proj.weight`, rows(inW, j * W, (j + 1) * W));
      out.set(`${dst}self_attn.${n}_proj.bias`, rows(inB, j * W, (j + 1) * W));
    });
    const pairs: [string, string][] = [['attn.out_proj', 'self_attn.out_proj'], ['ln_1', 'layer_norm1'], ['ln_2', 'layer_norm2'], ['mlp.c_fc', 'mlp.fc1'], ['mlp.c_proj', 'mlp.fc2']];
    for (const [a, b] of pairs) for (const leaf of ['weight', 'bias']) out.set(`${dst}${b}.${leaf}`, await read(`${src}${a}.${leaf}`));
  }
  return layers - 1;
}

const json = (path: string, value: unknown) => writeFile(path, JSON.stringify(value, null, 2));

interface Tiny {
  name: 'tiny-sd1' | 'tiny-sd2';
  family: 'sd1' | 'sd2';
  prediction: 'eps' | 'v';
  single: { unetHeads?: number; unetHeadWidth?: number; textHeads: number };
}

const TINY: Tiny[] = [
  { name: 'tiny-sd1', family: 'sd1', prediction: 'eps', single: { unetHeads: 2, textHeads: 2 } },
  { name: 'tiny-sd2', family: 'sd2', prediction: 'v', single: { unetHeadWidth: 16, textHeads: 2 } },
];

/** Writes the tiny checkpoint out as a diffusers folder with fp16-variant weight files. */
async function writeDiffusersFolder(t: Tiny): Promise<string> {
  const dir = join(tmp, t.name);
  for (const sub of ['unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler']) await mkdir(join(dir, sub), { recursive: true });
  const ckpt = await openSafetensors(`${REF}/ckpt/${t.name}.safetensors`);
  const keys = ckpt.keys();
  const sd2 = t.family === 'sd2';

  const U = 'model.diffusion_model.';
  const unetKeys = new Set(keys.filter((k) => k.startsWith(U)).map((k) => k.slice(U.length)));
  const unet = new Map<string, Tensor>();
  for (const k of unetKeys) unet.set(unetToDiffusers(k, 1, unetKeys), await ckpt.read(U + k));
  if (sd2) {
    // Sharded as large UNets are; the index names the shard of every tensor.
    const names = [...unet.keys()].sort();
    const half = Math.floor(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const file = `diffusion_pytorch_model-0000${i + 1}-of-00002.fp16.safetensors`;
      await writeSafetensors(join(dir, 'unet', file), new Map(shard.map((k) => [k, unet.get(k)!])));
      for (const k of shard) weightMap[k] = file;
    }
    await json(join(dir, 'unet', 'diffusion_pytorch_model.safetensors.index.fp16.json'), { metadata: {}, weight_map: weightMap });
  } else {
    await writeSafetensors(join(dir, 'unet', 'diffusion_pytorch_model.fp16.safetensors'), unet);
  }
  await json(join(dir, 'unet', 'config.json'), {
    _class_name: 'UNet2DConditionModel', in_channels: 4, out_channels: 4, block_out_channels: [32, 64, 64], layers_per_block: 1,
    down_block_types: ['DownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D'],
    up_block_types: ['CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'UpBlock2D'], mid_block_type: 'UNetMidBlock2DCrossAttn',
    cross_attention_dim: 32,
    // SD1 style: one head count; SD2 style: a count per level that makes 16-wide heads.
    attention_head_dim: sd2 ? [2, 4, 4] : 2, use_linear_projection: sd2,
  });

  const V = 'first_stage_model.';
  const vae = new Map<string, Tensor>();
  for (const k of keys.filter((k) => k.startsWith(V))) {
    let v = await ckpt.read(k);
    // diffusers keeps the VAE attention projections as Linear layers.
    if (k.includes('.attn_1.') && v.shape.length === 4) v = v.reshape(v.shape.slice(0, 2));
    vae.set(vaeToDiffusers(k.slice(V.length), 4, sd2), v);
  }
  await writeSafetensors(join(dir, 'vae', 'diffusion_pytorch_model.fp16.safetensors'), vae);
  await json(join(dir, 'vae', 'config.json'), {
    _class_name: 'AutoencoderKL', in_channels: 3, out_channels: 3, latent_channels: 4, layers_per_block: 1,
    block_out_channels: [32, 64, 64, 64], down_block_types: Array(4).fill('DownEncoderBlock2D'), up_block_types: Array(4).fill('UpDecoderBlock2D'),
  });

  const text = new Map<string, Tensor>();
  let layers: number;
  if (sd2) {
    layers = await openClipToHf((k) => ckpt.read(k), keys, text);
  } else {
    const T = 'cond_stage_model.transformer.';
    for (const k of keys.filter((k) => k.startsWith(T))) text.set(k.slice(T.length), await ckpt.read(k));
    layers = 2;
  }
  await writeSafetensors(join(dir, 'text_encoder', 'model.fp16.safetensors'), text);
  await json(join(dir, 'text_encoder', 'config.json'), {
    architectures: ['CLIPTextModel'], hidden_size: 32, num_hidden_layers: layers, num_attention_heads: 2,
    intermediate_size: sd2 ? 128 : 64, hidden_act: sd2 ? 'gelu' : 'quick_gelu', max_position_embeddings: 77,
  });
  await json(join(dir, 'tokenizer', 'special_tokens_map.json'), sd2 ? { pad_token: '!' } : { pad_token: { content: '<|endoftext|>', lstrip: false } });
  await json(join(dir, 'scheduler', 'scheduler_config.json'), { _class_name: 'PNDMScheduler', prediction_type: sd2 ? 'v_prediction' : 'epsilon' });
  await json(join(dir, 'model_index.json'), {
    _class_name: 'StableDiffusionPipeline', unet: ['diffusers', 'UNet2DConditionModel'], vae: ['diffusers', 'AutoencoderKL'],
    text_encoder: ['transformers', 'CLIPTextModel'], tokenizer: ['transformers', 'CLIPTokenizer'], scheduler: ['diffusers', 'PNDMScheduler'],
  });
  await ckpt.close();
  return dir;
}

/** Deterministic values in [-1, 1). */
function random(shape: number[], seed: number): Tensor {
  let s = seed >>> 0;
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.f32(shape, Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  }));
}

function tokenIds(): Tensor {
  const ids = new BigInt64Array(77).fill(49407n);
  [49406, 320, 1125, 539, 550, 2368, 49407].forEach((v, i) => { ids[i] = BigInt(v); });
  return new Tensor('i64', [1, 77], ids);
}

async function compare(label: string, got: Promise<Tensor>, want: Promise<Tensor>): Promise<number> {
  const [g, w] = await Promise.all([got, want]);
  assert.deepEqual(g.shape, w.shape, label);
  const err = maxRelError(g.toFloat32Array(), w.toFloat32Array());
  assert.ok(err < 1e-5, `${label}: relative error ${err}`);
  return err;
}

const folders = new Map<string, string>();

for (const t of TINY) {
  refTest(`${t.name} as a diffusers folder matches the single-file load (1e-5 relative)`, async () => {
    const dir = await writeDiffusersFolder(t);
    folders.set(t.name, dir);
    // Heads come from the folder's configs here; the single file has to be told.
    const diff: StableDiffusionModel = await loadCheckpoint(dir);
    const single: StableDiffusionModel = await loadCheckpoint(`${REF}/ckpt/${t.name}.safetensors`, t.single);
    try {
      assert.equal(diff.family, t.family);
      assert.equal(diff.prediction, t.prediction);
      assert.equal(diff.padTokenId, single.padTokenId);
      assert.equal(diff.parts.text.activation, single.parts.text.activation);
      assert.equal(diff.parts.text.heads, 2);
      assert.equal(diff.parts.text.layers, t.family === 'sd2' ? 1 : 2);
      assert.equal(diff.parts.unet.linearProjection, t.family === 'sd2');
      const { heads, ...rest } = diff.parts.unet;
      const { heads: singleHeads, ...singleRest } = single.parts.unet;
      assert.deepEqual(rest, singleRest);
      // Every attention layer here is 64 wide, so 4 heads and 16-wide heads are the same split.
      const perLayer = (h: typeof heads) => ('count' in h ? h.count : 64 / h.width);
      assert.equal(perLayer(heads), perLayer(singleHeads));

      const x = random([2, 4, 8, 8], 1);
      const ts = Tensor.f32([2], [999, 250.5]);
      const ctx = random([2, 77, 32], 2);
      const errs = {
        unet: await compare('unet', diff.predict(x, ts, ctx), single.predict(x, ts, ctx)),
        decode: await compare('decode', diff.decode(random([1, 4, 4, 4], 3)), single.decode(random([1, 4, 4, 4], 3))),
        encode: await compare('encode', diff.encode(random([1, 3, 16, 16], 4)).then((p) => p.mean), single.encode(random([1, 3, 16, 16], 4)).then((p) => p.mean)),
        text: await compare('text', diff.encodeText(tokenIds()), single.encodeText(tokenIds())),
      };
      console.log(`  ${t.name} diffusers vs single file, worst relative errors: ${Object.entries(errs).map(([k, v]) => `${k} ${v.toExponential(2)}`).join(', ')} (tolerance 1e-5)`);
    } finally {
      await diff.close();
      await single.close();
    }
  });
}

refTest('a diffusers vae/ folder or its weight file works as the separate VAE', async () => {
  const sd1 = folders.get('tiny-sd1') ?? await writeDiffusersFolder(TINY[0]);
  const sd2 = folders.get('tiny-sd2') ?? await writeDiffusersFolder(TINY[1]);
  const single = await loadCheckpoint(`${REF}/ckpt/tiny-sd2.safetensors`, { unetHeadWidth: 16, textHeads: 2 });
  try {
    const z = random([1, 4, 4, 4], 6);
    for (const vae of [join(sd2, 'vae'), join(sd2, 'vae', 'diffusion_pytorch_model.fp16.safetensors')]) {
      const m = await loadCheckpoint(sd1, { vae });
      try {
        await compare(vae, m.decode(z), single.decode(z));
      } finally {
        await m.close();
      }
    }
  } finally {
    await single.close();
  }
});

refTest('options override the folder: prediction, heads, a separate VAE', async () => {
  const dir = folders.get('tiny-sd1') ?? await writeDiffusersFolder(TINY[0]);
  const m = await loadCheckpoint(dir, { prediction: 'v', unetHeadWidth: 16, textHeads: 4, vae: `${REF}/ckpt/tiny-sd2.safetensors` });
  try {
    assert.equal(m.prediction, 'v');
    assert.deepEqual(m.parts.unet.heads, { width: 16 });
    assert.equal(m.parts.text.heads, 4);
    assert.equal(m.parts.prefixes.vae, 'first_stage_model');
    const single = await loadCheckpoint(`${REF}/ckpt/tiny-sd2.safetensors`, { unetHeadWidth: 16, textHeads: 2 });
    try {
      const z = random([1, 4, 4, 4], 5);
      await compare('vae override', m.decode(z), single.decode(z));
    } finally {
      await single.close();
    }
  } finally {
    await m.close();
  }
});

test('a folder without model_index.json is refused, naming the folder', async () => {
  const dir = join(tmp, 'empty');
  await mkdir(dir, { recursive: true });
  await assert.rejects(loadCheckpoint(dir), (err: Error) => err.message.includes(dir) && err.message.includes('model_index.json'));
});

refTest('a folder without UNet weights is refused, naming the folder and the files looked for', async () => {
  const src = folders.get('tiny-sd1') ?? await writeDiffusersFolder(TINY[0]);
  const dir = join(tmp, 'no-unet');
  await cp(src, dir, { recursive: true });
  await unlink(join(dir, 'unet', 'diffusion_pytorch_model.fp16.safetensors'));
  await assert.rejects(loadCheckpoint(dir), (err: Error) => {
    assert.match(err.message, /no weights found/);
    assert.ok(err.message.startsWith(join(dir, 'unet')), err.message);
    assert.ok(err.message.includes('diffusion_pytorch_model.safetensors'), err.message);
    return true;
  });
});

test('diffusers key names map onto the SD 1.5 LDM names', () => {
  // SD 1.5: four levels of two resnets; the lowest-resolution level has no attention.
  const layout: UNetKeyLayout = { layersPerBlock: [2, 2, 2, 2], upHasAttention: [false, true, true, true], midHasAttention: true };
  const unet: [string, string | undefined][] = [
    ['conv_in.weight', 'input_blocks.0.0.weight'],
    ['time_embedding.linear_2.bias', 'time_embed.2.bias'],
    ['down_blocks.0.attentions.0.proj_in.weight', 'input_blocks.1.1.proj_in.weight'],
    ['down_blocks.0.resnets.1.conv1.weight', 'input_blocks.2.0.in_layers.2.weight'],
    ['down_blocks.0.downsamplers.0.conv.weight', 'input_blocks.3.0.op.weight'],
    ['down_blocks.1.resnets.0.conv_shortcut.weight', 'input_blocks.4.0.skip_connection.weight'],
    ['down_blocks.2.downsamplers.0.conv.bias', 'input_blocks.9.0.op.bias'],
    ['down_blocks.3.resnets.1.time_emb_proj.weight', 'input_blocks.11.0.emb_layers.1.weight'],
    ['mid_block.resnets.0.norm1.weight', 'middle_block.0.in_layers.0.weight'],
    ['mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.weight', 'middle_block.1.transformer_blocks.0.ff.net.0.proj.weight'],
    ['mid_block.resnets.1.norm2.bias', 'middle_block.2.out_layers.0.bias'],
    ['up_blocks.0.resnets.2.conv2.weight', 'output_blocks.2.0.out_layers.3.weight'],
    ['up_blocks.0.upsamplers.0.conv.weight', 'output_blocks.2.1.conv.weight'],
    ['up_blocks.1.attentions.0.norm.weight', 'output_blocks.3.1.norm.weight'],
    ['up_blocks.1.upsamplers.0.conv.bias', 'output_blocks.5.2.conv.bias'],
    ['up_blocks.3.attentions.2.transformer_blocks.0.attn2.to_k.weight', 'output_blocks.11.1.transformer_blocks.0.attn2.to_k.weight'],
    ['conv_norm_out.weight', 'out.0.weight'],
    ['conv_out.bias', 'out.2.bias'],
    ['up_blocks.3.upsamplers.0.conv.weight', undefined],
    ['add_embedding.linear_1.weight', undefined],
    ['up_blocks.0.attentions.0.norm.weight', undefined],
  ];
  for (const [from, to] of unet) assert.equal(unetLdmKey(from, layout), to, from);
  const vae: [string, string | undefined][] = [
    ['encoder.conv_in.weight', 'encoder.conv_in.weight'],
    ['encoder.down_blocks.1.resnets.0.conv_shortcut.weight', 'encoder.down.1.block.0.nin_shortcut.weight'],
    ['encoder.down_blocks.2.downsamplers.0.conv.weight', 'encoder.down.2.downsample.conv.weight'],
    ['encoder.mid_block.attentions.0.to_out.0.weight', 'encoder.mid.attn_1.proj_out.weight'],
    ['encoder.mid_block.resnets.1.norm2.bias', 'encoder.mid.block_2.norm2.bias'],
    ['decoder.mid_block.attentions.0.query.bias', 'decoder.mid.attn_1.q.bias'],
    ['decoder.mid_block.attentions.0.group_norm.weight', 'decoder.mid.attn_1.norm.weight'],
    ['decoder.up_blocks.0.resnets.2.conv1.weight', 'decoder.up.3.block.2.conv1.weight'],
    ['decoder.up_blocks.2.upsamplers.0.conv.weight', 'decoder.up.1.upsample.conv.weight'],
    ['decoder.conv_norm_out.weight', 'decoder.norm_out.weight'],
    ['post_quant_conv.weight', 'post_quant_conv.weight'],
    ['decoder.down_blocks.0.resnets.0.conv1.weight', undefined],
    ['decoder.up_blocks.0.resnets.0.constructor.weight', undefined],
  ];
  for (const [from, to] of vae) assert.equal(vaeLdmKey(from, 4), to, from);
});
