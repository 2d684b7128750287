// The CLI side: `latentkit merge`, and `generate --lora` writing `Lora hashes` into the PNG.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addnetHash } from '../../src/formats/hash.js';
import { readPngText } from '../../src/formats/png-text.js';
import { openSafetensors, writeSafetensors } from '../../src/formats/safetensors.js';
import { parseParameters } from '../../src/pipelines/parameters.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { randn, rng } from '../adapters/fixtures.js';
import { CLIP_DIR, REF, refTests } from '../ref.js';

const test = refTests('CLI merge and --lora on tiny-sd1', [REF, CLIP_DIR]);

const entry = fileURLToPath(new URL('../../src/cli/run.ts', import.meta.url));
const tiny = `${REF}/ckpt/tiny-sd1.safetensors`;
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', entry, ...args], { encoding: 'utf8', env: { ...process.env, LATENTKIT_CLIP_VOCAB: '', LATENTKIT_CACHE_DIR: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('latentkit merge writes the merge and refuses bad input in one line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-cli-merge-'));
  const out = join(dir, 'half.safetensors');
  const bw = Array.from({ length: 25 }, () => '0.5').join(',');
  const r = cli('merge', '--a', tiny, '--b', tiny, '--mode', 'weighted-sum', '--alpha', '0.5', '--block-weights', bw, '--out', out);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^wrote .*half\.safetensors \(\d+ tensors: \d+ merged, \d+ copied from A\)\n$/);
  const f = await openSafetensors(out);
  assert.equal(JSON.parse(f.metadata.sd_merge_recipe).interp_method, 'Weighted sum');
  await f.close();
  const again = cli('merge', '--a', tiny, '--b', tiny, '--mode', 'weighted-sum', '--alpha', '0.5', '--out', out);
  assert.equal(again.code, 1);
  assert.match(again.err, /^latentkit: .*half\.safetensors: already exists \(pass --force to replace it\)\n$/);
  const bad = cli('merge', '--a', tiny, '--b', tiny, '--mode', 'weighted-sum', '--alpha', '0.5', '--block-weights', '1,2,3', '--out', join(dir, 'x.safetensors'));
  assert.notEqual(bad.code, 0);
  assert.match(bad.err, /--block-weights needs 25 comma-separated numbers/);
});

test('generate --lora applies it, warns about unmatched keys and writes Lora hashes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lk-cli-lora-'));
  const r = rng(1);
  const n = 'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k';
  const lora = join(dir, 'tiny_style.safetensors');
  await writeSafetensors(lora, {
    [`${n}.lora_down.weight`]: randn(r, [2, 32]), [`${n}.lora_up.weight`]: randn(r, [64, 2]), [`${n}.alpha`]: Tensor.f32([], [2]),
    'lora_unet_no_such_block.lora_down.weight': randn(r, [2, 32]), 'lora_unet_no_such_block.lora_up.weight': randn(r, [64, 2]),
  });
  const png = join(dir, 'out.png');
  const g = cli('generate', '-m', tiny, '-p', 'a fox', '--unet-heads', '2', '--text-heads', '2', '-W', '32', '-H', '32', '--steps', '2', '--seed', '3',
    '--lora', `${lora}:0.8:0.5`, '-o', png);
  assert.equal(g.code, 0, g.err);
  assert.match(g.err, /latentkit: warning: .*tiny_style\.safetensors: 2 keys matched nothing in this sd1 model and were skipped \('lora_unet_no_such_block\./);
  const fields = parseParameters(readPngText(await readFile(png)).parameters).fields;
  assert.equal(fields['Lora hashes'], `tiny_style: ${(await addnetHash(lora)).slice(0, 12)}`);
  const bad = cli('generate', '-m', tiny, '-p', 'x', '--unet-heads', '2', '--text-heads', '2', '-W', '32', '-H', '32', '--steps', '1', '--lora', `${join(dir, 'nope.safetensors')}:1`, '-o', join(dir, 'y.png'));
  assert.equal(bad.code, 1);
  assert.match(bad.err, /^latentkit: .*nope\.safetensors: no such LoRA file\n$/);
});
