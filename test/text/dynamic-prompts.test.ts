import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hasDynamicSyntax, resolveDynamicPrompt } from '../../src/text/dynamic-prompts.js';
import { tempDir } from './ti-fixtures.js';

test('variants, multi-pick, ranges, joiners and weights are chosen reproducibly from the seed', () => {
  const p = 'a {red|green|blue} car, {2$$cat|dog|bird}, {1-3$$ and $$x|y|z}, {0::never|1::always}';
  const a = resolveDynamicPrompt(p, 42);
  assert.equal(resolveDynamicPrompt(p, 42), a);
  assert.match(a, /^a (red|green|blue) car, (cat|dog|bird), (cat|dog|bird), [xyz]( and [xyz]){0,2}, always$/);
  const [, , two] = /^a \w+ car, (\w+), (\w+),/.exec(a)!;
  assert.ok(two);
  assert.notEqual(/car, (\w+), (\w+),/.exec(a)![1], /car, (\w+), (\w+),/.exec(a)![2]);
  const seen = new Set(Array.from({ length: 40 }, (_, s) => resolveDynamicPrompt('{red|green|blue}', s)));
  assert.deepEqual([...seen].sort(), ['blue', 'green', 'red']);
  // A1111 syntax and escapes pass through
  assert.equal(resolveDynamicPrompt('[cat:dog:0.5] (x:1.2) \\{literal\\}', 1), '[cat:dog:0.5] (x:1.2) {literal}');
  assert.equal(hasDynamicSyntax('plain (x) [y|z]'), false);
  assert.equal(resolveDynamicPrompt('a [{b|d{:.5] c', 1), 'a [{b|d{:.5] c');
});

test('__wildcards__ come from text files in the wildcard folders, nested and in subfolders', async () => {
  const dir = await tempDir('lk-wild-');
  await mkdir(join(dir, 'colors'));
  await writeFile(join(dir, 'colors', 'warm.txt'), '# warm colours\nred\n\norange\n');
  await writeFile(join(dir, 'animal.txt'), '{big|small} __colors/warm__ cat\n');
  const r = resolveDynamicPrompt('a __animal__', 7, { wildcardDirs: [dir] });
  assert.match(r, /^a (big|small) (red|orange) cat$/);
  assert.throws(() => resolveDynamicPrompt('__missing__', 1, { wildcardDirs: [dir] }), /wildcard __missing__: no file missing\.txt/);
  assert.equal(resolveDynamicPrompt('__../etc/passwd__', 1, { wildcardDirs: [dir] }), '__../etc/passwd__');
});
