// What is in a models folder, and what one file says about itself: the facts `models list` and
// `models info` print. Hashes are A1111's (AutoV2, legacy, addnet), cached by path, size and mtime.
import { stat } from 'node:fs/promises';
import { basename } from 'node:path';
import { openStateDict } from '../../formats/open.js';
import { addnetHash, autoV2Hash, legacyModelHash, sha256File } from '../../formats/hash.js';
import { describeModel, type ModelDescription } from '../classify.js';
import { MODEL_KINDS, listModelFiles, type ModelKind } from '../model-folders.js';

export interface ModelEntry extends Partial<ModelDescription> {
  readonly path: string;
  readonly name: string;
  /** The folder it was found in; `description.kind` is what its tensors say. */
  readonly folderKind: ModelKind;
  readonly size: number;
  readonly autoV2?: string;
  /** Set when the file could not be read; the entry is still listed. */
  readonly error?: string;
}

export interface ModelInfo extends ModelEntry {
  readonly sha256: string;
  readonly legacyHash: string;
  /** kohya / A1111 LoRA hash of the tensor data (safetensors only). */
  readonly addnet?: string;
  readonly tensors: number;
  readonly modelspec: Readonly<Record<string, string>>;
  /** kohya's `ss_*` training metadata. */
  readonly training: Readonly<Record<string, string>>;
  /** Most frequent training tags (kohya ss_tag_frequency) and modelspec trigger phrases. */
  readonly triggerWords: readonly string[];
  readonly otherMetadata: Readonly<Record<string, string>>;
}

async function describeFile(path: string): Promise<{ description?: ModelDescription; error?: string; tensors: number; metadata: Record<string, string> }> {
  let sd;
  try {
    sd = await openStateDict(path);
  } catch (err) {
    return { error: (err as Error).message, tensors: 0, metadata: {} };
  }
  try {
    return { description: await describeModel(sd), tensors: sd.keys().length, metadata: { ...sd.metadata } };
  } catch (err) {
    return { error: (err as Error).message, tensors: sd.keys().length, metadata: { ...sd.metadata } };
  } finally {
    await sd.close();
  }
}

async function entry(path: string, folderKind: ModelKind, hash: boolean): Promise<ModelEntry & { metadata: Record<string, string>; tensors: number }> {
  const { size } = await stat(path);
  const d = await describeFile(path);
  return {
    path, name: basename(path), folderKind, size, ...d.description, error: d.error, metadata: d.metadata, tensors: d.tensors,
    autoV2: hash ? await autoV2Hash(path) : undefined,
  };
}

/** Every model file under the roots, by the folder kind it sits in. */
export async function listModels(roots: readonly string[], options: { hashes?: boolean } = {}): Promise<ModelEntry[]> {
  const out: ModelEntry[] = [];
  const seen = new Set<string>();
  for (const kind of MODEL_KINDS) {
    for (const path of listModelFiles(roots, kind)) {
      if (seen.has(path)) continue;
      seen.add(path);
      const { metadata: _m, tensors: _t, ...e } = await entry(path, kind, options.hashes ?? true);
      out.push(e);
    }
  }
  return out;
}

/** Tags by how often kohya counted them across the datasets, most frequent first. */
function tagsByFrequency(raw: string | undefined): string[] {
  if (!raw) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return [];
  }
  const counts = new Map<string, number>();
  for (const dataset of Object.values(parsed as Record<string, unknown>)) {
    if (!dataset || typeof dataset !== 'object') continue;
    for (const [tag, n] of Object.entries(dataset as Record<string, unknown>)) {
      if (typeof n === 'number') counts.set(tag.trim(), (counts.get(tag.trim()) ?? 0) + n);
    }
  }
  return [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).map(([t]) => t);
}

export async function modelInfo(path: string, folderKind?: ModelKind): Promise<ModelInfo> {
  const e = await entry(path, folderKind ?? 'checkpoints', true);
  const modelspec: Record<string, string> = {};
  const training: Record<string, string> = {};
  const otherMetadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.metadata)) {
    if (k.startsWith('modelspec.')) modelspec[k] = v;
    else if (k.startsWith('ss_')) training[k] = v;
    else otherMetadata[k] = v;
  }
  const phrases = (modelspec['modelspec.trigger_phrase'] ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  const triggerWords = [...new Set([...phrases, ...tagsByFrequency(training.ss_tag_frequency).slice(0, 10)])];
  const { metadata: _m, ...rest } = e;
  return {
    ...rest, folderKind: folderKind ?? e.kind ?? 'checkpoints',
    sha256: await sha256File(path), legacyHash: await legacyModelHash(path),
    addnet: /\.safetensors$/i.test(path) && !e.error ? await addnetHash(path) : undefined,
    modelspec, training, triggerWords, otherMetadata,
  };
}
