// A1111 hypernetworks: a `.pt` holding, per context width (768, 320, 640, 1280 …), a pair of small
// MLPs that rewrite the context before an attention's to_k and to_v. A1111 runs them in every
// CrossAttention — the self-attention (context = x) as well as the cross-attention — wherever the
// width has a pair, as  k_in = x + strength · mlp_k(x)  (HypernetworkModule.forward), several
// hypernetworks in a row. The MLP is Linear layers sized by `layer_structure` (multiples of the
// width), each but the last followed by the activation (the last too when `activate_output`), then
// a LayerNorm when `is_layer_norm`; dropout is inactive at inference.
import { basename, extname } from 'node:path';
import { fileIdentity } from '../formats/file-identity.js';
import { PyDict, describe, type PyValue } from '../formats/pickle.js';
import { openTorchFile } from '../formats/torch-file.js';
import type { GraphBuilder } from '../graph/builder.js';
import type { Value } from '../graph/types.js';
import type { StableDiffusionModel } from '../models/sd-model.js';
import type { ContextHook } from '../models/unet.js';
import type { Tensor } from '../tensor/tensor.js';
import { PatchedWeights, stableHash } from './patched-weights.js';

export interface HypernetworkSpec {
  readonly path: string;
  /** A1111's multiplier (default 1). */
  readonly strength?: number;
}

type Layer = { kind: 'linear'; key: string; inF: number; outF: number } | { kind: 'act' } | { kind: 'norm'; key: string; width: number };

export interface Hypernetwork {
  readonly path: string;
  readonly name: string;
  readonly identity: string;
  readonly activation: string;
  /** Context width → the k and v MLPs, as layer lists over keys of `tensors`. */
  readonly sizes: ReadonlyMap<number, readonly [Layer[], Layer[]]>;
  /** Tensors under `hypernetwork.<n>.` keys that the graph reads. */
  readonly tensors: ReadonlyMap<string, Tensor>;
}

const ACTIVATIONS: Record<string, (g: GraphBuilder, x: Value) => Value> = {
  linear: (_g, x) => x,
  relu: (g, x) => g.clip(x, 0, Infinity),
  leakyrelu: (g, x) => g.sub(g.clip(x, 0, Infinity), g.mul(g.clip(g.neg(x), 0, Infinity), 0.01)),
  elu: (g, x) => g.add(g.clip(x, 0, Infinity), g.clip(g.sub(g.exp(g.clip(x, -Infinity, 0)), 1), -Infinity, 0)),
  // A1111 maps "swish" to torch's Hardswish, not SiLU.
  swish: (g, x) => g.mul(x, g.div(g.clip(g.add(x, 3), 0, 6), 6)),
  hardswish: (g, x) => g.mul(x, g.div(g.clip(g.add(x, 3), 0, 6), 6)),
  hardsigmoid: (g, x) => g.div(g.clip(g.add(x, 3), 0, 6), 6),
  relu6: (g, x) => g.clip(x, 0, 6),
  tanh: (g, x) => g.tanh(x),
  sigmoid: (g, x) => g.sigmoid(x),
  gelu: (g, x) => g.gelu(x),
  silu: (g, x) => g.silu(x),
  softsign: (g, x) => g.div(x, g.add(g.add(g.clip(x, 0, Infinity), g.clip(g.neg(x), 0, Infinity)), 1)),
  mish: (g, x) => g.mul(x, g.tanh(softplus(g, x))),
  softplus: (g, x) => softplus(g, x),
};

/** log(1 + eˣ) without overflow: relu(x) + log(1 + e^−|x|). */
function softplus(g: GraphBuilder, x: Value): Value {
  const pos = g.clip(x, 0, Infinity);
  const abs = g.add(pos, g.clip(g.neg(x), 0, Infinity));
  return g.add(pos, g.log(g.add(g.exp(g.neg(abs)), 1)));
}

function get(root: PyDict, key: string): PyValue | undefined {
  return root.get(key);
}

/** Reads an A1111 hypernetwork `.pt` through the whitelisting pickle reader (no code runs). */
export async function loadHypernetwork(path: string, index = 0): Promise<Hypernetwork> {
  const identity = await fileIdentity(path).catch((err: unknown) => { throw new Error(`${path}: no such hypernetwork file`, { cause: err }); });
  const file = await openTorchFile(path);
  try {
    const root = file.root;
    const fail = (msg: string): never => { throw new Error(`${path}: not an A1111 hypernetwork: ${msg}`); };
    if (!(root instanceof PyDict)) return fail(`the file holds ${describe(root)}, expected a dict`);
    const structure = get(root, 'layer_structure') ?? [1, 2, 1];
    if (!Array.isArray(structure) || !structure.every((x) => typeof x === 'number') || structure.length < 2 || structure[0] !== 1 || structure[structure.length - 1] !== 1) {
      fail(`layer_structure ${describe(structure)} must be a list of numbers starting and ending with 1`);
    }
    const ls = structure as number[];
    const act = get(root, 'activation_func');
    const activation = typeof act === 'string' ? act.toLowerCase() : 'linear';
    if (act !== undefined && act !== null && typeof act !== 'string') fail(`activation_func is ${describe(act)}`);
    if (!Object.hasOwn(ACTIVATIONS, activation)) {
      throw new Error(`${path}: hypernetwork activation '${activation}' is not supported (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
    }
    const layerNorm = get(root, 'is_layer_norm') === true;
    // A1111 reads a missing activate_output as True.
    const activateOutput = get(root, 'activate_output') !== false;
    const prefix = `hypernetwork.${index}`;
    const tensors = new Map<string, Tensor>();
    const sizes = new Map<number, [Layer[], Layer[]]>();
    for (const [k, pair] of root) {
      const size = typeof k === 'number' ? k : typeof k === 'bigint' ? Number(k) : undefined;
      if (size === undefined) continue;
      if (!Array.isArray(pair) || pair.length !== 2) fail(`entry ${size} is ${describe(pair)}, expected a (k, v) pair of state dicts`);
      const mlps: Layer[][] = [];
      for (const [j, which] of [[0, 'k'], [1, 'v']] as const) {
        const at = `${size}.${j}`;
        // The first hypernetworks named their two layers linear1 / linear2 (A1111's fix_old_state_dict).
        const rename = (name: string) => name.replace(/^linear1\./, 'linear.0.').replace(/^linear2\./, 'linear.1.');
        const params = new Map<string, string>();
        for (const key of file.keys()) if (key.startsWith(`${at}.`)) params.set(rename(key.slice(at.length + 1)), key);
        const indices = [...new Set([...params.keys()].map((n) => /^linear\.(\d+)\.(weight|bias)$/.exec(n)?.[1]).filter((x): x is string => x !== undefined).map(Number))].sort((a, b) => a - b);
        if (indices.length === 0) fail(`entry ${size}/${which} has no linear.N.weight tensors`);
        const layers: Layer[] = [];
        let linears = 0;
        let width = size;
        for (const i of indices) {
          const wKey = params.get(`linear.${i}.weight`);
          const bKey = params.get(`linear.${i}.bias`);
          if (!wKey || !bKey) fail(`entry ${size}/${which}: linear.${i} needs a weight and a bias`);
          const shape = file.info(wKey!)!.shape;
          const dst = `${prefix}.${size}.${which}.${i}`;
          tensors.set(`${dst}.weight`, await file.read(wKey!));
          tensors.set(`${dst}.bias`, await file.read(bKey!));
          if (shape.length === 2) {
            const expectIn = Math.trunc(size * ls[linears]);
            const expectOut = Math.trunc(size * ls[linears + 1]);
            if (linears >= ls.length - 1 || shape[1] !== expectIn || shape[0] !== expectOut || shape[1] !== width) {
              fail(`entry ${size}/${which}: linear.${i}.weight is [${shape.join(', ')}], layer_structure [${ls.join(', ')}] expects [${expectOut}, ${expectIn}]`);
            }
            layers.push({ kind: 'linear', key: dst, inF: shape[1], outF: shape[0] });
            const last = linears === ls.length - 2;
            if (activation !== 'linear' && (!last || activateOutput)) layers.push({ kind: 'act' });
            width = shape[0];
            linears++;
          } else if (shape.length === 1 && layerNorm && shape[0] === width) {
            layers.push({ kind: 'norm', key: dst, width });
          } else {
            fail(`entry ${size}/${which}: linear.${i}.weight has shape [${shape.join(', ')}], neither a Linear nor the LayerNorm is_layer_norm asks for`);
          }
        }
        if (linears !== ls.length - 1) fail(`entry ${size}/${which} has ${linears} Linear layers, layer_structure [${ls.join(', ')}] needs ${ls.length - 1}`);
        mlps.push(layers);
      }
      sizes.set(size, [mlps[0], mlps[1]]);
    }
    if (sizes.size === 0) fail('no per-width (k, v) MLP pairs found');
    const nameV = get(root, 'name');
    return {
      path, identity, activation, sizes, tensors,
      name: typeof nameV === 'string' ? nameV : basename(path, extname(path)),
    };
  } finally {
    await file.close();
  }
}

function mlp(g: GraphBuilder, layers: readonly Layer[], activation: string, x: Value): Value {
  let h = x;
  for (const l of layers) {
    if (l.kind === 'linear') h = g.linear(h, g.scope(l.key));
    else if (l.kind === 'norm') h = g.layerNorm(h, g.scope(l.key), 1e-5);
    else h = ACTIVATIONS[activation](g, h);
  }
  return h;
}

/** The context hook for hypernetworks applied in order, each with its strength. */
export function hypernetworkHook(nets: readonly { net: Hypernetwork; strength: number }[]): ContextHook {
  return (g, context) => {
    const width = context.shape[context.shape.length - 1];
    let k = context;
    let v = context;
    for (const { net, strength } of nets) {
      const pair = typeof width === 'number' ? net.sizes.get(width) : undefined;
      if (!pair || strength === 0) continue;
      k = g.add(k, g.mul(mlp(g, pair[0], net.activation, k), strength));
      v = g.add(v, g.mul(mlp(g, pair[1], net.activation, v), strength));
    }
    return { k, v };
  };
}

/**
 * Applies hypernetworks to a model: the UNet graph gains the MLPs (their weights served from memory
 * beside the UNet's), so each set of hypernetworks and strengths is its own cached session.
 */
export async function applyHypernetworks(model: StableDiffusionModel, specs: readonly HypernetworkSpec[]): Promise<StableDiffusionModel> {
  const active = specs.filter((s) => (s.strength ?? 1) !== 0);
  if (active.length === 0) return model;
  const nets: { net: Hypernetwork; strength: number }[] = [];
  for (const [i, s] of active.entries()) {
    const strength = s.strength ?? 1;
    if (!Number.isFinite(strength)) throw new Error(`${s.path}: hypernetwork strength must be a finite number, got ${strength}`);
    nets.push({ net: await loadHypernetwork(s.path, i), strength });
  }
  const extra = new Map<string, Tensor>();
  for (const { net } of nets) for (const [k, t] of net.tensors) extra.set(k, t);
  const id = `hn:${stableHash(nets.map((n) => [n.net.identity, n.strength]))}`;
  const unet = new PatchedWeights(model.parts.weights.unet, [], id, extra);
  const view = model.derive({ weights: { unet }, unetContextHook: hypernetworkHook(nets) });
  // Build the graph now so a width mismatch is reported here, not at the first step.
  try {
    view.unetGraph();
  } catch (err) {
    throw new Error(`${active.map((s) => s.path).join(', ')}: ${(err as Error).message}`, { cause: err });
  }
  return view;
}
