// A1111's image grid (modules/images.py image_grid): the images of a run pasted row by row on a black
// canvas, with the `n_rows` option deciding the rows — the grid the API returns first when it saves.
import { roundHalfEven } from '../sampling/schedules.js';

export interface GridImage {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
}

export interface GridOptions {
  /** A1111's `n_rows`: > 0 that many rows, 0 the batch size, −1 (default) about square. */
  readonly nRows?: number;
  readonly batchSize?: number;
  /** `grid_prevent_empty_spots`: with `nRows` −1, the largest row count ≤ √n that divides n. */
  readonly preventEmptySpots?: boolean;
}

export function gridRows(count: number, o: GridOptions = {}): number {
  const nRows = o.nRows ?? -1;
  let rows: number;
  if (nRows > 0) rows = nRows;
  else if (nRows === 0) rows = o.batchSize ?? 1;
  else if (o.preventEmptySpots) {
    rows = Math.floor(Math.sqrt(count));
    while (count % rows !== 0) rows--;
  } else rows = roundHalfEven(Math.sqrt(count));
  return Math.max(1, Math.min(rows, count));
}

/** Every cell is the first image's size; an image of another size is clipped or leaves black, as PIL's paste. */
export function imageGrid(images: readonly GridImage[], o: GridOptions = {}): GridImage {
  if (!images.length) throw new Error('a grid needs at least one image');
  const rows = gridRows(images.length, o);
  const cols = Math.ceil(images.length / rows);
  const { width: w, height: h } = images[0];
  const W = cols * w;
  const out = new Uint8Array(W * rows * h * 3);
  images.forEach((im, i) => {
    const x0 = (i % cols) * w;
    const y0 = Math.floor(i / cols) * h;
    const cw = Math.min(im.width, w);
    for (let y = 0; y < Math.min(im.height, h); y++) {
      out.set(im.rgb.subarray(y * im.width * 3, (y * im.width + cw) * 3), ((y0 + y) * W + x0) * 3);
    }
  });
  return { width: W, height: rows * h, rgb: out };
}
