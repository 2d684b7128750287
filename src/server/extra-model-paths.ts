// ComfyUI's `extra_model_paths.yaml`: named sections (`comfyui:`, `a111:`, …), each with an optional
// `base_path` and `is_default`, and per folder name one path or several on separate lines. Read as
// ComfyUI's `load_extra_path_config` reads it, so a user's existing file works unchanged.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, normalize, resolve } from 'node:path';
import { parse } from 'yaml';

export interface ExtraModelPath {
  /** ComfyUI folder name as written, legacy names mapped (`clip` → `text_encoders`, `unet` → `diffusion_models`). */
  readonly folder: string;
  readonly path: string;
  /** `is_default: true` sections are searched before the built-in folders. */
  readonly isDefault: boolean;
}

const LEGACY: Record<string, string> = { clip: 'text_encoders', unet: 'diffusion_models' };

function expand(p: string): string {
  const home = p === '~' || p.startsWith('~/') ? homedir() + p.slice(1) : p;
  return home.replace(/\$(\w+)|\$\{(\w+)\}/g, (m, a: string | undefined, b: string | undefined) => process.env[a ?? b ?? ''] ?? m);
}

/** The folders a ComfyUI `extra_model_paths.yaml` adds; a clear error naming the file when it is malformed. */
export function readExtraModelPaths(file: string): ExtraModelPath[] {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: cannot read (${(err as Error).message})`, { cause: err });
  }
  if (doc === null || doc === undefined) return [];
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${file}: expected sections of folder paths`);
  const yamlDir = dirname(resolve(file));
  const out: ExtraModelPath[] = [];
  for (const [section, conf] of Object.entries(doc as Record<string, unknown>)) {
    if (conf === null || conf === undefined) continue;
    if (typeof conf !== 'object' || Array.isArray(conf)) throw new Error(`${file}: section '${section}' is not a mapping`);
    const entries = { ...(conf as Record<string, unknown>) };
    let base: string | undefined;
    if (entries.base_path !== undefined) {
      base = expand(String(entries.base_path));
      if (!isAbsolute(base)) base = resolve(yamlDir, base);
      delete entries.base_path;
    }
    const isDefault = entries.is_default === true;
    delete entries.is_default;
    for (const [folder, value] of Object.entries(entries)) {
      if (typeof value !== 'string') throw new Error(`${file}: '${section}.${folder}' must be a path or lines of paths`);
      for (const line of value.split('\n')) {
        const p = line.trim();
        if (!p) continue;
        const full = base !== undefined ? join(base, p) : isAbsolute(expand(p)) ? expand(p) : resolve(yamlDir, p);
        out.push({ folder: LEGACY[folder] ?? folder, path: normalize(full), isDefault });
      }
    }
  }
  return out;
}
