// Every saved output, newest first, loaded a page at a time as the end of the list scrolls into view.
import { useCallback, useEffect, useRef, useState } from 'react';
import { getJson, viewUrl } from '../api';
import { apiToUi, type ApiGraph } from '../lib/workflow-convert';
import { getObjectInfo } from '../api';
import { useStudio } from '../store';

interface Item {
  id: string; promptId: string; filename: string; subfolder: string; time: number; graph: ApiGraph;
  prompt: string; negativePrompt: string; model: string; sampler: string; scheduler: string;
  seed: number | null; steps: number | null; cfg: number | null; width: number | null; height: number | null;
}

const thumb = (i: Item) => `/latentkit/gallery/thumb?filename=${encodeURIComponent(i.filename)}&subfolder=${encodeURIComponent(i.subfolder)}`;

export function Gallery() {
  const [items, setItems] = useState<Item[]>([]);
  const [next, setNext] = useState<number | null>(0);
  const [q, setQ] = useState({ text: '', model: '', sampler: '', from: '', to: '' });
  const [open, setOpen] = useState<Item>();
  const end = useRef<HTMLDivElement>(null);
  const loading = useRef(false);
  const studio = useStudio();

  const query = useCallback((cursor: number) => {
    const p = new URLSearchParams({ cursor: String(cursor), limit: '24' });
    if (q.text) p.set('q', q.text);
    if (q.model) p.set('model', q.model);
    if (q.sampler) p.set('sampler', q.sampler);
    if (q.from) p.set('from', String(new Date(q.from).getTime()));
    if (q.to) p.set('to', String(new Date(q.to).getTime() + 86_400_000));
    return `/latentkit/gallery?${p}`;
  }, [q]);

  const load = useCallback(async (cursor: number, replace: boolean) => {
    if (loading.current) return;
    loading.current = true;
    try {
      const page = await getJson<{ items: Item[]; next: number | null }>(query(cursor));
      setItems((old) => (replace ? page.items : [...old, ...page.items]));
      setNext(page.next);
    } finally {
      loading.current = false;
    }
  }, [query]);

  useEffect(() => { void load(0, true); }, [load]);
  useEffect(() => {
    const el = end.current;
    if (!el || next === null) return;
    const io = new IntersectionObserver((e) => { if (e[0].isIntersecting && next !== null) void load(next, false); });
    io.observe(el);
    return () => io.disconnect();
  }, [next, load]);

  const remove = async (item: Item) => {
    if (!confirm(`Delete this image and its history record?`)) return;
    await fetch(`/latentkit/gallery/${encodeURIComponent(item.promptId)}`, { method: 'DELETE' });
    setOpen(undefined);
    setItems((old) => old.filter((i) => i.promptId !== item.promptId));
  };

  const reuse = (i: Item) => {
    studio.set({
      prompt: i.prompt, negativePrompt: i.negativePrompt, ...(i.model ? { checkpoint: i.model } : {}), ...(i.sampler ? { sampler: i.sampler } : {}),
      ...(i.scheduler ? { scheduler: i.scheduler } : {}), ...(i.seed !== null ? { seed: i.seed } : {}), ...(i.steps ? { steps: i.steps } : {}),
      ...(i.cfg ? { cfg: i.cfg } : {}), ...(i.width ? { width: i.width } : {}), ...(i.height ? { height: i.height } : {}),
    });
    studio.setTab('Generate');
  };
  const reuseWorkflow = async (i: Item) => studio.openWorkflow({ ui: apiToUi(i.graph, await getObjectInfo()) });

  return (
    <div className="gallery">
      <form className="row filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <input type="search" aria-label="Search prompts" placeholder="Search prompts" value={q.text} onChange={(e) => setQ({ ...q, text: e.target.value })} />
        <input aria-label="Model" placeholder="Model" value={q.model} onChange={(e) => setQ({ ...q, model: e.target.value })} />
        <input aria-label="Sampler" placeholder="Sampler" value={q.sampler} onChange={(e) => setQ({ ...q, sampler: e.target.value })} />
        <label>From <input type="date" value={q.from} onChange={(e) => setQ({ ...q, from: e.target.value })} /></label>
        <label>To <input type="date" value={q.to} onChange={(e) => setQ({ ...q, to: e.target.value })} /></label>
      </form>
      <ul className="thumbs" aria-label="Gallery images">
        {items.map((i) => (
          <li key={i.id}><button type="button" onClick={() => setOpen(i)}><img src={thumb(i)} alt={i.prompt} loading="lazy" width={160} height={160} /></button></li>
        ))}
      </ul>
      {items.length === 0 && <p>No images yet.</p>}
      <div ref={end} className="end" />
      {open && (
        <div className="detail" role="dialog" aria-label="Image details">
          <img src={viewUrl(open)} alt={open.prompt} />
          <dl>
            <dt>Prompt</dt><dd>{open.prompt}</dd>
            <dt>Negative prompt</dt><dd>{open.negativePrompt}</dd>
            <dt>Model</dt><dd>{open.model}</dd>
            <dt>Sampler</dt><dd>{open.sampler} {open.scheduler}</dd>
            <dt>Seed</dt><dd>{open.seed}</dd>
            <dt>Steps / CFG</dt><dd>{open.steps} / {open.cfg}</dd>
            <dt>Size</dt><dd>{open.width}×{open.height}</dd>
            <dt>Date</dt><dd>{open.time ? new Date(open.time).toLocaleString() : ''}</dd>
          </dl>
          <div className="row">
            <button type="button" onClick={() => reuse(open)}>Use in Generate</button>
            <button type="button" onClick={() => void reuseWorkflow(open)}>Open in Workflow</button>
            <a href={viewUrl(open)} download={open.filename}>Download</a>
            <button type="button" onClick={() => void remove(open)}>Delete</button>
            <button type="button" onClick={() => setOpen(undefined)}>Close</button>
          </div>
        </div>
      )}
    </div>
  );
}
