// The places models come from, as users write them: `hf:owner/repo/path@rev`, `civitai:123`, a URL,
// or a short name for a well-known file. Each resolves to one URL to download, the credentials that
// source takes, the file name, and — where the source states it up front — the sha256.
import type { ModelKind } from '../model-folders.js';

export interface ResolvedSource {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  /** What to tell a user who got HTTP 401/403. */
  readonly authHint: string;
  readonly fileName: string;
  /** Known without looking at the file (short names). */
  readonly kind?: ModelKind;
  readonly expectedSha256?: string;
}

export interface ShortName {
  readonly source: string;
  readonly kind: ModelKind;
  readonly fileName?: string;
  readonly description: string;
}

/** The files people mean by these names: the official releases, in the repositories they live in now. */
export const SHORT_NAMES: Readonly<Record<string, ShortName>> = {
  sd15: { source: 'hf:stable-diffusion-v1-5/stable-diffusion-v1-5/v1-5-pruned-emaonly.safetensors', kind: 'checkpoints', description: 'Stable Diffusion 1.5 (EMA, pruned), 4.3 GB' },
  sd21: { source: 'hf:stabilityai/stable-diffusion-2-1/v2-1_768-ema-pruned.safetensors', kind: 'checkpoints', description: 'Stable Diffusion 2.1, 768 px, v-prediction, 5.2 GB' },
  'sd21-base': { source: 'hf:stabilityai/stable-diffusion-2-1-base/v2-1_512-ema-pruned.safetensors', kind: 'checkpoints', description: 'Stable Diffusion 2.1 base, 512 px, 5.2 GB' },
  sdxl: { source: 'hf:stabilityai/stable-diffusion-xl-base-1.0/sd_xl_base_1.0.safetensors', kind: 'checkpoints', description: 'SDXL 1.0 base, 6.9 GB (generation not supported yet)' },
  'sdxl-refiner': { source: 'hf:stabilityai/stable-diffusion-xl-refiner-1.0/sd_xl_refiner_1.0.safetensors', kind: 'checkpoints', description: 'SDXL 1.0 refiner, 6.1 GB (generation not supported yet)' },
  'sdxl-vae': { source: 'hf:stabilityai/sdxl-vae/sdxl_vae.safetensors', kind: 'vae', description: 'SDXL VAE, 335 MB' },
  taesd: { source: 'hf:madebyollin/taesd/diffusion_pytorch_model.safetensors', kind: 'vae', fileName: 'taesd.safetensors', description: 'Tiny AutoEncoder for SD 1.x/2.x previews, 10 MB' },
};

export interface SourceEnv {
  readonly HF_ENDPOINT?: string;
  readonly HF_TOKEN?: string;
  readonly LATENTKIT_CIVITAI_ENDPOINT?: string;
  readonly CIVITAI_API_KEY?: string;
}

const bearer = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
const trimSlash = (s: string) => s.replace(/\/+$/, '');

function usage(source: string): string {
  return `unknown source '${source}': use hf:OWNER/REPO/FILE[@REVISION], civitai:MODEL_VERSION_ID, an http(s):// URL, or one of ${Object.keys(SHORT_NAMES).join(', ')}`;
}

function huggingFace(spec: string, env: SourceEnv, source: string): ResolvedSource {
  const at = spec.lastIndexOf('@');
  const [path, rev] = at > 0 ? [spec.slice(0, at), spec.slice(at + 1)] : [spec, 'main'];
  const parts = path.split('/').filter(Boolean);
  if (parts.length < 3 || !rev) throw new Error(`${source}: a Hugging Face source is hf:OWNER/REPO/PATH/TO/FILE[@REVISION]`);
  const [owner, repo, ...file] = parts;
  const endpoint = trimSlash(env.HF_ENDPOINT || 'https://huggingface.co');
  const url = `${endpoint}/${owner}/${repo}/resolve/${encodeURIComponent(rev)}/${file.map(encodeURIComponent).join('/')}`;
  return {
    url, headers: bearer(env.HF_TOKEN), fileName: file[file.length - 1],
    authHint: env.HF_TOKEN ? 'HF_TOKEN was sent but refused (accept the model\'s license on its page, or check the token)' : 'set HF_TOKEN to a Hugging Face access token (gated models also need their license accepted on their page)',
  };
}

interface CivitaiFile { name?: string; primary?: boolean; hashes?: { SHA256?: string } }

async function civitai(id: string, env: SourceEnv, doFetch: typeof fetch): Promise<ResolvedSource> {
  if (!/^\d+$/.test(id)) throw new Error(`civitai:${id}: a Civitai source is civitai:MODEL_VERSION_ID (the number after modelVersionId= in the page's address)`);
  const endpoint = trimSlash(env.LATENTKIT_CIVITAI_ENDPOINT || 'https://civitai.com');
  const headers = bearer(env.CIVITAI_API_KEY);
  const authHint = env.CIVITAI_API_KEY ? 'CIVITAI_API_KEY was sent but refused' : 'set CIVITAI_API_KEY to a Civitai API key (civitai.com → account settings → API keys)';
  const metaUrl = `${endpoint}/api/v1/model-versions/${id}`;
  let res: Response;
  try {
    res = await doFetch(metaUrl, { headers: { ...headers, accept: 'application/json' } });
  } catch (err) {
    throw new Error(`${metaUrl}: ${(err as Error).message}`, { cause: err });
  }
  if (res.status === 404) throw new Error(`civitai:${id}: no such model version (${metaUrl}: HTTP 404)`);
  if (res.status === 401 || res.status === 403) throw new Error(`civitai:${id}: HTTP ${res.status} — ${authHint}`);
  if (!res.ok) throw new Error(`${metaUrl}: HTTP ${res.status}`);
  let meta: { files?: CivitaiFile[] };
  try {
    meta = await res.json() as { files?: CivitaiFile[] };
  } catch {
    throw new Error(`${metaUrl}: the answer is not JSON`);
  }
  const files = meta.files ?? [];
  const file = files.find((f) => f.primary) ?? (files.length === 1 ? files[0] : undefined);
  if (!file?.name) throw new Error(`civitai:${id}: the model version lists no primary file`);
  return {
    url: `${endpoint}/api/download/models/${id}`, headers, authHint, fileName: file.name,
    expectedSha256: file.hashes?.SHA256?.toLowerCase(),
  };
}

function plainUrl(source: string): ResolvedSource {
  let u: URL;
  try {
    u = new URL(source);
  } catch {
    throw new Error(usage(source));
  }
  const last = u.pathname.split('/').filter(Boolean).pop();
  return {
    url: u.href, headers: {}, fileName: last ? decodeURIComponent(last) : '',
    authHint: 'a plain URL gets no credentials; use an hf: or civitai: source for files that need a token',
  };
}

/** Resolves a source; Civitai sources ask the API for the file's name and hash. */
export async function resolveSource(source: string, env: SourceEnv = process.env, doFetch: typeof fetch = fetch): Promise<ResolvedSource> {
  const short = SHORT_NAMES[source];
  if (short) {
    const r = await resolveSource(short.source, env, doFetch);
    return { ...r, kind: short.kind, fileName: short.fileName ?? r.fileName };
  }
  if (source.startsWith('hf:')) return huggingFace(source.slice(3), env, source);
  if (source.startsWith('civitai:')) return civitai(source.slice(8), env, doFetch);
  if (/^https?:\/\//i.test(source)) return plainUrl(source);
  throw new Error(usage(source));
}
