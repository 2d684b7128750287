// What A1111's list and option routes read: checkpoints with their titles (`name.safetensors [hash]`),
// the settings object (kept in the data folder so `sd_model_checkpoint` survives restarts) and
// `styles.csv`.
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { sha256File } from '../formats/hash.js';
import type { ServerHost } from './host.js';
import { runtimeError } from './a1111-http.js';

export interface CheckpointEntry {
  title: string;
  model_name: string;
  hash: string;
  sha256: string;
  filename: string;
  config: string | null;
}

/** A1111's defaults for the settings clients read (`GET /options`). */
const DEFAULT_OPTIONS: Record<string, unknown> = {
  sd_model_checkpoint: null, sd_checkpoint_hash: null, sd_vae: 'Automatic', CLIP_stop_at_last_layers: 1,
  eta_noise_seed_delta: 0, samples_format: 'png', randn_source: 'GPU', sd_vae_decode_method: 'Full',
  hires_fix_upscaler: 'Latent', return_grid: true, grid_save: true, grid_only_if_multiple: true, n_rows: -1,
  grid_prevent_empty_spots: false, enable_pnginfo: true, live_previews_enable: true,
  show_progress_every_n_steps: 10, face_restoration: false, tiling: false, samples_save: true, outdir_samples: '',
  eta_ancestral: 1.0, eta_ddim: 0.0, s_noise: 1.0, img2img_fix_steps: false, api_enable_requests: false,
};

export interface PromptStyle {
  name: string;
  prompt: string;
  negative_prompt: string;
}

/** RFC 4180 rows (quoted fields, doubled quotes, newlines inside quotes). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') { cell += '"'; i++; }
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') { row.push(cell); cell = ''; }
    else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else cell += ch;
  }
  if (cell !== '' || row.length) { row.push(cell); rows.push(row); }
  return rows.filter((r) => r.some((c) => c !== ''));
}

/** A style's prompt applied to a prompt as A1111's `apply_styles_to_prompt` does. */
export function applyStyle(style: string, prompt: string): string {
  if (style.includes('{prompt}')) return style.replace('{prompt}', prompt);
  if (!style) return prompt;
  return prompt ? `${prompt}, ${style}` : style;
}

export class A1111Catalog {
  private options: Record<string, unknown> = { ...DEFAULT_OPTIONS };
  private cache: { at: number; list: Promise<CheckpointEntry[]> } | undefined;

  constructor(private readonly host: ServerHost, private readonly dataDir: string) {}

  private get optionsFile(): string {
    return join(this.dataDir, 'a1111-options.json');
  }

  async load(): Promise<void> {
    try {
      const saved = JSON.parse(await readFile(this.optionsFile, 'utf8')) as unknown;
      if (saved && typeof saved === 'object' && !Array.isArray(saved)) this.options = { ...DEFAULT_OPTIONS, ...(saved as Record<string, unknown>) };
    } catch {
      // no saved settings yet: A1111's defaults
    }
  }

  /** Forgets the checkpoint list (`/refresh-checkpoints`). */
  refresh(): void {
    this.cache = undefined;
    this.host.invalidate();
  }

  checkpoints(): Promise<CheckpointEntry[]> {
    if (this.cache && Date.now() - this.cache.at < 5000) return this.cache.list;
    const list = (async () => {
      const out: CheckpointEntry[] = [];
      for (const name of this.host.listFiles('checkpoints')) {
        const filename = this.host.resolveFile('checkpoints', name);
        // large files' hashes are kept on disk by formats/hash, so this is slow only the first time
        const sha256 = await sha256File(filename);
        const hash = sha256.slice(0, 10);
        const yaml = filename.slice(0, filename.length - extname(filename).length) + '.yaml';
        out.push({
          title: `${name} [${hash}]`, model_name: name.slice(0, name.length - extname(name).length).replace(/[\\/]/g, '_'),
          hash, sha256, filename, config: existsSync(yaml) ? yaml : null,
        });
      }
      return out;
    })();
    this.cache = { at: Date.now(), list };
    list.catch(() => { this.cache = undefined; });
    return list;
  }

  /** A checkpoint by title, file name, name without extension, or hash (short or full). */
  async find(query: string): Promise<CheckpointEntry | undefined> {
    const q = query.trim();
    const all = await this.checkpoints();
    const stem = (e: CheckpointEntry) => e.title.replace(/ \[[0-9a-f]+\]$/, '');
    return all.find((e) => e.title === q)
      ?? all.find((e) => stem(e) === q || basename(stem(e)) === q)
      ?? all.find((e) => e.model_name === q || stem(e).replace(/\.[^.]+$/, '') === q)
      ?? (/^[0-9a-f]{8,64}$/i.test(q) ? all.find((e) => e.sha256.startsWith(q.toLowerCase())) : undefined)
      ?? all.find((e) => q.startsWith(stem(e)));
  }

  /** The checkpoint a job uses: the override's, else the setting's, else the first one. */
  async current(override?: unknown): Promise<CheckpointEntry> {
    const wanted = typeof override === 'string' && override ? override : this.options.sd_model_checkpoint;
    if (typeof wanted === 'string' && wanted) {
      const hit = await this.find(wanted);
      if (hit) return hit;
      if (override !== undefined) throw runtimeError(`model '${wanted}' not found`);
    }
    const [first] = await this.checkpoints();
    if (!first) throw runtimeError('no checkpoint found in the models folders (checkpoints / Stable-diffusion)', 'FileNotFoundError');
    return first;
  }

  async getOptions(): Promise<Record<string, unknown>> {
    const ckpt = await this.current().catch(() => undefined);
    return { ...this.options, sd_model_checkpoint: ckpt?.title ?? null, sd_checkpoint_hash: ckpt?.sha256 ?? null };
  }

  option(key: string): unknown {
    return this.options[key];
  }

  /** `POST /options`: an unknown checkpoint fails before anything is changed. */
  async setOptions(values: Record<string, unknown>): Promise<void> {
    const next = { ...this.options, ...values };
    if (values.sd_model_checkpoint !== undefined) {
      const hit = typeof values.sd_model_checkpoint === 'string' ? await this.find(values.sd_model_checkpoint) : undefined;
      if (!hit) throw runtimeError(`model '${String(values.sd_model_checkpoint)}' not found`);
      next.sd_model_checkpoint = hit.title;
    }
    delete next.sd_checkpoint_hash;
    this.options = next;
    const tmp = `${this.optionsFile}.tmp`;
    await writeFile(tmp, JSON.stringify(this.options, null, 1));
    await rename(tmp, this.optionsFile);
  }

  async styles(): Promise<PromptStyle[]> {
    let text: string;
    try {
      text = await readFile(join(this.dataDir, 'styles.csv'), 'utf8');
    } catch {
      return [];
    }
    const [header, ...rows] = parseCsv(text.replace(/^\uFEFF/, ''));
    if (!header) return [];
    const col = (n: string) => header.findIndex((h) => h.trim().toLowerCase() === n);
    const [ni, pi, qi] = [col('name'), col('prompt'), col('negative_prompt')];
    if (ni < 0) return [];
    return rows.map((r) => ({ name: r[ni] ?? '', prompt: pi >= 0 ? r[pi] ?? '' : '', negative_prompt: qi >= 0 ? r[qi] ?? '' : '' }));
  }
}
