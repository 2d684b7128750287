import { fileURLToPath } from 'node:url';

/** ../shared/ref next to the checkout (CI lays it out the same way). */
export const REF = fileURLToPath(new URL('../../shared/ref', import.meta.url));

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
