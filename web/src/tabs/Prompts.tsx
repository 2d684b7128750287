// The prompt library: saved prompts and A1111 styles, tags, full-text search on the server (FTS5).
import { useEffect, useState } from 'react';
import { getJson, sendJson } from '../api';
import { useStudio } from '../store';

interface Saved { id: number; name: string; prompt: string; negativePrompt: string; tags: string[]; isStyle: boolean }

export function Prompts() {
  const [list, setList] = useState<Saved[]>([]);
  const [search, setSearch] = useState('');
  const [draft, setDraft] = useState({ name: '', prompt: '', negativePrompt: '', tags: '', isStyle: false });
  const [msg, setMsg] = useState('');
  const studio = useStudio();

  const refresh = () => {
    const p = new URLSearchParams();
    const tag = /(?:^|\s)#(\S+)/.exec(search)?.[1];
    const text = search.replace(/(?:^|\s)#\S+/g, ' ').trim();
    if (text) p.set('q', text);
    if (tag) p.set('tag', tag);
    void getJson<Saved[]>(`/latentkit/prompts?${p}`).then(setList);
  };
  useEffect(refresh, [search]);

  const save = async () => {
    await sendJson('/latentkit/prompts', { ...draft, tags: draft.tags.split(/[\s,]+/).filter(Boolean) });
    setDraft({ name: '', prompt: '', negativePrompt: '', tags: '', isStyle: false });
    refresh();
  };
  const insert = (p: Saved) => {
    const f = studio.form;
    // a style wraps the current prompt where it says {prompt}, as A1111 applies styles
    const prompt = p.isStyle && p.prompt.includes('{prompt}') ? p.prompt.replace('{prompt}', f.prompt) : [f.prompt, p.prompt].filter(Boolean).join(', ');
    studio.set({ prompt, negativePrompt: [f.negativePrompt, p.negativePrompt].filter(Boolean).join(', ') });
    studio.setTab('Generate');
  };
  const importCsv = async (file: File) => {
    const r = await sendJson<{ imported: number }>('/latentkit/styles.csv', { csv: await file.text() });
    setMsg(`imported ${r.imported} styles`);
    refresh();
  };

  return (
    <div className="prompts">
      <form className="save" onSubmit={(e) => { e.preventDefault(); void save(); }}>
        <input aria-label="Name" placeholder="Name" required value={draft.name} onChange={(e) => setDraft({ ...draft, name: e.target.value })} />
        <textarea aria-label="Saved prompt" placeholder="Prompt" value={draft.prompt} onChange={(e) => setDraft({ ...draft, prompt: e.target.value })} />
        <textarea aria-label="Saved negative prompt" placeholder="Negative prompt" value={draft.negativePrompt} onChange={(e) => setDraft({ ...draft, negativePrompt: e.target.value })} />
        <input aria-label="Tags" placeholder="Tags (space separated)" value={draft.tags} onChange={(e) => setDraft({ ...draft, tags: e.target.value })} />
        <label><input type="checkbox" checked={draft.isStyle} onChange={(e) => setDraft({ ...draft, isStyle: e.target.checked })} /> Style</label>
        <div className="row">
          <button type="submit">Save prompt</button>
          <button type="button" onClick={() => setDraft({ ...draft, prompt: studio.form.prompt, negativePrompt: studio.form.negativePrompt })}>From Generate</button>
        </div>
      </form>
      <div className="row">
        <input type="search" aria-label="Search saved prompts" placeholder="Search (words, #tag)" value={search} onChange={(e) => setSearch(e.target.value)} />
        <label className="file">Import styles.csv <input type="file" accept=".csv,text/csv" data-own-drop onChange={(e) => { const f = e.target.files?.[0]; if (f) void importCsv(f); }} /></label>
        <a href="/latentkit/styles.csv" download="styles.csv">Export styles.csv</a>
        <span role="status">{msg}</span>
      </div>
      <ul className="saved" aria-label="Saved prompts">
        {list.map((p) => (
          <li key={p.id}>
            <strong>{p.name}</strong>{p.isStyle && <em> (style)</em>}
            <p>{p.prompt}</p>
            {p.negativePrompt && <p className="neg">{p.negativePrompt}</p>}
            <p className="tags">{p.tags.map((t) => <span key={t} className="tag">#{t}</span>)}</p>
            <div className="row">
              <button type="button" onClick={() => insert(p)}>Insert</button>
              <button type="button" onClick={() => { void fetch(`/latentkit/prompts/${p.id}`, { method: 'DELETE' }).then(refresh); }}>Delete</button>
            </div>
          </li>
        ))}
      </ul>
    </div>
  );
}
