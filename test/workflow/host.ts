// A small EngineHost over a temp folder for engine tests (the server has the full one: safe paths,
// ComfyUI file naming, PNG chunks). Models are linked in under the names a workflow asks for.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import sharp from 'sharp';
import { saveFile, saveImages } from '../../src/workflow/files.js';
import type { EngineHost, FolderName, ImageBatch, SavedFile, SaveFileRequest, SaveImagesRequest } from '../../src/workflow/types.js';

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

  dir(folder: FolderName | 'output' | 'temp'): string {
    const top = folder === 'input_latents' ? 'input' : folder;
    const d = top === 'input' || top === 'output' || top === 'temp' ? join(this.root, top) : join(this.root, 'models', top);
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
    const files = walk(this.dir(folder), this.dir(folder), []).sort();
    return folder === 'input_latents' ? files.filter((f) => f.endsWith('.latent')) : files;
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

  private get folders() {
    return { input: this.dir('input'), output: this.dir('output'), temp: this.dir('temp') };
  }

  /** The server's naming and PNG writing, so engine tests see what users get; each file is kept for assertions. */
  async saveImages(req: SaveImagesRequest): Promise<SavedFile[]> {
    const out = await saveImages(this.folders, req);
    for (const f of out) {
      const file = join(this.dir(f.type), f.subfolder, f.filename);
      this.saved.push({ file, png: await readFile(file) });
    }
    return out;
  }

  saveFile(req: SaveFileRequest): Promise<SavedFile> {
    return saveFile(this.folders, req);
  }
}
