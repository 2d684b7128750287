// An A1111 hypernetwork .pt as A1111 saves it, for tests: per-width pairs of MLPs (Linear, ReLU,
// LayerNorm, Dropout slot, Linear, LayerNorm), layer_structure and the training options.
import type { Tensor } from '../../src/tensor/tensor.js';
import { OP, PickleWriter, torchZipEntries, writeTensor, writeZipFile } from '../fixtures/pickle/builders.js';
import { randn, rng } from './fixtures.js';

/** One MLP's state dict as A1111's Sequential numbers it: Linear 0, ReLU 1, LayerNorm 2, Dropout 3, Linear 4, LayerNorm 5. */
function mlpTensors(r: () => number, d: number): [string, Tensor][] {
  return [
    ['linear.0.weight', randn(r, [2 * d, d], 0.3)], ['linear.0.bias', randn(r, [2 * d], 0.1)],
    ['linear.2.weight', randn(r, [2 * d], 0.2)], ['linear.2.bias', randn(r, [2 * d], 0.1)],
    ['linear.4.weight', randn(r, [d, 2 * d], 0.3)], ['linear.4.bias', randn(r, [d], 0.1)],
    ['linear.5.weight', randn(r, [d], 0.2)], ['linear.5.bias', randn(r, [d], 0.1)],
  ];
}

export async function writeHypernetwork(path: string, sizes: number[], seed: number): Promise<Map<string, Tensor>> {
  const r = rng(seed);
  const all = new Map<string, Tensor>();
  const storages: Record<string, Uint8Array> = {};
  const w = new PickleWriter().proto(2);
  w.op(OP.EMPTY_DICT).mark();
  for (const size of sizes) {
    w.int(size);
    for (const which of ['k', 'v']) {
      w.emptyOrderedDict().mark();
      for (const [k, t] of mlpTensors(r, size)) {
        const key = `${size}.${which}.${k}`;
        all.set(key, t);
        storages[key] = t.bytes().slice();
        writeTensor(w.str(k), { storage: key, numel: t.size, shape: t.shape });
      }
      w.op(OP.SETITEMS);
    }
    w.op(OP.TUPLE2);
  }
  w.str('layer_structure').op(OP.EMPTY_LIST).mark().float(1).float(2).float(1).op(OP.APPENDS);
  w.str('activation_func').str('relu');
  w.str('is_layer_norm').bool(true);
  w.str('use_dropout').bool(true);
  w.str('activate_output').bool(false);
  w.str('name').str('tiny-hn');
  w.str('step').int(1000);
  w.op(OP.SETITEMS).stop();
  await writeZipFile(path, torchZipEntries('archive', w.toBytes(), storages));
  return all;
}
