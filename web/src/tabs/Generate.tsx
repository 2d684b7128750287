// The A1111-style form. Jobs go through the ComfyUI queue as graphs (lib/generate-graph.ts), one
// prompt per batch; progress, previews and results come back over the websocket.
import { useEffect, useRef, useState } from 'react';
import { getObjectInfo, onWs, queuePrompt, sendJson, uploadImage, viewUrl } from '../api';
import { formatInfotext } from '../lib/infotext';
import { generateGraph, infotextParams, type GenerateForm } from '../lib/generate-graph';
import { editWeight } from '../lib/weight';
import { useStudio, type FormState, type Mode } from '../store';
import { MaskCanvas, type MaskHandle } from './MaskCanvas';

interface Lists { checkpoints: string[]; samplers: string[]; schedulers: string[]; loras: string[]; embeddings: string[] }

function useLists(): Lists {
  const [lists, setLists] = useState<Lists>({ checkpoints: [], samplers: [], schedulers: [], loras: [], embeddings: [] });
  useEffect(() => {
    void getObjectInfo().then((info) => {
      const combo = (cls: string, input: string) => ((info[cls]?.input.required?.[input]?.[0] as string[] | undefined) ?? []);
      setLists({
        checkpoints: combo('CheckpointLoaderSimple', 'ckpt_name'), samplers: combo('KSampler', 'sampler_name'),
        schedulers: combo('KSampler', 'scheduler'), loras: combo('LoraLoader', 'lora_name'), embeddings: [],
      });
      const { form, set } = useStudio.getState();
      if (!form.checkpoint) set({ checkpoint: combo('CheckpointLoaderSimple', 'ckpt_name')[0] ?? '' });
    });
    void fetch('/embeddings').then((r) => r.json()).then((e: string[]) => setLists((l) => ({ ...l, embeddings: e })));
  }, []);
  return lists;
}

function TokenCounter({ text }: { text: string }) {
  const [count, setCount] = useState('0/75');
  useEffect(() => {
    const t = setTimeout(() => {
      sendJson<{ count: number; max: number }>('/latentkit/tokens', { text })
        .then((c) => setCount(`${c.count}/${c.max}`), () => setCount('?/75'));
    }, 200);
    return () => clearTimeout(t);
  }, [text]);
  return <span className="tokens" aria-live="polite" data-testid="token-count">{count}</span>;
}

function PromptBox({ label, field }: { label: string; field: 'prompt' | 'negativePrompt' }) {
  const value = useStudio((s) => s.form[field]);
  const set = useStudio((s) => s.set);
  const ref = useRef<HTMLTextAreaElement>(null);
  const onKey = (e: React.KeyboardEvent<HTMLTextAreaElement>) => {
    if (!e.ctrlKey || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return;
    e.preventDefault();
    const el = e.currentTarget;
    const r = editWeight(el.value, el.selectionStart, el.selectionEnd, e.key === 'ArrowUp' ? 0.1 : -0.1);
    set({ [field]: r.text });
    requestAnimationFrame(() => ref.current?.setSelectionRange(r.start, r.end));
  };
  return (
    <div className="prompt-box">
      <textarea ref={ref} aria-label={label} placeholder={label} rows={field === 'prompt' ? 3 : 2} value={value}
        onChange={(e) => set({ [field]: e.target.value })} onKeyDown={onKey} />
      <TokenCounter text={value} />
    </div>
  );
}

function NumberField({ label, field, min, max, step = 1 }: { label: string; field: keyof FormState; min: number; max: number; step?: number }) {
  const v = useStudio((s) => s.form[field]) as number;
  const set = useStudio((s) => s.set);
  return <label>{label} <input type="number" min={min} max={max} step={step} value={v} onChange={(e) => set({ [field]: Number(e.target.value) })} /></label>;
}

function Select({ label, field, options }: { label: string; field: 'checkpoint' | 'sampler' | 'scheduler'; options: string[] }) {
  const v = useStudio((s) => s.form[field]);
  const set = useStudio((s) => s.set);
  return (
    <label>{label}
      <select value={v} onChange={(e) => set({ [field]: e.target.value })}>
        {[...new Set([v, ...options])].filter(Boolean).map((o) => <option key={o} value={o}>{o}</option>)}
      </select>
    </label>
  );
}

/** The form image's pixels at the generation size, as a PNG to upload. */
async function imageBlob(url: string, width: number, height: number): Promise<Blob> {
  const img = new Image();
  img.src = url;
  await img.decode();
  const c = document.createElement('canvas');
  c.width = width;
  c.height = height;
  c.getContext('2d')!.drawImage(img, 0, 0, width, height);
  return new Promise((res, rej) => c.toBlob((b) => (b ? res(b) : rej(new Error('image export failed'))), 'image/png'));
}

interface Job { ids: string[]; seeds: Map<string, number>; form: GenerateForm }

export function Generate() {
  const lists = useLists();
  const s = useStudio();
  const f = s.form;
  const mask = useRef<MaskHandle>(null);
  const job = useRef<Job | null>(null);
  const [busy, setBusy] = useState(false);
  const [progress, setProgress] = useState<{ value: number; max: number } | null>(null);
  const [preview, setPreview] = useState<string>();
  const [error, setError] = useState<string>();

  useEffect(() => onWs((m) => {
    const j = job.current;
    const id = m.data.prompt_id as string | undefined;
    if (!j || !id || !j.ids.includes(id)) return;
    if (m.type === 'progress') setProgress({ value: m.data.value as number, max: m.data.max as number });
    if (m.type === 'executed') {
      const images = ((m.data.output as { images?: { filename: string; subfolder: string; type: string }[] }).images ?? []).filter((i) => i.type === 'output');
      images.forEach((img, k) => {
        const seed = (j.seeds.get(id) ?? 0) + k;
        const info = formatInfotext({ prompt: j.form.prompt, negativePrompt: j.form.negativePrompt, params: infotextParams(j.form, seed) });
        useStudio.getState().addResult({ url: viewUrl(img), prompt: j.form.prompt, infotext: info, seed });
      });
    }
    if (m.type === 'execution_error') setError(String(m.data.exception_message ?? 'execution failed'));
    if (['execution_success', 'execution_error', 'execution_interrupted'].includes(m.type)) {
      j.ids = j.ids.filter((x) => x !== id);
      if (j.ids.length === 0) { job.current = null; setBusy(false); setProgress(null); }
    }
  }, setPreview), []);

  const generate = async () => {
    if (busy || !f.checkpoint) return;
    setError(undefined);
    setBusy(true);
    s.setResults([]);
    setPreview(undefined);
    try {
      const seed = f.seed === -1 ? Math.floor(Math.random() * 2 ** 32) : f.seed;
      s.setLastSeed(seed);
      let init: GenerateForm['init'];
      if (s.mode !== 'txt2img' && s.initImage) {
        const image = await uploadImage(await imageBlob(s.initImage, f.width, f.height), 'latentkit-init.png');
        const maskName = s.mode === 'inpaint' && mask.current && !mask.current.isEmpty()
          ? await uploadImage(await mask.current.exportMask(f.width, f.height), 'latentkit-mask.png') : undefined;
        init = { image, mask: maskName, denoise: f.denoise };
      }
      const j: Job = { ids: [], seeds: new Map(), form: undefined as unknown as GenerateForm };
      job.current = j;
      for (let i = 0; i < Math.max(1, f.batchCount); i++) {
        // A1111 numbering: image k of batch i has seed + i·batchSize + k
        const form: GenerateForm = { ...f, seed: seed + i * f.batchSize, hires: { enabled: f.hires, scale: f.hiresScale, steps: f.hiresSteps, denoise: f.hiresDenoise }, init };
        j.form = { ...form, seed };
        const id = await queuePrompt(generateGraph(form, lists.loras));
        j.ids.push(id);
        j.seeds.set(id, form.seed);
      }
    } catch (err) {
      setError((err as Error).message);
      job.current = null;
      setBusy(false);
    }
  };

  const interrupt = async () => {
    const j = job.current;
    if (j) await sendJson('/queue', { delete: j.ids });
    await sendJson('/interrupt', {});
  };
  const skip = () => sendJson('/interrupt', {});

  useEffect(() => {
    const key = (e: KeyboardEvent) => { if (e.ctrlKey && e.key === 'Enter' && useStudio.getState().tab === 'Generate') { e.preventDefault(); void generate(); } };
    window.addEventListener('keydown', key);
    return () => window.removeEventListener('keydown', key);
  });

  const insert = (tag: string) => s.set({ prompt: `${f.prompt}${f.prompt && !f.prompt.endsWith(' ') ? ' ' : ''}${tag}` });
  const setMode = (m: Mode) => s.setMode(m);

  return (
    <div className="generate">
      <div className="modes" role="radiogroup" aria-label="Mode">
        {(['txt2img', 'img2img', 'inpaint'] as const).map((m) => (
          <label key={m}><input type="radio" name="mode" checked={s.mode === m} onChange={() => setMode(m)} /> {m}</label>
        ))}
      </div>
      <div className="columns">
        <div className="form">
          <PromptBox label="Prompt" field="prompt" />
          <PromptBox label="Negative prompt" field="negativePrompt" />
          <div className="row buttons">
            <button className="primary" onClick={() => void generate()} disabled={busy || !f.checkpoint}>Generate</button>
            <button onClick={() => void interrupt()} disabled={!busy}>Interrupt</button>
            <button onClick={() => void skip()} disabled={!busy}>Skip</button>
          </div>
          {s.mode !== 'txt2img' && (
            <fieldset>
              <legend>Init image</legend>
              <input type="file" accept="image/*" aria-label="Init image" data-own-drop onChange={(e) => {
                const file = e.target.files?.[0];
                if (file) s.setInit(URL.createObjectURL(file));
              }} />
              {s.initImage && s.mode === 'img2img' && <img className="init" src={s.initImage} alt="Init image" />}
              {s.initImage && s.mode === 'inpaint' && <MaskCanvas ref={mask} image={s.initImage} />}
              <NumberField label="Denoising strength" field="denoise" min={0} max={1} step={0.05} />
            </fieldset>
          )}
          <div className="grid">
            <Select label="Checkpoint" field="checkpoint" options={lists.checkpoints} />
            <Select label="Sampler" field="sampler" options={lists.samplers} />
            <Select label="Schedule type" field="scheduler" options={lists.schedulers} />
            <NumberField label="Steps" field="steps" min={1} max={150} />
            <NumberField label="CFG scale" field="cfg" min={1} max={30} step={0.5} />
            <NumberField label="Width" field="width" min={64} max={2048} step={8} />
            <NumberField label="Height" field="height" min={64} max={2048} step={8} />
            <button type="button" onClick={() => s.set({ width: f.height, height: f.width })}>Swap size</button>
            <NumberField label="Batch count" field="batchCount" min={1} max={100} />
            <NumberField label="Batch size" field="batchSize" min={1} max={8} />
            <NumberField label="Clip skip" field="clipSkip" min={1} max={12} />
            <div className="seed">
              <NumberField label="Seed" field="seed" min={-1} max={2 ** 32 - 1} />
              <button type="button" title="Random seed" aria-label="Random seed" onClick={() => s.set({ seed: -1 })}>🎲</button>
              <button type="button" title="Reuse last seed" aria-label="Reuse last seed" onClick={() => s.set({ seed: s.lastSeed })} disabled={s.lastSeed < 0}>♻️</button>
            </div>
          </div>
          <fieldset>
            <legend><label><input type="checkbox" checked={f.hires} onChange={(e) => s.set({ hires: e.target.checked })} /> Hires. fix</label></legend>
            {f.hires && <div className="grid">
              <NumberField label="Upscale by" field="hiresScale" min={1} max={4} step={0.05} />
              <NumberField label="Hires steps" field="hiresSteps" min={0} max={150} />
              <NumberField label="Hires denoising" field="hiresDenoise" min={0} max={1} step={0.05} />
            </div>}
          </fieldset>
          <details>
            <summary>LoRA and embeddings</summary>
            <div className="cards">
              {lists.loras.map((l) => { const name = l.replace(/\.[^.]+$/, '').split('/').pop()!; return <button key={l} type="button" onClick={() => insert(`<lora:${name}:1>`)}>{name}</button>; })}
              {lists.embeddings.map((e) => <button key={e} type="button" onClick={() => insert(`embedding:${e}`)}>{e}</button>)}
              {lists.loras.length + lists.embeddings.length === 0 && <p>No LoRA or embedding files in the models folders.</p>}
            </div>
          </details>
        </div>
        <div className="output">
          {busy && (
            <div className="progress">
              <progress aria-label="Progress" value={progress?.value ?? 0} max={progress?.max ?? 1} />
              <span>{progress ? `Step ${progress.value}/${progress.max}` : 'Queued…'}</span>
              {preview && <img className="preview" src={preview} alt="Preview" />}
            </div>
          )}
          {error && <p role="alert" className="error">{error}</p>}
          <ul className="results" aria-label="Results">
            {s.results.map((r) => (
              <li key={r.url}>
                <img src={r.url} alt={r.prompt} />
                <pre className="infotext">{r.infotext}</pre>
                <div className="row">
                  <button type="button" onClick={() => s.setInit(r.url, 'img2img')}>Send to img2img</button>
                  <button type="button" onClick={() => s.setInit(r.url, 'inpaint')}>Send to inpaint</button>
                  <a href={r.url} download>Download</a>
                </div>
              </li>
            ))}
          </ul>
        </div>
      </div>
    </div>
  );
}
