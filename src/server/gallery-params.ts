// What the gallery shows and searches for one history entry: the generation parameters read back
// out of the ComfyUI API graph (sampler node → its prompt, model, latent size), so entries queued by
// any client — the web UI, ComfyUI's own front-end, scripts — are searchable alike.

export interface GalleryParams {
  prompt: string;
  negativePrompt: string;
  model: string;
  sampler: string;
  scheduler: string;
  seed: number | null;
  steps: number | null;
  cfg: number | null;
  denoise: number | null;
  width: number | null;
  height: number | null;
}

type Graph = Record<string, { class_type?: string; inputs?: Record<string, unknown> }>;

const isLink = (v: unknown): v is [string, number] => Array.isArray(v) && v.length === 2 && (typeof v[0] === 'string' || typeof v[0] === 'number');

/** Follows a link through pass-through nodes (LoRA loaders, clip skip) to a node of one of `classes`. */
function upstream(g: Graph, v: unknown, classes: readonly string[], input: string[]): Graph[string] | undefined {
  const seen = new Set<string>();
  while (isLink(v)) {
    const id = String(v[0]);
    if (seen.has(id)) return undefined;
    seen.add(id);
    const node = g[id];
    if (!node) return undefined;
    if (classes.includes(node.class_type ?? '')) return node;
    const next = input.map((k) => node.inputs?.[k]).find(isLink);
    v = next;
  }
  return undefined;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');

const SAMPLERS = ['KSampler', 'KSamplerAdvanced'];
const TEXT = ['CLIPTextEncode'];
const CKPT = ['CheckpointLoaderSimple', 'CheckpointLoader', 'unCLIPCheckpointLoader'];
const LATENT = ['EmptyLatentImage'];

export function paramsOf(graph: unknown): GalleryParams {
  const g = (graph && typeof graph === 'object' ? graph : {}) as Graph;
  // the first sampler by node id: for a hires-fix graph that is the base pass, whose prompt is the one
  const sampler = Object.keys(g).sort((a, b) => Number(a) - Number(b) || a.localeCompare(b)).map((k) => g[k]).find((n) => SAMPLERS.includes(n?.class_type ?? ''));
  const i = sampler?.inputs ?? {};
  const pos = upstream(g, i.positive, TEXT, ['conditioning', 'conditioning_to']);
  const neg = upstream(g, i.negative, TEXT, ['conditioning', 'conditioning_to']);
  const ckpt = upstream(g, i.model, CKPT, ['model']);
  const latent = upstream(g, i.latent_image, LATENT, ['samples', 'pixels']);
  return {
    prompt: str(pos?.inputs?.text),
    negativePrompt: str(neg?.inputs?.text),
    model: str(ckpt?.inputs?.ckpt_name),
    sampler: str(i.sampler_name),
    scheduler: str(i.scheduler),
    seed: num(i.seed ?? i.noise_seed),
    steps: num(i.steps),
    cfg: num(i.cfg),
    denoise: num(i.denoise),
    width: num(latent?.inputs?.width),
    height: num(latent?.inputs?.height),
  };
}
