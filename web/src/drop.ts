// A dropped file: a PNG's text chunks or a JSON workflow, routed to the tab that understands it.
import { parseInfotext } from './lib/infotext';
import { pngTextChunks } from './lib/png-text';
import { workflowKind, type ApiGraph, type UiWorkflow } from './lib/workflow-convert';
import { useStudio } from './store';

export async function dropFile(file: File): Promise<string> {
  const bytes = new Uint8Array(await file.arrayBuffer());
  const studio = useStudio.getState();
  if (file.type === 'application/json' || file.name.endsWith('.json')) {
    const json = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    const kind = workflowKind(json);
    if (!kind) throw new Error(`${file.name}: neither a UI- nor an API-format workflow`);
    studio.openWorkflow(kind === 'ui' ? { ui: json as UiWorkflow } : { api: json as ApiGraph });
    return kind;
  }
  const text = pngTextChunks(bytes);
  if (text.workflow) { studio.openWorkflow({ ui: JSON.parse(text.workflow) as UiWorkflow }); return 'ui'; }
  if (text.prompt) { studio.openWorkflow({ api: JSON.parse(text.prompt) as ApiGraph }); return 'api'; }
  if (text.parameters) { studio.loadInfotext(parseInfotext(text.parameters)); return 'a1111'; }
  throw new Error(`${file.name}: no workflow or parameters in this PNG`);
}
