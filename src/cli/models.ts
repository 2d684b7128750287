// `latentkit models pull | list | info`: the model manager on the command line.
import { existsSync } from 'node:fs';
import cliProgress from 'cli-progress';
import { Command, Option } from 'commander';
import { DownloadError } from '../models/manager/download.js';
import { listModels, modelInfo, type ModelEntry } from '../models/manager/inventory.js';
import { pullModel } from '../models/manager/pull.js';
import { SHORT_NAMES } from '../models/manager/sources.js';
import { MODEL_KINDS, defaultModelsDir, modelRoots, resolveModel, type ModelKind } from '../models/model-folders.js';

export function formatBytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
  return i === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** A bytes / rate / ETA bar on a terminal; nothing when stderr is a pipe or a file. */
function progressBar(): { start(total: number | undefined, from: number): void; update(done: number): void; stop(): void } {
  if (!process.stderr.isTTY) return { start() {}, update() {}, stop() {} };
  const bar = new cliProgress.SingleBar({
    stream: process.stderr, hideCursor: true, etaBuffer: 50,
    format: '{bar} {percentage}% | {doneBytes} / {totalBytes} | {rate}/s | ETA {eta_formatted}',
  }, cliProgress.Presets.shades_classic);
  let t0 = 0;
  let from = 0;
  let total = 0;
  const payload = (done: number) => {
    const secs = (Date.now() - t0) / 1000;
    return { doneBytes: formatBytes(done), totalBytes: total ? formatBytes(total) : '?', rate: formatBytes(secs > 0 ? Math.round((done - from) / secs) : 0) };
  };
  return {
    start(t, f) { t0 = Date.now(); from = f; total = t ?? 0; bar.start(total || 1, f, payload(f)); },
    update(done) { bar.update(done, payload(done)); },
    stop() { bar.stop(); },
  };
}

interface PullFlags { kind?: ModelKind; models?: string; name?: string; toSafetensors?: boolean; force?: boolean }

async function pull(source: string, flags: PullFlags): Promise<void> {
  const modelsDir = flags.models ?? defaultModelsDir();
  const bar = progressBar();
  const ac = new AbortController();
  // Ctrl-C stops the download cleanly so the .part is closed, kept and reported for a resume.
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    const r = await pullModel({
      source, modelsDir, kind: flags.kind, name: flags.name, toSafetensors: flags.toSafetensors, force: flags.force,
      signal: ac.signal,
      onStart: ({ total, resumedFrom }) => {
        if (resumedFrom > 0) console.error(`resuming at ${formatBytes(resumedFrom)}${total ? ` of ${formatBytes(total)}` : ''}`);
        bar.start(total, resumedFrom);
      },
      onProgress: (done) => bar.update(done),
    });
    bar.stop();
    const d = r.description;
    const what = [d.family, d.format, d.prediction && `${d.prediction}-prediction`].filter(Boolean).join(' ');
    const check = r.verified ? 'sha256 verified' : 'sha256 (no hash stated by the source)';
    console.log(`saved ${r.path} (${what}; ${r.converted ? 'converted to safetensors; ' : ''}received ${r.received} bytes${r.resumedFrom ? `, resumed from ${r.resumedFrom}` : ''}; ${check} ${r.sha256})`);
  } catch (err) {
    bar.stop();
    if (ac.signal.aborted) {
      console.error(`latentkit: ${err instanceof DownloadError ? err.message : `interrupted (${(err as Error).message})`}`);
      process.exitCode = 130;
      return;
    }
    throw err;
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

const cell = (v: string | undefined) => v ?? '—';

async function list(flags: { models: string[]; json?: boolean }): Promise<void> {
  const roots = modelRoots(flags.models);
  const entries = roots.length ? await listModels(roots) : [];
  if (flags.json) {
    console.log(JSON.stringify(entries, null, 2));
    return;
  }
  if (entries.length === 0) {
    console.log(`no models in ${roots.length ? roots.join(', ') : defaultModelsDir()}; fetch one with: latentkit models pull sd15`);
    return;
  }
  const byKind = new Map<ModelKind, ModelEntry[]>();
  for (const e of entries) byKind.set(e.folderKind, [...(byKind.get(e.folderKind) ?? []), e]);
  for (const [kind, es] of byKind) {
    console.log(`${kind}:`);
    for (const e of es) {
      const facts = e.error ? `unreadable: ${e.error}` : [cell(e.family), e.format, e.prediction ?? '—'].join('  ');
      console.log(`  ${e.name}  ${facts}  ${formatBytes(e.size)}  ${cell(e.autoV2)}`);
    }
  }
}

function locate(nameOrPath: string, roots: readonly string[]): { path: string; kind?: ModelKind } {
  if (existsSync(nameOrPath)) return { path: nameOrPath };
  for (const kind of MODEL_KINDS) {
    try {
      const p = resolveModel(nameOrPath, roots, kind);
      if (existsSync(p)) return { path: p, kind };
    } catch {
      // Not of this kind: try the next folder.
    }
  }
  throw new Error(`${nameOrPath}: no such file, and no model of that name in ${roots.length ? roots.join(', ') : defaultModelsDir()}`);
}

async function info(nameOrPath: string, flags: { models: string[]; json?: boolean }): Promise<void> {
  const { path, kind } = locate(nameOrPath, modelRoots(flags.models));
  const i = await modelInfo(path, kind);
  if (flags.json) {
    console.log(JSON.stringify(i, null, 2));
    return;
  }
  if (i.error) throw new Error(i.error);
  const lines = [
    `file: ${i.path}`,
    `kind: ${i.kind} (${i.format})`,
    `family: ${cell(i.family)}`,
    ...(i.prediction ? [`prediction: ${i.prediction}`] : []),
    `components: ${i.components?.join(', ') || '—'}`,
    `size: ${formatBytes(i.size)} (${i.tensors} tensors)`,
    `sha256: ${i.sha256}`,
    `AutoV2: ${i.autoV2}   legacy: ${i.legacyHash}${i.addnet ? `   addnet: ${i.addnet.slice(0, 12)}` : ''}`,
  ];
  if (i.triggerWords.length) lines.push(`trigger words: ${i.triggerWords.join(', ')}`);
  const block = (title: string, meta: Readonly<Record<string, string>>) => {
    const e = Object.entries(meta);
    if (!e.length) return;
    lines.push(`${title}:`);
    for (const [k, v] of e) lines.push(`  ${k}: ${v.length > 200 ? `${v.slice(0, 200)}…` : v}`);
  };
  block('modelspec', i.modelspec);
  block('training (kohya)', i.training);
  block('other metadata', i.otherMetadata);
  console.log(lines.join('\n'));
}

const modelsOption = () => new Option('--models <dir>', 'models folder: an install root or its models/ folder (default: LATENTKIT_MODELS, else $XDG_DATA_HOME/latentkit/models)');

export function registerModels(program: Command): void {
  const models = program.command('models').description('download, list and describe models (checkpoints, LoRAs, VAEs, embeddings, ControlNets, upscalers)');
  const shortNames = Object.entries(SHORT_NAMES).map(([n, s]) => `  ${n.padEnd(13)} ${s.description}`).join('\n');
  models.command('pull').argument('<source>', 'hf:OWNER/REPO/FILE[@REV], civitai:VERSION_ID, an http(s) URL, or a short name')
    .description('download a model into the folder of its kind, resuming a partial download and checking the hub\'s sha256')
    .addOption(new Option('--kind <kind>', 'folder to file it in (default: told from its tensors)').choices([...MODEL_KINDS]))
    .addOption(modelsOption())
    .option('--name <file>', 'save under this file name')
    .option('--to-safetensors', 'convert a .ckpt/.pt/.bin (read by the safe pickle reader) to .safetensors')
    .option('--force', 'replace a file of the same name')
    .addHelpText('after', `\nShort names:\n${shortNames}\n\nEnvironment: HF_TOKEN, HF_ENDPOINT, CIVITAI_API_KEY, LATENTKIT_CIVITAI_ENDPOINT, LATENTKIT_MODELS`)
    .action(pull);
  models.command('list')
    .description('every model by kind: family, format, prediction type, size and AutoV2 hash')
    .option('--models <dir>', 'models folder or install; repeatable (default: LATENTKIT_MODELS, else $XDG_DATA_HOME/latentkit/models)', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--json', 'print JSON')
    .action(list);
  models.command('info').argument('<file-or-name>', 'a model file, or a name in the models folder')
    .description('family, components, hashes, modelspec and kohya training metadata, trigger words')
    .option('--models <dir>', 'models folder or install to find names in; repeatable', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--json', 'print JSON')
    .action(info);
}
