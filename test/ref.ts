// Where the reference data lives, and how suites that need it behave on a clone without it.
// The data (tiny checkpoints, vectors from the original PyTorch code, the CLIP vocabulary) is not in
// the repository; CI lays it out as ../shared next to the checkout. A fresh clone has none of it, so
// those suites report themselves skipped — one line each, naming the folder — instead of failing on
// ENOENT, and LATENTKIT_REQUIRE_REF=1 (set by .ci/run) turns that skip into a failure so CI can
// never lose its parity tests to a misplaced folder.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const CHECKOUT = fileURLToPath(new URL('..', import.meta.url));

/** The reference vectors: LATENTKIT_REF_DIR, else ../shared/ref next to the checkout. */
export const REF = resolve(process.env.LATENTKIT_REF_DIR || join(CHECKOUT, '..', 'shared', 'ref'));

/** The CLIP vocabulary files, beside the reference folder (../shared/clip). */
export const CLIP_DIR = join(dirname(REF), 'clip');

const REQUIRED = process.env.LATENTKIT_REQUIRE_REF === '1';

/** Why suites needing these folders cannot run here, or undefined when they all exist. */
export function missingRef(dirs: readonly string[] = [REF]): string | undefined {
  const gone = dirs.filter((d) => !existsSync(d));
  if (gone.length === 0) return undefined;
  return `reference data not found: ${gone.join(', ')} (set LATENTKIT_REF_DIR)`;
}

/** True when the reference folder is there; module-level reads of reference files check it first. */
export const HAS_REF = missingRef() === undefined;

type TestFn = typeof test;

/**
 * `test` for a suite that reads reference data. With the folders present it is node:test's `test`.
 * Without them the suite registers one skipped test (or, under LATENTKIT_REQUIRE_REF=1, one failing
 * test) named after the suite, and its individual tests are not registered at all.
 */
export function refTests(suite: string, dirs: readonly string[] = [REF]): TestFn {
  const why = missingRef(dirs);
  if (why === undefined) return test;
  if (REQUIRED) {
    test(suite, () => { throw new Error(`LATENTKIT_REQUIRE_REF=1: ${why}`); });
  } else {
    test(suite, { skip: why }, () => undefined);
  }
  const ignore = () => Promise.resolve();
  return Object.assign(ignore, test) as unknown as TestFn;
}

/** max |a − b| ÷ max |b| — the parity measure the reference README uses. */
export function maxRelError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new Error(`length ${got.length} ≠ ${want.length}`);
  let diff = 0;
  let mag = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    mag = Math.max(mag, Math.abs(want[i]));
  }
  return mag === 0 ? diff : diff / mag;
}
