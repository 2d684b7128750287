// The model folders of the tools users come from, so latentkit can be pointed at an existing install:
// ComfyUI (`models/checkpoints`, `loras`, `embeddings`, `vae`, `upscale_models`, `hypernetworks`) and
// A1111 (`models/Stable-diffusion`, `Lora`, `LyCORIS`, `VAE`, `ESRGAN`, `RealESRGAN`, `hypernetworks`,
// and `embeddings/` at the root).
import { existsSync, readdirSync, statSync } from 'node:fs';
import { extname, join, parse } from 'node:path';

export type ModelKind = 'checkpoints' | 'loras' | 'embeddings' | 'vae' | 'upscale_models' | 'hypernetworks'
  | 'controlnet' | 'configs' | 'clip' | 'text_encoders' | 'unet' | 'diffusion_models' | 'clip_vision';

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

const MODEL_EXTS = ['.safetensors', '.ckpt', '.pt', '.pth', '.bin'];

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
