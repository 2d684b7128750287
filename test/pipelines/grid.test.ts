// A1111's grid layout (modules/images.py image_grid): rows from n_rows, or about √n with Python's round.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gridRows, imageGrid } from '../../src/pipelines/grid.js';

test('rows as image_grid chooses them', () => {
  // n_rows −1: round(√n), half to even — √2 → 1, √3 → 2, √6 → 2, √7 → 3, √12 → 3
  assert.deepEqual([1, 2, 3, 4, 6, 7, 12].map((n) => gridRows(n)), [1, 1, 2, 2, 2, 3, 3]);
  assert.equal(gridRows(6, { nRows: 0, batchSize: 3 }), 3);
  assert.equal(gridRows(6, { nRows: 4 }), 4);
  assert.equal(gridRows(3, { nRows: 5 }), 3, 'never more rows than images');
  // grid_prevent_empty_spots: the largest divisor ≤ √n
  assert.deepEqual([7, 8, 12].map((n) => gridRows(n, { preventEmptySpots: true })), [1, 2, 3]);
});

test('cells are pasted row by row on black', () => {
  const im = (v: number) => ({ width: 2, height: 1, rgb: new Uint8Array(6).fill(v) });
  const g = imageGrid([im(10), im(20), im(30)]);
  assert.deepEqual([g.width, g.height], [4, 2]);
  assert.deepEqual([...g.rgb].filter((_, i) => i % 3 === 0), [10, 10, 20, 20, 30, 30, 0, 0]);
});
