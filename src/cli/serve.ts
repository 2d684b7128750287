// `latentkit serve`: the ComfyUI-compatible HTTP + websocket server over a models folder, with its
// queue and history in one SQLite file under --data.
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { modelRoots } from '../models/model-folders.js';
import type { Engine } from '../server/engine-api.js';
import type { ServerHost } from '../server/host.js';
import { intOption } from './options.js';

export interface ServeFlags {
  host: string;
  port: number;
  models: string[];
  input?: string;
  output?: string;
  data: string;
  previewMethod: 'none' | 'latent2rgb' | 'taesd';
  listen?: string | boolean;
  authToken?: string;
  apiAuth?: string;
  cacheBytes?: number;
  maxUploadSize: number;
  /** The latentkit version `/system_stats` reports. */
  version?: string;
}

/** Where everything lives unless a flag says otherwise: `./latentkit-data`. */
export const DEFAULT_DATA_DIR = 'latentkit-data';

export type EngineFactory = (host: ServerHost, flags: ServeFlags) => Engine | Promise<Engine>;

async function workflowEngine(host: ServerHost, flags: ServeFlags): Promise<Engine> {
  // loaded on demand so the other commands never pay for the server's dependencies
  const { WorkflowEngine } = await import('../workflow/engine.js');
  return new WorkflowEngine({ host, previewMethod: flags.previewMethod, cacheBytes: flags.cacheBytes });
}

/** Starts the server; resolves once it listens, with a function that stops it. */
export async function startServe(flags: ServeFlags, makeEngine: EngineFactory = workflowEngine): Promise<{ url: string; close: () => Promise<void> }> {
  const { createComfyServer } = await import('../server/app.js');
  const { ServerHost } = await import('../server/host.js');
  const data = resolve(flags.data);
  const roots = modelRoots(flags.models);
  const host = new ServerHost({
    modelRoots: roots.length ? roots : [join(data, 'models')],
    folders: { input: resolve(flags.input ?? join(data, 'input')), output: resolve(flags.output ?? join(data, 'output')), temp: join(data, 'temp') },
  });
  const engine = await makeEngine(host, flags);
  const server = await createComfyServer({
    engine, host, dataDir: data, authToken: flags.authToken, maxUploadBytes: Math.round(flags.maxUploadSize * 1024 * 1024),
    version: flags.version, apiAuth: flags.apiAuth,
    // /sdapi/v1/cmd-flags: the settings, secrets left out
    cmdFlags: { ...flags, authToken: flags.authToken ? '***' : undefined, apiAuth: flags.apiAuth ? '***' : undefined, api: true },
  });
  const bind = flags.listen === undefined || flags.listen === false ? flags.host : flags.listen === true ? '0.0.0.0' : flags.listen;
  const url = await server.listen(bind, flags.port);
  return { url, close: () => server.close() };
}

async function serve(flags: ServeFlags): Promise<void> {
  const { url, close } = await startServe(flags);
  console.log(`latentkit serve: listening on ${url} (data in ${resolve(flags.data)}${flags.authToken ? ', token required' : ''})`);
  let closing = false;
  const stop = (signal: string) => {
    if (closing) return;
    closing = true;
    console.log(`latentkit serve: ${signal}, stopping (a running prompt runs again at the next start)`);
    close().then(() => process.exit(0), (err: unknown) => {
      console.error(`latentkit serve: ${(err as Error).message}`);
      process.exit(1);
    });
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

/** The --api-auth syntax, checked here without loading the server modules. */
function parseApiAuthFlag(v: string): void {
  for (const pair of v.split(',')) if (pair.indexOf(':') <= 0) throw new Error(`--api-auth wants user:pass[,user2:pass2], got '${pair}'`);
}

function sizeOption(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number, got '${v}'`);
    return n;
  };
}

export function registerServe(program: Command): void {
  program.command('serve')
    .description('run the ComfyUI-, A1111- (/sdapi/v1) and OpenAI-compatible (/v1/images) HTTP + websocket server (queue and history survive restarts)')
    .option('--host <addr>', 'address to bind', '127.0.0.1')
    .option('--port <n>', 'port', intOption('--port', 0, 65535), 8188)
    .option('--listen [addr]', 'listen on every interface (0.0.0.0) or on ADDR instead of --host')
    .option('--models <dir>', 'a ComfyUI or A1111 install (or its models/ folder); repeatable (also LATENTKIT_MODELS); its extra_model_paths.yaml is read', (v: string, prev: string[]) => [...prev, v], [] as string[])
    .option('--data <dir>', 'queue, history and default folders', DEFAULT_DATA_DIR)
    .option('--input <dir>', 'input images (default DATA/input)')
    .option('--output <dir>', 'saved images (default DATA/output)')
    .addOption(new Option('--preview-method <m>', 'sampler previews over the websocket').choices(['none', 'latent2rgb', 'taesd']).default('none'))
    .option('--auth-token <t>', 'require Authorization: Bearer T (or ?token=T) on every route and the websocket')
    .option('--api-auth <user:pass[,…]>', 'HTTP Basic credentials for the A1111 /sdapi/v1 routes, as A1111\'s --api-auth', (v: string) => {
      try {
        parseApiAuthFlag(v);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
      return v;
    })
    .option('--cache-bytes <n>', 'byte budget for models kept loaded between prompts', intOption('--cache-bytes', 0))
    .option('--max-upload-size <mb>', 'largest upload in MB', sizeOption('--max-upload-size'), 100)
    // the version comes from the program (main.ts) rather than an import of it, which would be a cycle
    .action((flags: ServeFlags) => serve({ ...flags, version: program.version() }));
}
