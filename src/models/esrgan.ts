// The ESRGAN family of upscalers as people download them, built on their own checkpoint keys:
//
// - RRDBNet (ESRGAN, Real-ESRGAN, and the thousands of community models trained from them) in its
//   three key layouts: the original "old arch" (`model.0`, `model.1.sub.N.RDB1.conv1.0`, …),
//   xinntao/ESRGAN's later "new arch" (`conv_first`, `RRDB_trunk.N.RDB1.conv1`, `trunk_conv`,
//   `upconv1`, `HRconv`), and BasicSR's (`conv_first`, `body.N.rdb1.conv1`, `conv_body`, `conv_up1`,
//   `conv_hr`), which Real-ESRGAN uses.
// - Real-ESRGAN's compact SRVGGNetCompact (`body.0` … `body.2k`, PReLU slopes at odd indices).
//
// Everything (scale, widths, depth, pixel-unshuffle of the 1×/2× BasicSR variants) is read off the
// keys and shapes; no file name or side config is needed.
import type { GraphBuilder, WeightScope } from '../graph/builder.js';
import type { Value } from '../graph/types.js';

export type UpscalerLayout = 'esrgan-old' | 'esrgan-new' | 'basicsr' | 'srvgg';

export interface RrdbConfig {
  readonly kind: 'rrdbnet';
  readonly layout: 'esrgan-old' | 'esrgan-new' | 'basicsr';
  readonly inChannels: number;
  readonly outChannels: number;
  /** Trunk width (`nf` / `num_feat`). */
  readonly features: number;
  /** Dense-block growth channels (`gc` / `num_grow_ch`). */
  readonly growth: number;
  readonly blocks: number;
  /** 2× nearest+conv stages after the trunk. */
  readonly upsamples: number;
  /** pixel_unshuffle factor applied to the input (BasicSR's 1× and 2× models): 1, 2 or 4. */
  readonly unshuffle: number;
  readonly scale: number;
}

export interface SrvggConfig {
  readonly kind: 'srvgg';
  readonly layout: 'srvgg';
  readonly inChannels: number;
  readonly outChannels: number;
  readonly features: number;
  /** Body convolutions between the first and the last (`num_conv`). */
  readonly convs: number;
  /** `prelu` when the file holds slopes; the parameter-free variants cannot be told apart, see detect. */
  readonly activation: 'prelu' | 'leakyrelu';
  readonly scale: number;
}

export type UpscalerConfig = RrdbConfig | SrvggConfig;

/** What detection needs of a state dict. */
export interface KeyInfo {
  keys(): string[];
  info(key: string): { readonly shape: readonly number[] } | undefined;
}

/** Key names of one RRDBNet layout, so one builder serves all three. */
interface RrdbKeys {
  first: string;
  conv(block: number, rdb: number, conv: number): string;
  trunk(blocks: number): string;
  ups(count: number): string[];
  hr(count: number): string;
  last(count: number): string;
}

/** ESRGAN's B.sequential flattens nested Sequentials, so a conv's index depends on the upsampler count. */
function oldUpIndex(i: number): number { return 3 + 3 * i; }

const RRDB_KEYS: Record<RrdbConfig['layout'], RrdbKeys> = {
  'esrgan-old': {
    first: 'model.0',
    conv: (b, r, c) => `model.1.sub.${b}.RDB${r}.conv${c}.0`,
    trunk: (blocks) => `model.1.sub.${blocks}`,
    ups: (n) => Array.from({ length: n }, (_, i) => `model.${oldUpIndex(i)}`),
    hr: (n) => `model.${oldUpIndex(n) - 1}`,
    last: (n) => `model.${oldUpIndex(n) + 1}`,
  },
  'esrgan-new': {
    first: 'conv_first',
    conv: (b, r, c) => `RRDB_trunk.${b}.RDB${r}.conv${c}`,
    trunk: () => 'trunk_conv',
    ups: (n) => Array.from({ length: n }, (_, i) => `upconv${i + 1}`),
    hr: () => 'HRconv',
    last: () => 'conv_last',
  },
  basicsr: {
    first: 'conv_first',
    conv: (b, r, c) => `body.${b}.rdb${r}.conv${c}`,
    trunk: () => 'conv_body',
    ups: (n) => Array.from({ length: n }, (_, i) => `conv_up${i + 1}`),
    hr: () => 'conv_hr',
    last: () => 'conv_last',
  },
};

function shapeOf(sd: KeyInfo, key: string, path: string): readonly number[] {
  const s = sd.info(key)?.shape;
  if (!s) throw new Error(`${path}: missing upscaler weight '${key}'`);
  return s;
}

function countWhile(test: (i: number) => boolean): number {
  let n = 0;
  while (test(n)) n++;
  return n;
}

function log2int(x: number): number | undefined {
  const l = Math.round(Math.log2(x));
  return 2 ** l === x ? l : undefined;
}

/**
 * Reads the architecture of an upscaler from its keys and shapes. `path` only names the file in
 * errors. Throws a one-line error for files that are not an ESRGAN-family upscaler.
 */
export function detectUpscaler(sd: KeyInfo, path = 'upscaler'): UpscalerConfig {
  const keys = new Set(sd.keys());
  const has = (k: string) => keys.has(k);

  if (has('body.0.weight') && sd.info('body.0.weight')?.shape.length === 4) {
    let last = 0;
    for (let i = 2; has(`body.${i}.weight`) && sd.info(`body.${i}.weight`)!.shape.length === 4; i += 2) last = i;
    if (last === 0) throw new Error(`${path}: SRVGG upscaler with no output convolution (body.2.weight)`);
    const [features, inChannels] = shapeOf(sd, 'body.0.weight', path);
    const outC = shapeOf(sd, `body.${last}.weight`, path)[0];
    // Real-ESRGAN's compact models are RGB→RGB; the output conv carries outChannels·scale² maps.
    const outChannels = inChannels;
    const scale = Math.round(Math.sqrt(outC / outChannels));
    if (scale * scale * outChannels !== outC) throw new Error(`${path}: SRVGG output conv has ${outC} channels, not ${outChannels}·scale²`);
    return {
      kind: 'srvgg', layout: 'srvgg', inChannels, outChannels, features, convs: last / 2 - 1, scale,
      activation: has('body.1.weight') ? 'prelu' : 'leakyrelu',
    };
  }

  let layout: RrdbConfig['layout'] | undefined;
  if (has('model.0.weight') && has('model.1.sub.0.RDB1.conv1.0.weight')) layout = 'esrgan-old';
  else if (has('conv_first.weight') && has('RRDB_trunk.0.RDB1.conv1.weight')) layout = 'esrgan-new';
  else if (has('conv_first.weight') && has('body.0.rdb1.conv1.weight')) layout = 'basicsr';
  if (!layout) {
    const sample = [...keys].slice(0, 3).join(', ');
    throw new Error(`${path}: not an ESRGAN / Real-ESRGAN upscaler (keys start ${sample || '(none)'}); supported: RRDBNet (old, new and BasicSR layouts) and SRVGGNetCompact`);
  }
  const k = RRDB_KEYS[layout];
  const blocks = countWhile((b) => has(`${k.conv(b, 1, 1)}.weight`));
  const [features, firstIn] = shapeOf(sd, `${k.first}.weight`, path);
  const growth = shapeOf(sd, `${k.conv(0, 1, 1)}.weight`, path)[0];
  let upsamples: number;
  if (layout === 'esrgan-old') {
    // After the trunk: n upconvs (each upsample, conv, lrelu), then HR conv, lrelu, last conv.
    const idx = [...keys].map((key) => /^model\.(\d+)\.weight$/.exec(key)).filter((m) => m).map((m) => Number(m![1])).filter((i) => i >= 2);
    upsamples = idx.length - 2;
    if (upsamples < 0 || idx.some((i) => ![...Array.from({ length: upsamples }, (_, j) => oldUpIndex(j)), oldUpIndex(upsamples) - 1, oldUpIndex(upsamples) + 1].includes(i))) {
      throw new Error(`${path}: unsupported old-arch ESRGAN layout (convs after the trunk at model.${idx.join(', model.')}); only 2× nearest upconv stages are supported`);
    }
  } else {
    upsamples = countWhile((i) => has(`${k.ups(i + 1)[i]}.weight`));
  }
  const outChannels = shapeOf(sd, `${k.last(upsamples)}.weight`, path)[0];
  // BasicSR's x2 / x1 models pixel-unshuffle the input by 2 / 4 ahead of the same ×4 body.
  const unshuffle = Math.round(Math.sqrt(firstIn / outChannels));
  if (unshuffle * unshuffle * outChannels !== firstIn || log2int(unshuffle) === undefined) {
    throw new Error(`${path}: first conv takes ${firstIn} channels, which fits neither ${outChannels} nor a pixel-unshuffle of it`);
  }
  return {
    kind: 'rrdbnet', layout, inChannels: firstIn / (unshuffle * unshuffle), outChannels, features, growth, blocks, upsamples, unshuffle,
    scale: 2 ** upsamples / unshuffle,
  };
}

const LRELU = 0.2;

/** ResidualDenseBlock_5C: five 3×3 convs, each seeing the concatenation of all earlier outputs. */
function denseBlock(g: GraphBuilder, w: WeightScope, k: RrdbKeys, b: number, r: number, x: Value): Value {
  const feats = [x];
  let out = x;
  for (let c = 1; c <= 5; c++) {
    const input = feats.length === 1 ? x : g.concat(feats, 1);
    out = g.conv2d(input, w.scope(k.conv(b, r, c)), { padding: 1, kernel: 3 });
    if (c < 5) {
      out = g.leakyRelu(out, LRELU);
      feats.push(out);
    }
  }
  // Residual scaling 0.2 keeps the very deep trunk stable (ESRGAN §3.1).
  return g.add(g.mul(out, 0.2), x);
}

function rrdbnet(g: GraphBuilder, w: WeightScope, cfg: RrdbConfig, x: Value): Value {
  const k = RRDB_KEYS[cfg.layout];
  const input = cfg.unshuffle > 1 ? g.pixelUnshuffle(x, cfg.unshuffle) : x;
  const feat = g.conv2d(input, w.scope(k.first), { padding: 1, kernel: 3 });
  let h = feat;
  for (let b = 0; b < cfg.blocks; b++) {
    let y = h;
    for (let r = 1; r <= 3; r++) y = denseBlock(g, w, k, b, r, y);
    h = g.add(g.mul(y, 0.2), h);
  }
  h = g.add(feat, g.conv2d(h, w.scope(k.trunk(cfg.blocks)), { padding: 1, kernel: 3 }));
  for (const up of k.ups(cfg.upsamples)) h = g.leakyRelu(g.conv2d(g.upsampleNearest(h, 2), w.scope(up), { padding: 1, kernel: 3 }), LRELU);
  h = g.leakyRelu(g.conv2d(h, w.scope(k.hr(cfg.upsamples)), { padding: 1, kernel: 3 }), LRELU);
  return g.conv2d(h, w.scope(k.last(cfg.upsamples)), { padding: 1, kernel: 3 });
}

function srvgg(g: GraphBuilder, w: WeightScope, cfg: SrvggConfig, x: Value): Value {
  let h = x;
  for (let i = 0; i <= cfg.convs; i++) {
    h = g.conv2d(h, w.scope(`body.${2 * i}`), { padding: 1, kernel: 3 });
    h = cfg.activation === 'prelu' ? g.prelu(h, w.get(`body.${2 * i + 1}.weight`)) : g.leakyRelu(h, 0.1);
  }
  h = g.conv2d(h, w.scope(`body.${2 * cfg.convs + 2}`), { padding: 1, kernel: 3 });
  // The network learns the residual over a nearest-neighbour upscale of its input.
  return g.add(g.pixelShuffle(h, cfg.scale), g.upsampleNearest(x, cfg.scale));
}

/**
 * Features after the first block — RRDBNet: conv_first then RRDB 0; SRVGG: body.0 and its activation —
 * for checking a file against a reference of the original network one stage at a time.
 */
export function buildFirstBlock(g: GraphBuilder, w: WeightScope, cfg: UpscalerConfig, x: Value): Value {
  if (cfg.kind === 'srvgg') {
    const h = g.conv2d(x, w.scope('body.0'), { padding: 1, kernel: 3 });
    return cfg.activation === 'prelu' ? g.prelu(h, w.get('body.1.weight')) : g.leakyRelu(h, 0.1);
  }
  const k = RRDB_KEYS[cfg.layout];
  const input = cfg.unshuffle > 1 ? g.pixelUnshuffle(x, cfg.unshuffle) : x;
  const feat = g.conv2d(input, w.scope(k.first), { padding: 1, kernel: 3 });
  let y = feat;
  for (let r = 1; r <= 3; r++) y = denseBlock(g, w, k, 0, r, y);
  return g.add(g.mul(y, 0.2), feat);
}

/** RGB in [0, 1], NCHW → RGB in about [0, 1] at `cfg.scale` times the size. */
export function buildUpscaler(g: GraphBuilder, w: WeightScope, cfg: UpscalerConfig, x: Value): Value {
  return cfg.kind === 'srvgg' ? srvgg(g, w, cfg, x) : rrdbnet(g, w, cfg, x);
}

/** Input sizes must be multiples of this (BasicSR's unshuffled 1×/2× models). */
export function sizeMultiple(cfg: UpscalerConfig): number {
  return cfg.kind === 'rrdbnet' ? cfg.unshuffle : 1;
}

export function describeUpscaler(cfg: UpscalerConfig): string {
  if (cfg.kind === 'srvgg') return `SRVGGNetCompact ${cfg.scale}× (${cfg.features} features, ${cfg.convs} convs, ${cfg.activation})`;
  return `RRDBNet ${cfg.scale}× (${cfg.layout} keys, ${cfg.blocks} blocks, ${cfg.features} features, growth ${cfg.growth}${cfg.unshuffle > 1 ? `, pixel-unshuffle ${cfg.unshuffle}` : ''})`;
}
