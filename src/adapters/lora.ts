// LoRA and the LyCORIS family on SD1 / SD2: files are read and checked completely (every module
// matched to a weight, every shape checked) before anything is patched, then the model is viewed
// through PatchedWeights sources whose ids name the LoRA set, so the session cache keeps one session
// per set and going back to an earlier set is free. The base model is never changed.
import { basename, extname } from 'node:path';
import { fileIdentity } from '../formats/file-identity.js';
import { openStateDict } from '../formats/open.js';
import { GraphBuilder } from '../graph/builder.js';
import { buildClipText } from '../models/clip-text.js';
import type { StableDiffusionModel } from '../models/sd-model.js';
import type { Tensor } from '../tensor/tensor.js';
import { buildTargetTable, normaliseModuleName, type PatchPart, type PatchTarget, type TargetTable } from './lora-keys.js';
import { applyDora, hadamard, ia3Delta, kron, loraMid, matmul, numel, tucker, upDown, type Mat } from './lycoris.js';
import { PatchedWeights, stableHash, type WeightPatch } from './patched-weights.js';

/** One LoRA to apply: A1111's `<lora:name:unet_weight:te_weight>`. */
export interface LoraSpec {
  readonly path: string;
  /** Strength for the UNet (default 1). */
  readonly weight?: number;
  /** Strength for the text encoder (default: the UNet strength, as A1111 does). */
  readonly teWeight?: number;
  /** Name for infotext (`Lora hashes`); default: the file name without extension. */
  readonly name?: string;
}

export type ModuleKind = 'lora' | 'loha' | 'lokr' | 'ia3' | 'full';

// Tensor suffix → role. Order matters: the specific spellings must win over IA3's bare `.weight`.
const SUFFIXES: readonly [string, string][] = [
  ['.lora_up.weight', 'up'], ['.lora_down.weight', 'down'], ['.lora_mid.weight', 'mid'],
  ['.lora_B.weight', 'up'], ['.lora_A.weight', 'down'],
  ['.lora.up.weight', 'up'], ['.lora.down.weight', 'down'],
  ['_lora.up.weight', 'up'], ['_lora.down.weight', 'down'],
  ['.lora_linear_layer.up.weight', 'up'], ['.lora_linear_layer.down.weight', 'down'],
  ['.alpha', 'alpha'], ['.dora_scale', 'dora'],
  ['.hada_w1_a', 'hada_w1_a'], ['.hada_w1_b', 'hada_w1_b'], ['.hada_w2_a', 'hada_w2_a'], ['.hada_w2_b', 'hada_w2_b'],
  ['.hada_t1', 'hada_t1'], ['.hada_t2', 'hada_t2'],
  ['.lokr_w1_a', 'lokr_w1_a'], ['.lokr_w1_b', 'lokr_w1_b'], ['.lokr_w1', 'lokr_w1'],
  ['.lokr_w2_a', 'lokr_w2_a'], ['.lokr_w2_b', 'lokr_w2_b'], ['.lokr_w2', 'lokr_w2'], ['.lokr_t2', 'lokr_t2'],
  ['.diff_b', 'diff_b'], ['.diff', 'diff'], ['.on_input', 'on_input'],
  ['.weight', 'weight'],
];

function splitKey(key: string): [string, string] | undefined {
  for (const [suffix, role] of SUFFIXES) {
    if (key.endsWith(suffix) && key.length > suffix.length) return [key.slice(0, -suffix.length), role];
  }
  return undefined;
}

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;
const mat = (t: Tensor): Mat => ({ data: t.toFloat32Array(), shape: t.shape });

/** A LoRA file's modules, grouped by module name; independent of any model. */
interface ParsedFile {
  readonly path: string;
  readonly identity: string;
  readonly modules: Map<string, Map<string, Tensor>>;
  /** module → role → the key as the file spells it, for messages. */
  readonly keyNames: Map<string, Map<string, string>>;
  /** Keys whose suffix belongs to no known module type. */
  readonly strayKeys: string[];
  readonly keyCount: number;
  readonly metadata: Readonly<Record<string, string>>;
}

const parsedCache = new Map<string, ParsedFile>();
const PARSED_CACHE_SIZE = 8;

async function parseFile(path: string): Promise<ParsedFile> {
  const identity = await fileIdentity(path).catch((err: unknown) => {
    throw new Error(`${path}: no such LoRA file`, { cause: err });
  });
  const hit = parsedCache.get(identity);
  if (hit) return hit;
  const sd = await openStateDict(path);
  try {
    const modules = new Map<string, Map<string, Tensor>>();
    const keyNames = new Map<string, Map<string, string>>();
    const strayKeys: string[] = [];
    const keys = sd.keys();
    for (const key of keys) {
      const split = splitKey(key);
      if (!split) { strayKeys.push(key); continue; }
      const [mod, role] = split;
      let m = modules.get(mod);
      if (!m) modules.set(mod, (m = new Map()));
      m.set(role, await sd.read(key));
      let names = keyNames.get(mod);
      if (!names) keyNames.set(mod, (names = new Map()));
      names.set(role, key);
    }
    const parsed = { path, identity, modules, keyNames, strayKeys, keyCount: keys.length, metadata: sd.metadata };
    parsedCache.set(identity, parsed);
    if (parsedCache.size > PARSED_CACHE_SIZE) parsedCache.delete(parsedCache.keys().next().value as string);
    return parsed;
  } finally {
    await sd.close();
  }
}

/** A module resolved against a model weight and checked: it can compute its update. */
export class LoraModule {
  readonly kind: ModuleKind;
  /** α / rank, or 1 when the file stores no alpha. */
  readonly scale: number;

  constructor(readonly file: string, readonly name: string, readonly target: PatchTarget, private readonly t: ReadonlyMap<string, Tensor>, biasShape?: readonly number[]) {
    const has = (r: string) => t.has(r);
    const fail = (msg: string): never => { throw new Error(`${file}: module '${name}' (→ ${target.key}): ${msg}`); };
    const kind: ModuleKind = has('up') || has('down') ? 'lora'
      : ['hada_w1_a', 'hada_w1_b', 'hada_w2_a', 'hada_w2_b'].some(has) ? 'loha'
        : [...t.keys()].some((r) => r.startsWith('lokr_')) ? 'lokr'
          : has('diff') ? 'full'
            : has('weight') ? 'ia3'
              : fail(`tensors ${[...t.keys()].join(', ')} do not form any known module type (LoRA, LoHa, LoKr, (IA)³, diff)`);
    this.kind = kind;
    const alphaT = t.get('alpha');
    const alpha = alphaT ? alphaT.toFloat32Array()[0] : undefined;
    if (alphaT && (alphaT.size !== 1 || !Number.isFinite(alpha))) fail(`alpha must be one finite number, got ${fmt(alphaT.shape)}`);
    const need = (...roles: string[]) => {
      const missing = roles.filter((r) => !has(r));
      if (missing.length) fail(`${this.kind} module lacks ${missing.join(', ')}`);
    };
    const shape = (r: string) => t.get(r)!.shape;
    let rank: number | undefined;
    let deltaShape: readonly number[];
    const T = target.shape;
    if (this.kind === 'lora') {
      need('up', 'down');
      const [up, down] = [shape('up'), shape('down')];
      rank = down[0];
      if (up.length < 2 || up[1] !== rank || numel(up) !== up[0] * rank) fail(`lora_up ${fmt(up)} does not fit lora_down ${fmt(down)} (rank ${rank})`);
      if (has('mid')) {
        const mid = shape('mid');
        if (mid.length !== 4 || mid[0] !== rank || mid[1] !== rank || numel(down) !== rank * down[1]) fail(`lora_mid ${fmt(mid)} does not fit lora_down ${fmt(down)} and lora_up ${fmt(up)}`);
        deltaShape = [up[0], down[1], mid[2], mid[3]];
      } else deltaShape = [up[0], ...down.slice(1)];
    } else if (this.kind === 'loha') {
      need('hada_w1_a', 'hada_w1_b', 'hada_w2_a', 'hada_w2_b');
      rank = shape('hada_w1_b')[0];
      const part = (i: 1 | 2) => {
        const [a, b] = [shape(`hada_w${i}_a`), shape(`hada_w${i}_b`)];
        if (has(`hada_t${i}`)) {
          const c = shape(`hada_t${i}`);
          if (c[0] !== a[0] || c[1] !== b[0]) fail(`hada_t${i} ${fmt(c)} does not fit hada_w${i}_a ${fmt(a)} and hada_w${i}_b ${fmt(b)}`);
          return [numel(a) / a[0], numel(b) / b[0], ...c.slice(2)];
        }
        if (a.length !== 2 || a[1] !== b[0]) fail(`hada_w${i}_a ${fmt(a)} does not fit hada_w${i}_b ${fmt(b)}`);
        return [a[0], ...b.slice(1)];
      };
      const [s1, s2] = [part(1), part(2)];
      if (numel(s1) !== numel(s2)) fail(`the two LoHa factors rebuild to ${fmt(s1)} and ${fmt(s2)}`);
      deltaShape = s1;
    } else if (this.kind === 'lokr') {
      if (!has('lokr_w1') && !(has('lokr_w1_a') && has('lokr_w1_b'))) fail('LoKr module lacks lokr_w1 (or lokr_w1_a and lokr_w1_b)');
      if (!has('lokr_w2') && !(has('lokr_w2_a') && has('lokr_w2_b'))) fail('LoKr module lacks lokr_w2 (or lokr_w2_a and lokr_w2_b)');
      if (has('lokr_w1_b')) rank = shape('lokr_w1_b')[0];
      if (has('lokr_w2_b')) rank = shape('lokr_w2_b')[0];
      const ab = (a: readonly number[], b: readonly number[], what: string) => {
        if (a.length !== 2 || a[1] !== b[0]) fail(`${what}_a ${fmt(a)} does not fit ${what}_b ${fmt(b)}`);
        return [a[0], numel(b) / b[0]];
      };
      const w1 = has('lokr_w1') ? shape('lokr_w1') : ab(shape('lokr_w1_a'), shape('lokr_w1_b'), 'lokr_w1');
      let w2: readonly number[];
      if (has('lokr_w2')) w2 = shape('lokr_w2');
      else if (has('lokr_t2')) {
        const [c, a, b] = [shape('lokr_t2'), shape('lokr_w2_a'), shape('lokr_w2_b')];
        if (c[0] !== a[0] || c[1] !== b[0]) fail(`lokr_t2 ${fmt(c)} does not fit lokr_w2_a ${fmt(a)} and lokr_w2_b ${fmt(b)}`);
        w2 = [numel(a) / a[0], numel(b) / b[0], ...c.slice(2)];
      } else w2 = ab(shape('lokr_w2_a'), shape('lokr_w2_b'), 'lokr_w2');
      if (w1.length !== 2) fail(`lokr_w1 must be a matrix, got ${fmt(w1)}`);
      deltaShape = [w1[0] * w2[0], w1[1] * numel(w2) / w2[0]];
    } else if (this.kind === 'full') {
      deltaShape = shape('diff');
      if (has('diff_b')) {
        const b = shape('diff_b');
        if (!biasShape) fail(`has diff_b but ${target.key} has no bias`);
        else if (numel(b) !== numel(biasShape)) fail(`diff_b ${fmt(b)} does not fit the bias ${fmt(biasShape)}`);
      }
    } else {
      const w = shape('weight');
      const onInput = this.onInput;
      const n = onInput ? T[1] : T[0];
      if (w.length !== 1 && numel(w) !== n) fail(`(IA)³ weight ${fmt(w)} is not a vector`);
      if (numel(w) !== n) fail(`(IA)³ weight ${fmt(w)} does not fit the ${onInput ? 'input columns' : 'output rows'} of ${fmt(T)}`);
      deltaShape = T;
    }
    if (numel(deltaShape) !== numel(T) || deltaShape[0] !== T[0]) {
      fail(`update of shape ${fmt(deltaShape)} does not fit the weight ${fmt(T)}${target.rows ? ' (a q/k/v block of in_proj)' : ''}`);
    }
    if (has('dora')) {
      const d = shape('dora');
      if (numel(d) !== T[0] && numel(d) !== (T[1] ?? 1)) fail(`dora_scale ${fmt(d)} fits neither the rows nor the columns of ${fmt(T)}`);
    }
    for (const [role, x] of t) {
      if (!x.toFloat32Array().every(Number.isFinite)) fail(`${role} holds NaN or infinite values`);
    }
    this.scale = alpha !== undefined && rank !== undefined && this.kind !== 'ia3' && this.kind !== 'full' ? alpha / rank : 1;
  }

  private get onInput(): boolean {
    const o = this.t.get('on_input');
    return !!o && o.toFloat32Array()[0] !== 0;
  }

  /** The update ΔW (times α/r), flat in the target's layout; (IA)³ needs the weight it scales. */
  delta(base: Float32Array): Float32Array {
    const g = (r: string) => mat(this.t.get(r)!);
    const has = (r: string) => this.t.has(r);
    let d: Mat;
    switch (this.kind) {
      case 'lora':
        d = has('mid') ? loraMid(g('up'), g('down'), g('mid')) : upDown(g('up'), g('down'));
        break;
      case 'loha': {
        const part = (i: 1 | 2) => (has(`hada_t${i}`) ? tucker(g(`hada_t${i}`), g(`hada_w${i}_a`), g(`hada_w${i}_b`)) : upDown(g(`hada_w${i}_a`), g(`hada_w${i}_b`)));
        d = hadamard(part(1), part(2));
        break;
      }
      case 'lokr': {
        const ab = (a: Mat, b: Mat): Mat => ({ data: matmul(a.data, b.data, a.shape[0], a.shape[1], numel(b.shape) / b.shape[0]), shape: [a.shape[0], numel(b.shape) / b.shape[0]] });
        const w1 = has('lokr_w1') ? g('lokr_w1') : ab(g('lokr_w1_a'), g('lokr_w1_b'));
        const w2 = has('lokr_w2') ? g('lokr_w2') : has('lokr_t2') ? tucker(g('lokr_t2'), g('lokr_w2_a'), g('lokr_w2_b')) : ab(g('lokr_w2_a'), g('lokr_w2_b'));
        d = kron(w1, w2);
        break;
      }
      case 'full':
        d = g('diff');
        break;
      case 'ia3':
        return ia3Delta(base, this.target.shape, g('weight').data, this.onInput);
    }
    if (this.scale === 1) return d.data;
    return d.data.map((v) => v * this.scale);
  }

  /** The WeightPatches this module makes at a strength (none at strength 0, so the base stays exact). */
  patches(strength: number): WeightPatch[] {
    if (strength === 0) return [];
    const out: WeightPatch[] = [];
    const dora = this.t.get('dora');
    out.push({
      key: this.target.key, rows: this.target.rows,
      apply: (w, shape, base) => {
        const d = this.delta(this.kind === 'ia3' ? base : w);
        if (dora) return applyDora(w, shape, d, mat(dora), strength);
        for (let i = 0; i < w.length; i++) w[i] += strength * d[i];
      },
    });
    const diffB = this.t.get('diff_b');
    if (diffB && this.target.biasKey) {
      const db = diffB.toFloat32Array();
      out.push({
        key: this.target.biasKey, rows: this.target.biasRows,
        apply: (w) => { for (let i = 0; i < w.length; i++) w[i] += strength * db[i]; },
      });
    }
    return out;
  }
}

/** A LoRA file resolved against one model. */
export interface ResolvedLora {
  readonly path: string;
  readonly name: string;
  readonly identity: string;
  readonly modules: readonly LoraModule[];
  /** Keys that patch nothing in this model (reported, never silently dropped). */
  readonly unmatchedKeys: readonly string[];
  readonly metadata: Readonly<Record<string, string>>;
}

/** Every weight key the model's text-encoder and UNet graphs use. */
function modelKeys(model: StableDiffusionModel): { unet: string[]; text: string[] } {
  const unet = [...new Set(model.unetGraph().weights.map((w) => w.ref.key))];
  const g = new GraphBuilder({ weights: model.parts.weights.text });
  const ids = g.input('ids', ['B', model.parts.text.contextLength], 'i64');
  g.output(buildClipText(g, g.scope(model.parts.prefixes.text), model.parts.text, ids), 'hidden');
  const text = [...new Set(g.finish().weights.map((w) => w.ref.key))];
  return { unet, text };
}

const tables = new WeakMap<object, TargetTable>();

export function targetTable(model: StableDiffusionModel): TargetTable {
  const hit = tables.get(model.parts.weights);
  if (hit) return hit;
  const table = buildTargetTable(model.parts, modelKeys(model));
  tables.set(model.parts.weights, table);
  return table;
}

const FOREIGN: Record<string, string> = {
  'sdxl-te1': 'an SDXL LoRA (it patches SDXL\'s first text encoder, lora_te1_*)',
  'sdxl-te2': 'an SDXL LoRA (it patches SDXL\'s second text encoder, lora_te2_*)',
};

/** Reads a LoRA file and checks every module against the model; throws naming the file and module. */
export async function resolveLora(model: StableDiffusionModel, path: string, name?: string): Promise<ResolvedLora> {
  const file = await parseFile(path);
  const table = targetTable(model);
  const modules: LoraModule[] = [];
  const unmatchedKeys: string[] = [...file.strayKeys];
  let matchedModules = 0;
  for (const [raw, tensors] of file.modules) {
    const names = file.keyNames.get(raw)!;
    const n = normaliseModuleName(raw);
    if ('foreign' in n) {
      throw new Error(`${path}: this is ${FOREIGN[n.foreign]}, but the model is ${model.family} (key '${[...names.values()][0]}')`);
    }
    const target = table.get(n.name);
    if (!target) {
      unmatchedKeys.push(...names.values());
      continue;
    }
    matchedModules++;
    const bias = target.biasKey ? model.parts.weights[target.part].info(target.biasKey)?.shape : undefined;
    const biasShape = bias && target.biasRows ? [target.biasRows[1] - target.biasRows[0]] : bias;
    try {
      modules.push(new LoraModule(path, raw, target, tensors, biasShape));
    } catch (err) {
      const msg = (err as Error).message;
      const hint = wrongFamilyHint(model, tensors);
      throw new Error(hint ? `${msg}; ${hint}` : msg, { cause: err });
    }
  }
  if (file.modules.size > 0 && matchedModules === 0) {
    const first = [...file.modules.keys()][0];
    throw new Error(`${path}: none of its ${file.modules.size} modules matches a weight of this ${model.family} model (first: '${first}'); is it a LoRA for another model family?`);
  }
  if (file.keyCount === 0) throw new Error(`${path}: the file holds no tensors`);
  return {
    path, name: name ?? basename(path, extname(path)), identity: file.identity, modules, unmatchedKeys, metadata: file.metadata,
  };
}

/** SD1 cross-attention reads 768-wide text, SD2 1024-wide: a LoRA's to_k input width tells them apart. */
function wrongFamilyHint(model: StableDiffusionModel, tensors: ReadonlyMap<string, Tensor>): string | undefined {
  const down = tensors.get('down');
  const width = down?.shape[1];
  if (width === 768 && model.parts.unet.contextDim !== 768) return 'the LoRA looks made for SD 1.x (768-wide text conditioning)';
  if (width === 1024 && model.parts.unet.contextDim !== 1024) return 'the LoRA looks made for SD 2.x (1024-wide text conditioning)';
  return `the LoRA was probably made for a different model than this ${model.family} checkpoint`;
}

export interface AppliedLoras {
  /** A view of the model with the LoRAs applied (the model itself when there are none). */
  readonly model: StableDiffusionModel;
  readonly loras: readonly ResolvedLora[];
  /** One line per file with keys that matched nothing. */
  readonly warnings: readonly string[];
}

function strengths(spec: LoraSpec): { unet: number; text: number } {
  const unet = spec.weight ?? 1;
  const text = spec.teWeight ?? unet;
  for (const [what, v] of [['weight', unet], ['text-encoder weight', text]] as const) {
    if (!Number.isFinite(v)) throw new Error(`${spec.path}: LoRA ${what} must be a finite number, got ${v}`);
  }
  return { unet, text };
}

/**
 * Applies LoRAs (any mix of formats) to a model. Every file is read and checked before the view is
 * made, so a bad file throws and leaves nothing half-patched; deltas are computed when a session
 * materialises the weights. Stacked LoRAs add their updates in the order given.
 */
export async function applyLoras(model: StableDiffusionModel, specs: readonly LoraSpec[]): Promise<AppliedLoras> {
  if (specs.length === 0) return { model, loras: [], warnings: [] };
  const resolved: ResolvedLora[] = [];
  const warnings: string[] = [];
  const levels = specs.map(strengths);
  for (const spec of specs) {
    const r = await resolveLora(model, spec.path, spec.name);
    resolved.push(r);
    if (r.unmatchedKeys.length) {
      const ex = r.unmatchedKeys.slice(0, 3).map((k) => `'${k}'`).join(', ');
      warnings.push(`${spec.path}: ${r.unmatchedKeys.length} key${r.unmatchedKeys.length === 1 ? '' : 's'} matched nothing in this ${model.family} model and were skipped (${ex}${r.unmatchedKeys.length > 3 ? ', …' : ''})`);
    }
  }
  const weights: Partial<Record<PatchPart, PatchedWeights>> = {};
  for (const part of ['unet', 'text'] as const) {
    const patches: WeightPatch[] = [];
    const recipe: [string, number][] = [];
    resolved.forEach((r, i) => {
      const s = levels[i][part];
      const mine = r.modules.filter((m) => m.target.part === part);
      if (s === 0 || mine.length === 0) return;
      recipe.push([r.identity, s]);
      for (const m of mine) patches.push(...m.patches(s));
    });
    if (patches.length) weights[part] = new PatchedWeights(model.parts.weights[part], patches, `lora:${stableHash(recipe)}`);
  }
  const view = weights.unet || weights.text ? model.derive({ weights }) : model;
  return { model: view, loras: resolved, warnings };
}
