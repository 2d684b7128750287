import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClipTokenizer } from './clip-tokenizer.js';
import { CLIP_GZ_NAME } from './vocab.js';
import { CLIP_DIR, REF, missingRef, refTests } from '../../test/ref.js';

// Every test here reads the reference vocabulary and token ids.
const test = refTests('CLIP tokenizer against the reference token ids', [REF, CLIP_DIR]);
const present = missingRef([REF, CLIP_DIR]) === undefined;
const readJson = (rel: string): unknown => JSON.parse(readFileSync(join(REF, rel), 'utf8'));

interface PublicCase { text: string; cleaned: string; pre_tokens: string[]; bpe: string[]; ids: number[] }
interface ModelPrompt { prompt: string; bpe_ids: number[]; truncated: boolean; ids_sd1_pad_eos: number[]; ids_sd2_pad_zero: number[] }

const publicCases = present ? (readJson('text/tokenizer_public.json') as { cases: PublicCase[] }).cases : [];
// Placeholders when absent: no test that uses them is registered then.
const hf = present ? await ClipTokenizer.load(CLIP_DIR) : (undefined as unknown as ClipTokenizer);
const gz = present ? await ClipTokenizer.load(`${CLIP_DIR}/${CLIP_GZ_NAME}`) : hf;

test('both vocabulary layouts load the same 49408 tokens', () => {
  assert.match(hf.source, /vocab\.json/);
  assert.match(gz.source, /\.gz$/);
  assert.equal(hf.vocabSize, 49408);
  assert.equal(gz.vocabSize, 49408);
  for (let id = 0; id < 49408; id++) assert.equal(gz.tokenString(id), hf.tokenString(id));
  assert.equal(hf.bos, 49406);
  assert.equal(hf.eos, 49407);
  assert.equal(hf.tokenString(49406), '<|startoftext|>');
  assert.equal(hf.tokenId('cat</w>'), 2368);
});

for (const [name, tok] of [['vocab.json+merges.txt', hf], ['bpe_simple_vocab_16e6.txt.gz', gz]] as const) {
  test(`openai SimpleTokenizer parity, ${publicCases.length} public cases (${name})`, () => {
    let matched = 0;
    const failures: string[] = [];
    for (const c of publicCases) {
      const cleaned = tok.clean(c.text);
      const pre = tok.preTokenize(cleaned);
      const ids = tok.encode(c.text);
      const bpe = ids.map((id) => tok.tokenString(id));
      const bad = [
        cleaned !== c.cleaned && 'cleaned',
        JSON.stringify(pre) !== JSON.stringify(c.pre_tokens) && 'pre_tokens',
        JSON.stringify(bpe) !== JSON.stringify(c.bpe) && 'bpe',
        JSON.stringify(ids) !== JSON.stringify(c.ids) && 'ids',
      ].filter(Boolean);
      if (bad.length === 0) matched++;
      else failures.push(`${JSON.stringify(c.text)}: ${bad.join(', ')} differ`);
    }
    console.log(`tokenizer_public.json (${name}): ${matched}/${publicCases.length} cases identical in cleaned, pre_tokens, bpe and ids`);
    assert.deepEqual(failures, []);
    assert.equal(matched, 203);
  });
}

for (const model of ['tiny-sd1', 'tiny-sd2']) {
  test(`77-token ids in both padding conventions (${model})`, () => {
    const { prompts, bos, eos, context_length } = readJson(`out/${model}/tokenizer.json`) as {
      prompts: ModelPrompt[]; bos: number; eos: number; context_length: number;
    };
    assert.equal(bos, hf.bos);
    assert.equal(eos, hf.eos);
    let matched = 0;
    for (const p of prompts) {
      assert.deepEqual(hf.encode(p.prompt), p.bpe_ids, p.prompt);
      const sd1 = hf.tokenize77(p.prompt, { padId: hf.eos });
      const sd2 = hf.tokenize77(p.prompt, { padId: 0 });
      assert.equal(sd1.length, context_length);
      assert.deepEqual(sd1, p.ids_sd1_pad_eos, p.prompt);
      assert.deepEqual(sd2, p.ids_sd2_pad_zero, p.prompt);
      assert.deepEqual(gz.tokenize77(p.prompt, { padId: 0 }), p.ids_sd2_pad_zero, p.prompt);
      assert.equal(p.bpe_ids.length > 75, p.truncated, p.prompt);
      if (p.truncated) assert.throws(() => hf.tokenize77(p.prompt, { truncate: false }), /at most 75 fit/);
      matched++;
    }
    console.log(`${model}/tokenizer.json: ${matched}/${prompts.length} prompts identical (SD1 EOS padding and SD2 zero padding)`);
    assert.ok(prompts.some((p) => p.truncated), 'the reference includes a prompt longer than 75 tokens');
  });
}

test('tokenize77 defaults: EOS padding, truncation on', () => {
  const ids = hf.tokenize77('a photo of a cat');
  assert.deepEqual(ids.slice(0, 7), [49406, 320, 1125, 539, 320, 2368, 49407]);
  assert.ok(ids.slice(7).every((id) => id === 49407));
  const long = hf.tokenize77('word '.repeat(100));
  assert.equal(long.length, 77);
  assert.equal(long[76], 49407);
  assert.deepEqual(hf.tokenize77(''), [49406, ...new Array(76).fill(49407)]);
});

test('decode inverts encode up to cleaning, with </w> as spaces', () => {
  assert.equal(hf.decode(hf.encode('A photo of a cat!')), 'a photo of a cat ! ');
  assert.equal(hf.decode(hf.encode('一只猫 🐱 café')), '一只猫 🐱 café ');
  assert.equal(hf.decode([49406, 2368, 49407]), '<|startoftext|>cat <|endoftext|>');
  // A token holding part of a UTF-8 sequence decodes to U+FFFD, as Python's errors="replace".
  const partial = hf.tokenId('ð');
  assert.ok(partial !== undefined);
  assert.equal(hf.decode([partial]), '\ufffd');
  assert.throws(() => hf.decode([49408]), /not in the CLIP vocabulary/);
});

test('special tokens in text, and the BPE cache gives stable results', () => {
  assert.deepEqual(hf.encode('<|startoftext|>x<|endoftext|>'), [49406, hf.tokenId('x</w>'), 49407]);
  const first = hf.encode('supercalifragilisticexpialidocious');
  assert.deepEqual(hf.encode('supercalifragilisticexpialidocious'), first);
  assert.deepEqual(hf.bpe('cat'), ['cat</w>']);
});
