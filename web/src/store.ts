// The state tabs share (zustand): the Generate form (the Prompts tab inserts into it, the Gallery and
// dropped A1111 PNGs fill it), the active tab, and a workflow handed to the Workflow tab.
import { create } from 'zustand';
import type { Infotext } from './lib/infotext';
import type { ApiGraph, UiWorkflow } from './lib/workflow-convert';

export type Tab = 'Generate' | 'Workflow' | 'Gallery' | 'Prompts';
export type Mode = 'txt2img' | 'img2img' | 'inpaint';

export interface FormState {
  prompt: string;
  negativePrompt: string;
  checkpoint: string;
  sampler: string;
  scheduler: string;
  steps: number;
  cfg: number;
  seed: number;
  width: number;
  height: number;
  batchCount: number;
  batchSize: number;
  clipSkip: number;
  hires: boolean;
  hiresScale: number;
  hiresSteps: number;
  hiresDenoise: number;
  denoise: number;
}

export interface Result { url: string; prompt: string; infotext: string; seed: number }

interface Studio {
  tab: Tab;
  mode: Mode;
  form: FormState;
  lastSeed: number;
  initImage?: string;
  results: Result[];
  pendingWorkflow?: { ui?: UiWorkflow; api?: ApiGraph };
  setTab(t: Tab): void;
  setMode(m: Mode): void;
  set(patch: Partial<FormState>): void;
  setLastSeed(s: number): void;
  setInit(url: string | undefined, mode?: Mode): void;
  setResults(r: Result[]): void;
  addResult(r: Result): void;
  loadInfotext(info: Infotext): void;
  openWorkflow(w: { ui?: UiWorkflow; api?: ApiGraph }): void;
  takeWorkflow(): { ui?: UiWorkflow; api?: ApiGraph } | undefined;
}

const num = (v: string | undefined, d: number) => (v !== undefined && v !== '' && Number.isFinite(Number(v)) ? Number(v) : d);

export const useStudio = create<Studio>((set, get) => ({
  tab: 'Generate',
  mode: 'txt2img',
  form: {
    prompt: '', negativePrompt: '', checkpoint: '', sampler: 'euler', scheduler: 'normal', steps: 20, cfg: 7, seed: -1,
    width: 512, height: 512, batchCount: 1, batchSize: 1, clipSkip: 1, hires: false, hiresScale: 2, hiresSteps: 0, hiresDenoise: 0.5, denoise: 0.75,
  },
  lastSeed: -1,
  results: [],
  setTab: (tab) => set({ tab }),
  setMode: (mode) => set({ mode }),
  set: (patch) => set((s) => ({ form: { ...s.form, ...patch } })),
  setLastSeed: (lastSeed) => set({ lastSeed }),
  setInit: (initImage, mode) => set((s) => ({ initImage, mode: mode ?? s.mode, tab: 'Generate' })),
  setResults: (results) => set({ results }),
  addResult: (r) => set((s) => ({ results: [...s.results, r] })),
  loadInfotext: ({ prompt, negativePrompt, params: p }) => set((s) => {
    const [w, h] = (p.Size ?? '').split('x').map(Number);
    return {
      tab: 'Generate',
      form: {
        ...s.form, prompt, negativePrompt,
        steps: num(p.Steps, s.form.steps), cfg: num(p['CFG scale'], s.form.cfg), seed: num(p.Seed, s.form.seed),
        width: w || s.form.width, height: h || s.form.height, clipSkip: num(p['Clip skip'], 1),
        sampler: p.Sampler ?? s.form.sampler, scheduler: p['Schedule type'] ?? s.form.scheduler,
      },
    };
  }),
  openWorkflow: (w) => set({ pendingWorkflow: w, tab: 'Workflow' }),
  takeWorkflow: () => {
    const w = get().pendingWorkflow;
    set({ pendingWorkflow: undefined });
    return w;
  },
}));
