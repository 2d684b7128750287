// `latentkit models pull`: resolve a source, download it into `<models>/.downloads/NAME.part`, check
// that it is a model (through the safe reader, so a hostile pickle is refused before it is kept),
// then move it into the folder of its kind in one rename. A name that already exists is never
// replaced without `force`; nothing ever appears under the final name before it is complete.
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { openStateDict } from '../../formats/open.js';
import { writeSafetensors } from '../../formats/safetensors.js';
import { describeModel, type ModelDescription } from '../classify.js';
import { MODEL_EXTS, MODEL_KINDS, folderForKind, type ModelKind } from '../model-folders.js';
import { DownloadError, download, type DownloadRequest } from './download.js';
import { resolveSource, type SourceEnv } from './sources.js';

export interface PullOptions {
  readonly source: string;
  /** The models folder (an install root or a `models/` folder). */
  readonly modelsDir: string;
  readonly kind?: ModelKind;
  /** File name to save as, instead of the source's. */
  readonly name?: string;
  /** Convert a pickle (.ckpt/.pt/.bin) to .safetensors, keeping only the converted file. */
  readonly toSafetensors?: boolean;
  readonly force?: boolean;
  readonly env?: SourceEnv;
  readonly fetch?: typeof fetch;
  readonly signal?: AbortSignal;
  readonly onStart?: DownloadRequest['onStart'];
  readonly onProgress?: DownloadRequest['onProgress'];
  readonly write?: DownloadRequest['write'];
}

export interface PullResult {
  readonly path: string;
  readonly kind: ModelKind;
  readonly description: ModelDescription;
  readonly sha256: string;
  /** Whether the hub stated a hash that the file was checked against. */
  readonly verified: boolean;
  readonly received: number;
  readonly resumedFrom: number;
  readonly converted: boolean;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

/** Only a plain file name with a model extension may come from a remote source. */
function checkName(name: string, source: string): string {
  if (!name) throw new Error(`${source}: cannot tell a file name from the source; pass --name FILE`);
  if (name !== basename(name) || name === '.' || name === '..' || name.includes('\\')) throw new Error(`${name}: a file name, not a path, is expected`);
  if (!MODEL_EXTS.includes(extname(name).toLowerCase())) {
    throw new Error(`${name}: not a model file name (expected ${MODEL_EXTS.join(', ')}); pass --name FILE if the source names it oddly`);
  }
  return name;
}

async function refuseExisting(modelsDir: string, kinds: readonly ModelKind[], name: string, force?: boolean): Promise<void> {
  if (force) return;
  for (const k of kinds) {
    const p = join(folderForKind(modelsDir, k), name);
    if (await exists(p)) throw new Error(`${p} already exists; pass --force to replace it`);
  }
}

const asSafetensors = (name: string) => `${name.slice(0, name.length - extname(name).length)}.safetensors`;

export async function pullModel(o: PullOptions): Promise<PullResult> {
  const src = await resolveSource(o.source, o.env, o.fetch);
  const name = checkName(o.name ?? src.fileName, o.source);
  const pickle = !/\.safetensors$/i.test(name);
  const finalName = o.toSafetensors && pickle ? asSafetensors(name) : name;
  const knownKind = o.kind ?? src.kind;
  await refuseExisting(o.modelsDir, knownKind ? [knownKind] : MODEL_KINDS, finalName, o.force);

  const staging = join(o.modelsDir, '.downloads');
  await mkdir(staging, { recursive: true });
  const part = join(staging, `${name}.part`);
  let got;
  try {
    got = await download({
      url: src.url, headers: src.headers, authHint: src.authHint, dest: part, expectedSha256: src.expectedSha256,
      signal: o.signal, onStart: o.onStart, onProgress: o.onProgress, write: o.write, fetch: o.fetch,
    });
  } catch (err) {
    if (o.signal?.aborted && !(err instanceof DownloadError && err.partial)) {
      const bytes = await stat(part).then((s) => s.size, () => 0);
      throw new DownloadError(`interrupted: ${bytes} bytes kept in ${part}; run the same command to resume`, { path: part, bytes }, { cause: err });
    }
    throw err;
  }

  let description: ModelDescription;
  let converted = false;
  const sd = await openStateDict(part).catch(async (err: unknown) => {
    await rm(part, { force: true });
    throw new Error(`${o.source}: the download is not a model file (${(err as Error).message.replace(`${part}: `, '')}); it was deleted`, { cause: err });
  });
  try {
    try {
      description = await describeModel(sd);
    } catch (err) {
      // A valid tensor file of a kind not recognised: kept, so a rerun with --kind resumes at its end.
      if (!o.kind) throw new Error(`${(err as Error).message}; pass --kind (${MODEL_KINDS.join(', ')}) to file it anyway`, { cause: err });
      description = { kind: o.kind, format: 'unrecognised', components: [] };
    }
    const kind = o.kind ?? description.kind;
    const folder = folderForKind(o.modelsDir, kind);
    await mkdir(folder, { recursive: true });
    const target = join(folder, finalName);
    // Checked again: another pull may have finished meanwhile. The verified download stays in .downloads.
    await refuseExisting(o.modelsDir, [kind], finalName, o.force);
    if (o.toSafetensors && pickle) {
      const tensors = new Map(sd.keys().map((k) => {
        const info = sd.info(k)!;
        return [k, { dtype: info.dtype, shape: info.shape, produce: () => sd.read(k) }] as const;
      }));
      await writeSafetensors(target, tensors, { ...sd.metadata, 'latentkit.converted_from': name });
      converted = true;
    } else {
      await rename(part, target);
    }
    return {
      path: target, kind, description, sha256: got.sha256, verified: got.expectedSha256 !== undefined,
      received: got.received, resumedFrom: got.resumedFrom, converted,
    };
  } finally {
    await sd.close();
    // Only the converted file is kept; a failed conversion keeps the download for another try.
    if (converted) await rm(part, { force: true });
  }
}
