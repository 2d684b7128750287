// The server's EngineHost: model folders from `--models` (ComfyUI or A1111 layouts) and
// `extra_model_paths.yaml`, and the input / output / temp folders, every path kept inside its folder.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { modelFolders, type ModelKind } from '../models/model-folders.js';
import { DEFAULT_MAX_PIXELS, readImageFile, resolveImageName, resolveInside, saveFile, saveImages, type FileFolders } from '../workflow/files.js';
import type { EngineHost, FolderName, ImageBatch, SavedFile, SaveFileRequest, SaveImagesRequest } from '../workflow/types.js';
import { readExtraModelPaths, type ExtraModelPath } from './extra-model-paths.js';

/** ComfyUI's `supported_pt_extensions`. */
const MODEL_EXTS = new Set(['.ckpt', '.pt', '.pt2', '.bin', '.pth', '.safetensors', '.pkl', '.sft']);
const CONFIG_EXTS = new Set(['.yaml']);
const IMAGE_EXTS = new Set(['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif', '.bmp']);
const LATENT_EXTS = new Set(['.latent']);

/** The folders `/models` lists (ComfyUI's names, legacy aliases left out). */
export const MODEL_FOLDERS: readonly Exclude<FolderName, 'input'>[] = [
  'checkpoints', 'configs', 'loras', 'vae', 'text_encoders', 'diffusion_models', 'clip_vision', 'embeddings',
  'hypernetworks', 'upscale_models', 'controlnet',
];
const LEGACY: Partial<Record<FolderName, FolderName>> = { clip: 'text_encoders', unet: 'diffusion_models' };

export interface HostOptions {
  /** Install roots (ComfyUI or A1111 layout, or a `models/` folder). */
  readonly modelRoots: readonly string[];
  readonly folders: FileFolders;
  /** `extra_model_paths.yaml` files to read; by default the ones found in the model roots. */
  readonly extraModelPaths?: readonly string[];
  readonly maxPixels?: number;
}

function walk(dir: string, exts: ReadonlySet<string>, prefix: string, depth: number, out: string[]): void {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    let isDir = e.isDirectory();
    let isFile = e.isFile();
    if (e.isSymbolicLink()) {
      // users link model files in from elsewhere; follow them as ComfyUI does
      try {
        const st = statSync(p);
        isDir = st.isDirectory();
        isFile = st.isFile();
      } catch {
        continue;
      }
    }
    if (isFile && exts.has(extname(e.name).toLowerCase())) out.push(prefix + e.name);
    else if (isDir && depth > 0) walk(p, exts, `${prefix}${e.name}/`, depth - 1, out);
  }
}

export class ServerHost implements EngineHost {
  readonly folders: FileFolders;
  readonly maxPixels: number;
  private readonly roots: string[];
  private readonly extra: ExtraModelPath[] = [];
  private readonly listCache = new Map<FolderName, { at: number; files: string[] }>();

  constructor(opts: HostOptions) {
    this.roots = opts.modelRoots.map((r) => resolve(r));
    this.folders = { input: resolve(opts.folders.input), output: resolve(opts.folders.output), temp: resolve(opts.folders.temp) };
    this.maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
    const yamls = opts.extraModelPaths ?? this.roots.map((r) => join(r, 'extra_model_paths.yaml')).filter((f) => existsSync(f));
    for (const f of yamls) this.extra.push(...readExtraModelPaths(f));
  }

  /** The existing folders of one kind, in search order (default extra paths, install roots, other extra paths). */
  modelDirs(folder: Exclude<FolderName, 'input' | 'input_latents'>): string[] {
    const name = LEGACY[folder] ?? folder;
    const extra = (def: boolean) => this.extra.filter((e) => e.folder === name && e.isDefault === def).map((e) => e.path);
    const dirs = [...extra(true), ...modelFolders(this.roots, folder as ModelKind), ...extra(false)];
    return [...new Set(dirs)].filter((d) => existsSync(d) && statSync(d).isDirectory());
  }

  folderPaths(folder: FolderName): string[] {
    return folder === 'input' || folder === 'input_latents' ? [this.folders.input] : this.modelDirs(folder);
  }

  /** Forgets cached listings (after an upload, or when files may have changed). */
  invalidate(): void {
    this.listCache.clear();
  }

  listFiles(folder: FolderName): string[] {
    // validation lists folders on every prompt: a short-lived cache keeps bursts of prompts cheap
    const hit = this.listCache.get(folder);
    if (hit && Date.now() - hit.at < 2000) return hit.files;
    const files: string[] = [];
    if (folder === 'input') {
      walk(this.folders.input, IMAGE_EXTS, '', 0, files);
    } else if (folder === 'input_latents') {
      walk(this.folders.input, LATENT_EXTS, '', 0, files);
    } else {
      const exts = folder === 'configs' ? CONFIG_EXTS : MODEL_EXTS;
      for (const dir of this.modelDirs(folder)) walk(dir, exts, '', 8, files);
    }
    const sorted = [...new Set(files)].sort();
    this.listCache.set(folder, { at: Date.now(), files: sorted });
    return sorted;
  }

  resolveFile(folder: FolderName, name: string): string {
    if (folder === 'input_latents') {
      const p = resolveInside(this.folders.input, name.replace(/\\/g, '/'));
      if (!p.endsWith('.latent') || !existsSync(p) || !statSync(p).isFile()) throw new Error(`${name}: no such .latent file in the input folder`);
      return p;
    }
    if (folder === 'input') {
      const p = resolveImageName(this.folders, name);
      if (!existsSync(p)) throw new Error(`${name}: no such file in the input folder`);
      return p;
    }
    const dirs = this.modelDirs(folder);
    for (const dir of dirs) {
      const p = resolveInside(dir, name.replace(/\\/g, '/'), { allowSymlinksOut: true });
      if (existsSync(p) && statSync(p).isFile()) return p;
    }
    throw new Error(`${name}: not found in ${folder} (${dirs.length ? `looked in ${dirs.join(', ')}` : 'no such folder under the models roots'})`);
  }

  async readImage(name: string): Promise<{ image: ImageBatch; alpha?: Float32Array }> {
    const path = resolveImageName(this.folders, name);
    if (!existsSync(path)) throw new Error(`Invalid image file: ${name}`);
    return readImageFile(path, this.maxPixels);
  }

  saveImages(req: SaveImagesRequest): Promise<SavedFile[]> {
    return saveImages(this.folders, req);
  }

  saveFile(req: SaveFileRequest): Promise<SavedFile> {
    return saveFile(this.folders, req);
  }

  /** `GET /embeddings`: names without extension. */
  embeddings(): string[] {
    return this.listFiles('embeddings').map((f) => f.slice(0, f.length - extname(f).length));
  }
}
