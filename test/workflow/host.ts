// A small EngineHost over a temp folder for engine tests (the server has the full one: safe paths,
// ComfyUI file naming, PNG chunks). Models are linked in under the names a workflow asks for.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import sharp from 'sharp';
import { withPngText } from '../../src/formats/png-text.js';
import { imageToRgb8 } from '../../src/workflow/files.js';
import type { EngineHost, FolderName, ImageBatch, SavedFile, SaveImagesRequest } from '../../src/workflow/types.js';

function walk(dir: string, root: string, out: string[]): string[] {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) walk(p, root, out);
    else out.push(relative(root, p).split('\\').join('/'));
  }
  return out;
}

export class TestHost implements EngineHost {
  readonly root = mkdtempSync(join(tmpdir(), 'lk-wf-'));
  saved: { file: string; png: Buffer }[] = [];
  private counter = 0;

  dir(folder: FolderName | 'output' | 'temp'): string {
    const d = folder === 'input' || folder === 'output' || folder === 'temp' ? join(this.root, folder) : join(this.root, 'models', folder);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** Makes `name` in `folder` point at `file`. */
  link(folder: FolderName, name: string, file: string): void {
    const p = join(this.dir(folder), name);
    mkdirSync(dirname(p), { recursive: true });
    if (!existsSync(p)) symlinkSync(file, p);
  }

  listFiles(folder: FolderName): string[] {
    return walk(this.dir(folder), this.dir(folder), []).sort();
  }

  folderPaths(folder: FolderName): string[] {
    return [this.dir(folder)];
  }

  resolveFile(folder: FolderName, name: string): string {
    const p = join(this.dir(folder), name);
    if (!existsSync(p)) throw new Error(`${name}: not in ${folder}`);
    return p;
  }

  async readImage(name: string): Promise<{ image: ImageBatch; alpha?: Float32Array }> {
    const { data, info } = await sharp(this.resolveFile('input', name)).raw().toBuffer({ resolveWithObject: true });
    const n = info.width * info.height;
    const rgb = new Float32Array(n * 3);
    const alpha = info.channels === 4 ? new Float32Array(n) : undefined;
    for (let p = 0; p < n; p++) {
      for (let c = 0; c < 3; c++) rgb[p * 3 + c] = data[p * info.channels + Math.min(c, info.channels - 1)] / 255;
      if (alpha) alpha[p] = data[p * 4 + 3] / 255;
    }
    return { image: { batch: 1, height: info.height, width: info.width, channels: 3, data: rgb }, alpha };
  }

  async saveImages(req: SaveImagesRequest): Promise<SavedFile[]> {
    const out: SavedFile[] = [];
    for (let b = 0; b < req.images.batch; b++) {
      const filename = `${req.prefix}_${String(++this.counter).padStart(5, '0')}_.png`;
      const rgb = imageToRgb8(req.images, b);
      const png = await sharp(Buffer.from(rgb.buffer), { raw: { width: req.images.width, height: req.images.height, channels: 3 } }).png().toBuffer();
      const text = Object.fromEntries(Object.entries(req.pngInfo ?? {}).map(([k, v]) => [k, JSON.stringify(v)]));
      const file = join(this.dir(req.type), filename);
      const withText = withPngText(png, text);
      await writeFile(file, withText);
      this.saved.push({ file, png: withText });
      out.push({ filename, subfolder: '', type: req.type });
    }
    return out;
  }
}
