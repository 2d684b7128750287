// Sampler and scheduler names: ComfyUI's identifiers are canonical; A1111's display names — the
// pre-1.9 combined ones ("DPM++ 2M Karras") and the ≥ 1.9 sampler + "Schedule type" pairs, with
// "Automatic" meaning the sampler's own default — are aliases, resolved the way A1111 v1.10's
// `get_sampler_and_scheduler` does (a trailing scheduler label splits off the sampler name).

/** ComfyUI `SAMPLER_NAMES` (KSAMPLER_NAMES + ddim, uni_pc, uni_pc_bh2) plus A1111-only samplers. */
export const SAMPLER_IDS = [
  'euler', 'euler_cfg_pp', 'euler_ancestral', 'euler_ancestral_cfg_pp', 'heun', 'heunpp2', 'dpm_2', 'dpm_2_ancestral',
  'lms', 'dpm_fast', 'dpm_adaptive', 'dpmpp_2s_ancestral', 'dpmpp_2s_ancestral_cfg_pp', 'dpmpp_sde', 'dpmpp_sde_gpu',
  'dpmpp_2m', 'dpmpp_2m_cfg_pp', 'dpmpp_2m_sde', 'dpmpp_2m_sde_gpu', 'dpmpp_2m_sde_heun', 'dpmpp_2m_sde_heun_gpu',
  'dpmpp_3m_sde', 'dpmpp_3m_sde_gpu', 'ddpm', 'lcm', 'ipndm', 'ipndm_v', 'deis', 'res_multistep', 'res_multistep_cfg_pp',
  'res_multistep_ancestral', 'res_multistep_ancestral_cfg_pp', 'gradient_estimation', 'gradient_estimation_cfg_pp',
  'er_sde', 'seeds_2', 'seeds_3', 'sa_solver', 'sa_solver_pece', 'ddim', 'uni_pc', 'uni_pc_bh2',
  'restart', 'plms',
] as const;

/** ComfyUI `SCHEDULER_NAMES` plus k-diffusion's polyexponential / vp and Align Your Steps. */
export const SCHEDULER_NAME_IDS = [
  'normal', 'karras', 'exponential', 'sgm_uniform', 'simple', 'ddim_uniform', 'beta', 'linear_quadratic', 'kl_optimal',
  'polyexponential', 'vp', 'align_your_steps',
] as const;

export interface SamplerChoice {
  /** ComfyUI sampler id (or `restart` / `plms` for A1111's own). */
  sampler: string;
  /** Scheduler id. */
  scheduler: string;
}

interface A1111Sampler {
  label: string;
  id: string;
  /** A1111's internal aliases (k_… names). */
  aliases: string[];
  /** The scheduler "Automatic" picks; null = k-diffusion's uniform `get_sigmas` (≙ `normal`). */
  automatic: string | null;
  /** Timestep sampler that ignores the schedule type (A1111 writes none for it). */
  timestep?: boolean;
}

/** A1111 v1.10 samplers, with the default scheduler each declares (`options['scheduler']`). */
const A1111_SAMPLERS: A1111Sampler[] = [
  { label: 'DPM++ 2M', id: 'dpmpp_2m', aliases: ['k_dpmpp_2m'], automatic: 'karras' },
  { label: 'DPM++ SDE', id: 'dpmpp_sde', aliases: ['k_dpmpp_sde'], automatic: 'karras' },
  { label: 'DPM++ 2M SDE', id: 'dpmpp_2m_sde', aliases: ['k_dpmpp_2m_sde'], automatic: 'exponential' },
  { label: 'DPM++ 2M SDE Heun', id: 'dpmpp_2m_sde_heun', aliases: ['k_dpmpp_2m_sde_heun'], automatic: 'exponential' },
  { label: 'DPM++ 2S a', id: 'dpmpp_2s_ancestral', aliases: ['k_dpmpp_2s_a'], automatic: 'karras' },
  { label: 'DPM++ 3M SDE', id: 'dpmpp_3m_sde', aliases: ['k_dpmpp_3m_sde'], automatic: 'exponential' },
  { label: 'Euler a', id: 'euler_ancestral', aliases: ['k_euler_a', 'k_euler_ancestral'], automatic: null },
  { label: 'Euler', id: 'euler', aliases: ['k_euler'], automatic: null },
  { label: 'LMS', id: 'lms', aliases: ['k_lms'], automatic: null },
  { label: 'Heun', id: 'heun', aliases: ['k_heun'], automatic: null },
  { label: 'DPM2', id: 'dpm_2', aliases: ['k_dpm_2'], automatic: 'karras' },
  { label: 'DPM2 a', id: 'dpm_2_ancestral', aliases: ['k_dpm_2_a'], automatic: 'karras' },
  { label: 'DPM fast', id: 'dpm_fast', aliases: ['k_dpm_fast'], automatic: null },
  { label: 'DPM adaptive', id: 'dpm_adaptive', aliases: ['k_dpm_ad'], automatic: null },
  { label: 'Restart', id: 'restart', aliases: ['restart'], automatic: 'karras' },
  // Timestep samplers: A1111 ignores the schedule type and uses DDIM's uniform timesteps
  // (1, 1 + ⌊1000/n⌋, …) — ComfyUI's ddim_uniform. UniPC's "time_uniform" grid is only close to `normal`.
  { label: 'DDIM', id: 'ddim', aliases: [], automatic: 'ddim_uniform', timestep: true },
  { label: 'PLMS', id: 'plms', aliases: [], automatic: 'ddim_uniform', timestep: true },
  { label: 'UniPC', id: 'uni_pc', aliases: [], automatic: null, timestep: true },
  { label: 'LCM', id: 'lcm', aliases: [], automatic: null },
];

interface A1111Scheduler {
  label: string;
  name: string;
  id: string;
  aliases: string[];
}

/** A1111 `sd_schedulers.schedulers` (minus Automatic), in its order — the order suffixes are tried in. */
const A1111_SCHEDULERS: A1111Scheduler[] = [
  { label: 'Uniform', name: 'uniform', id: 'normal', aliases: [] },
  { label: 'Karras', name: 'karras', id: 'karras', aliases: [] },
  { label: 'Exponential', name: 'exponential', id: 'exponential', aliases: [] },
  { label: 'Polyexponential', name: 'polyexponential', id: 'polyexponential', aliases: [] },
  { label: 'SGM Uniform', name: 'sgm_uniform', id: 'sgm_uniform', aliases: ['SGMUniform'] },
  { label: 'KL Optimal', name: 'kl_optimal', id: 'kl_optimal', aliases: [] },
  { label: 'Align Your Steps', name: 'align_your_steps', id: 'align_your_steps', aliases: [] },
  { label: 'Simple', name: 'simple', id: 'simple', aliases: [] },
  { label: 'Normal', name: 'normal', id: 'normal', aliases: [] },
  { label: 'DDIM', name: 'ddim', id: 'ddim_uniform', aliases: [] },
  { label: 'Beta', name: 'beta', id: 'beta', aliases: [] },
];

const lower = (s: string): string => s.trim().toLowerCase();

function findSamplerId(name: string): string | undefined {
  const key = lower(name);
  const a = A1111_SAMPLERS.find((s) => lower(s.label) === key || s.aliases.some((x) => lower(x) === key));
  if (a) return a.id;
  return SAMPLER_IDS.find((id) => id === key);
}

function findSchedulerId(name: string): string | undefined {
  const key = lower(name);
  const ours = SCHEDULER_NAME_IDS.find((id) => id === key);
  if (ours) return ours;
  const a = A1111_SCHEDULERS.find((s) => [s.label, s.name, ...s.aliases].some((x) => lower(x) === key));
  return a?.id;
}

/** The scheduler A1111's "Automatic" means for a sampler (k-diffusion uniform = `normal`). */
export function automaticScheduler(sampler: string): string {
  const id = findSamplerId(sampler) ?? sampler;
  return A1111_SAMPLERS.find((s) => s.id === id)?.automatic ?? 'normal';
}

/** A ComfyUI sampler id from any accepted spelling (id, A1111 label, k_ alias); throws with suggestions. */
export function resolveSampler(name: string): string {
  const id = findSamplerId(name);
  if (id) return id;
  throw unknownName('sampler', name, [...SAMPLER_IDS, ...A1111_SAMPLERS.map((s) => s.label)]);
}

/** A scheduler id from any accepted spelling ("automatic" is not a scheduler: use {@link parseSamplerName}). */
export function resolveScheduler(name: string): string {
  const id = findSchedulerId(name);
  if (id) return id;
  throw unknownName('scheduler', name, [...SCHEDULER_NAME_IDS, ...A1111_SCHEDULERS.map((s) => s.label), 'Automatic']);
}

/**
 * Sampler + scheduler from a name as users and PNG metadata write it: a ComfyUI id ("dpmpp_2m"),
 * an A1111 label ("DPM++ 2M"), a pre-1.9 combined label ("DPM++ 2M Karras", "DPM2 a Karras"), with
 * an optional separate scheduler / "Schedule type" ("Karras", "karras", "Automatic"). A scheduler
 * suffix in the name wins over the separate one, as in A1111; a missing or "Automatic" scheduler
 * becomes the sampler's A1111 default. Case-insensitive.
 */
export function parseSamplerName(name: string, scheduleType?: string | null): SamplerChoice {
  let samplerName = name.trim();
  let scheduler: string | undefined;
  if (scheduleType && lower(scheduleType) !== 'automatic') scheduler = resolveScheduler(scheduleType);
  if (!findSamplerId(samplerName)) {
    for (const s of A1111_SCHEDULERS) {
      const opt = [s.label, s.name, ...s.aliases].find((o) => lower(samplerName).endsWith(' ' + lower(o)));
      if (opt) {
        scheduler = s.id;
        samplerName = samplerName.slice(0, -(opt.length + 1));
        break;
      }
    }
  }
  const sampler = resolveSampler(samplerName);
  return { sampler, scheduler: scheduler ?? automaticScheduler(sampler) };
}

export interface A1111Names {
  /** "Sampler" as A1111 ≥ 1.9 writes it ("DPM++ 2M"). */
  sampler: string;
  /** "Schedule type" label ("Karras"), or null where A1111 writes none (its uniform default). */
  scheduleType: string | null;
  /** The pre-1.9 single-field name ("DPM++ 2M Karras"). */
  combined: string;
}

/**
 * A1111 display names for a (sampler, scheduler) pair, for PNG "parameters" metadata
 * (`Sampler: DPM++ 2M, Schedule type: Karras`). Samplers A1111 lacks keep their ComfyUI id.
 */
export function toA1111Names(sampler: string, scheduler: string): A1111Names {
  const sid = resolveSampler(sampler);
  const sch = resolveScheduler(scheduler);
  const entry = A1111_SAMPLERS.find((s) => s.id === sid);
  const label = entry?.label ?? sid;
  const automatic = automaticScheduler(sid);
  const silent = sch === automatic && (automatic === 'normal' || entry?.timestep === true);
  const schLabel = silent ? null : (A1111_SCHEDULERS.find((s) => s.id === sch && s.name !== 'uniform')?.label ?? sch);
  return { sampler: label, scheduleType: schLabel, combined: schLabel ? `${label} ${schLabel}` : label };
}

/** `Sampler: …, Schedule type: …` fields as A1111 writes them into the infotext. */
export function a1111InfotextFields(sampler: string, scheduler: string): Record<string, string> {
  const n = toA1111Names(sampler, scheduler);
  return n.scheduleType ? { Sampler: n.sampler, 'Schedule type': n.scheduleType } : { Sampler: n.sampler };
}

function unknownName(kind: string, name: string, known: readonly string[]): Error {
  const key = lower(name);
  const unique = [...new Set(known)];
  const close = unique
    .map((k) => ({ k, d: editDistance(key, lower(k)) }))
    .filter(({ k, d }) => d <= Math.max(2, Math.floor(k.length / 3)) || lower(k).includes(key) || key.includes(lower(k)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 5)
    .map(({ k }) => `"${k}"`);
  const hint = close.length ? `did you mean ${close.join(', ')}?` : `known: ${unique.join(', ')}`;
  return new Error(`unknown ${kind} "${name}"; ${hint}`);
}

/** Levenshtein distance (names are short, so the O(n·m) table is fine). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
