// The studio: four tabs over one server. The Workflow tab (React Flow, the biggest dependency) is
// loaded only when opened, so the first view stays small.
import { lazy, Suspense, useEffect } from 'react';
import { useStudio, type Tab } from './store';
import { Generate } from './tabs/Generate';
import { Gallery } from './tabs/Gallery';
import { Prompts } from './tabs/Prompts';
import { dropFile } from './drop';

const Workflow = lazy(() => import('./tabs/Workflow'));
const TABS: Tab[] = ['Generate', 'Workflow', 'Gallery', 'Prompts'];

export function App() {
  const tab = useStudio((s) => s.tab);
  const setTab = useStudio((s) => s.setTab);
  useEffect(() => {
    // a PNG or JSON dropped anywhere: ComfyUI graphs open in Workflow, A1111 settings in Generate
    const over = (e: DragEvent) => e.preventDefault();
    const drop = (e: DragEvent) => {
      const file = e.dataTransfer?.files[0];
      if (!file || (e.target instanceof Element && e.target.closest('[data-own-drop]'))) return;
      e.preventDefault();
      void dropFile(file);
    };
    window.addEventListener('dragover', over);
    window.addEventListener('drop', drop);
    return () => { window.removeEventListener('dragover', over); window.removeEventListener('drop', drop); };
  }, []);
  return (
    <div className="app">
      <header>
        <strong className="brand">latentkit</strong>
        <nav role="tablist" aria-label="Views">
          {TABS.map((t) => (
            <button key={t} role="tab" aria-selected={tab === t} aria-controls={`panel-${t}`} id={`tab-${t}`} onClick={() => setTab(t)}>{t}</button>
          ))}
        </nav>
      </header>
      <main>
        {/* Generate stays mounted so a running job keeps its progress when another tab is shown */}
        <section role="tabpanel" id="panel-Generate" aria-labelledby="tab-Generate" hidden={tab !== 'Generate'}><Generate /></section>
        {tab === 'Workflow' && (
          <section role="tabpanel" id="panel-Workflow" aria-labelledby="tab-Workflow">
            <Suspense fallback={<p>Loading the editor…</p>}><Workflow /></Suspense>
          </section>
        )}
        {tab === 'Gallery' && <section role="tabpanel" id="panel-Gallery" aria-labelledby="tab-Gallery"><Gallery /></section>}
        {tab === 'Prompts' && <section role="tabpanel" id="panel-Prompts" aria-labelledby="tab-Prompts"><Prompts /></section>}
      </main>
    </div>
  );
}
