// The model folders of the tools users come from, so latentkit can be pointed at an existing install:
// ComfyUI (`models/checkpoints`, `loras`, `embeddings`, `vae`, `upscale_models`, `hypernetworks`) and
// A1111 (`models/Stable-diffusion`, `Lora`, `LyCORIS`, `VAE`, `ESRGAN`, `RealESRGAN`, `hypernetworks`,
// and `embeddings/` at the root; ControlNet models in `models/ControlNet` from the sd-webui-controlnet
// extension).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, extname, join, parse } from 'node:path';

export type ModelKind = 'checkpoints' | 'loras' | 'embeddings' | 'vae' | 'upscale_models' | 'hypernetworks'
  | 'controlnet' | 'configs' | 'clip' | 'text_encoders' | 'unet' | 'diffusion_models' | 'clip_vision';

/** The kinds `latentkit models` knows about (the server also lists ComfyUI's other folders). */
export const MODEL_KINDS: readonly ModelKind[] = ['checkpoints', 'loras', 'vae', 'embeddings', 'controlnet', 'upscale_models', 'hypernetworks'];

const LAYOUT: Record<ModelKind, readonly string[]> = {
  checkpoints: ['models/checkpoints', 'models/Stable-diffusion'],
  loras: ['models/loras', 'models/Lora', 'models/LyCORIS'],
  embeddings: ['models/embeddings', 'embeddings'],
  vae: ['models/vae', 'models/VAE'],
  upscale_models: ['models/upscale_models', 'models/ESRGAN', 'models/RealESRGAN'],
  hypernetworks: ['models/hypernetworks'],
  controlnet: ['models/controlnet', 'models/ControlNet'],
  configs: ['models/configs'],
  // ComfyUI renamed clip → text_encoders and unet → diffusion_models and still reads both
  clip: ['models/text_encoders', 'models/clip'],
  text_encoders: ['models/text_encoders', 'models/clip'],
  unet: ['models/diffusion_models', 'models/unet'],
  diffusion_models: ['models/diffusion_models', 'models/unet'],
  clip_vision: ['models/clip_vision'],
};

export const MODEL_EXTS = ['.safetensors', '.ckpt', '.pt', '.pth', '.bin'];

/** The existing folders of one kind under the install roots (a root may also be its `models/` folder). */
export function modelFolders(roots: readonly string[], kind: ModelKind): string[] {
  const out: string[] = [];
  for (const root of roots) {
    for (const rel of LAYOUT[kind]) {
      for (const dir of [join(root, rel), join(root, rel.replace(/^models\//, ''))]) {
        if (!out.includes(dir) && existsSync(dir) && statSync(dir).isDirectory()) out.push(dir);
      }
    }
  }
  return out;
}

function search(dir: string, name: string, depth: number): string | undefined {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return undefined;
  }
  for (const e of entries) {
    if (!e.isFile()) continue;
    if (e.name === name || (MODEL_EXTS.includes(extname(e.name).toLowerCase()) && parse(e.name).name === name)) return join(dir, e.name);
  }
  for (const e of entries) {
    if (e.isDirectory() && depth > 0) {
      const hit = search(join(dir, e.name), name, depth - 1);
      if (hit) return hit;
    }
  }
  return undefined;
}

/**
 * A model given by path, or by name (file name with or without extension, or `sub/name`) in the
 * install's folders of that kind. Unknown names get one error listing where they were looked for.
 */
export function resolveModel(nameOrPath: string, roots: readonly string[], kind: ModelKind): string {
  if (existsSync(nameOrPath) || roots.length === 0) return nameOrPath;
  const folders = modelFolders(roots, kind);
  for (const dir of folders) {
    const direct = join(dir, nameOrPath);
    if (existsSync(direct)) return direct;
    const hit = search(dir, nameOrPath, 4);
    if (hit) return hit;
  }
  const where = folders.length ? folders.join(', ') : `no ${kind} folder under ${roots.join(', ')}`;
  throw new Error(`${nameOrPath}: no such file, and no ${kind.replace(/s$/, '').replace('_', ' ')} of that name in ${where}`);
}

/**
 * Install roots from --models and LATENTKIT_MODELS (path-list separated); with neither, latentkit's
 * own folder (`$XDG_DATA_HOME/latentkit/models`, where `latentkit models pull` puts files) if it exists.
 */
export function modelRoots(flags: readonly string[] = [], env: NodeJS.ProcessEnv = process.env): string[] {
  const roots = [...flags, ...(env.LATENTKIT_MODELS ?? '').split(delimiter).filter(Boolean)];
  if (roots.length) return roots;
  const own = defaultModelsDir(env);
  return existsSync(own) ? [own] : [];
}

/** Where models go when no folder is named: LATENTKIT_MODELS (its first entry), else the XDG data folder. */
export function defaultModelsDir(env: NodeJS.ProcessEnv = process.env): string {
  const first = (env.LATENTKIT_MODELS ?? '').split(delimiter).find(Boolean);
  if (first) return first;
  const data = env.XDG_DATA_HOME || join(homedir(), '.local', 'share');
  return join(data, 'latentkit', 'models');
}

/**
 * The folder a new model of a kind is written to under an install root: the one of that kind that
 * already exists (so an A1111 install gets `models/Lora`), else ComfyUI's name — under `models/` when
 * the root is an install with a `models/` folder, directly under the root otherwise.
 */
export function folderForKind(root: string, kind: ModelKind): string {
  const existing = modelFolders([root], kind);
  if (existing.length) return existing[0];
  return existsSync(join(root, 'models')) ? join(root, 'models', kind) : join(root, kind);
}

/** Every model file of a kind under the roots (sub-folders included, a few levels deep). */
export function listModelFiles(roots: readonly string[], kind: ModelKind): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isFile() && MODEL_EXTS.includes(extname(e.name).toLowerCase())) out.push(p);
      else if (e.isDirectory() && depth > 0) walk(p, depth - 1);
    }
  };
  for (const dir of modelFolders(roots, kind)) walk(dir, 4);
  return out;
}
