// The node-graph editor (React Flow). The API-format graph plus node positions is the state; the
// UI format is made on save and when a prompt is queued (so the saved PNG carries it), and read on
// load through lib/workflow-convert.ts. Loaded lazily: React Flow is most of the editor's weight.
import { memo, useCallback, useEffect, useMemo, useState } from 'react';
import { Background, Controls, Handle, Position, ReactFlow, type Edge, type Node, type NodeChange, type EdgeChange, type Connection, type NodeProps } from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { getJson, getObjectInfo, onWs, queuePrompt, sendJson, viewUrl } from '../api';
import { pngTextChunks } from '../lib/png-text';
import { apiToUi, isWidget, orderedInputs, uiToApi, workflowKind, type ApiGraph, type NodeInfo, type ObjectInfo, type UiWorkflow } from '../lib/workflow-convert';
import { useStudio } from '../store';

type NodeStatus = { running?: boolean; value?: number; max?: number; images?: string[]; cached?: boolean };
interface NodeData extends Record<string, unknown> {
  cls: string; inputs: Record<string, unknown>; info: NodeInfo; status: NodeStatus; title?: string;
  setInput(name: string, v: unknown): void;
}

const isLink = (v: unknown) => Array.isArray(v) && v.length === 2 && typeof v[1] === 'number';

const ComfyNode = memo(function ComfyNode({ data }: NodeProps<Node<NodeData>>) {
  const ins = orderedInputs(data.info);
  return (
    <div className={`comfy-node${data.status.running ? ' running' : ''}`} aria-label={`Node ${data.title ?? data.info.display_name ?? data.cls}`}>
      <div className="title">{data.title ?? data.info.display_name ?? data.cls}</div>
      {data.status.max ? <progress aria-label={`${data.cls} progress`} value={data.status.value} max={data.status.max} /> : null}
      {ins.map(([name, spec]) => {
        const v = data.inputs[name];
        const socket = !isWidget(spec) || isLink(v);
        return (
          <div key={name} className="slot">
            {socket && <Handle type="target" position={Position.Left} id={name} />}
            <span>{name}</span>
            {!socket && (Array.isArray(spec[0])
              ? <select className="nodrag" value={String(v ?? '')} onChange={(e) => data.setInput(name, e.target.value)}>{(spec[0] as string[]).map((o) => <option key={o}>{o}</option>)}</select>
              : spec[0] === 'BOOLEAN' ? <input className="nodrag" type="checkbox" checked={Boolean(v)} onChange={(e) => data.setInput(name, e.target.checked)} />
                : spec[0] === 'STRING' ? <textarea className="nodrag" aria-label={name} value={String(v ?? '')} onChange={(e) => data.setInput(name, e.target.value)} />
                  : <input className="nodrag" type="number" value={Number(v ?? 0)} onChange={(e) => data.setInput(name, Number(e.target.value))} />)}
          </div>
        );
      })}
      {data.info.output.map((t, slot) => (
        <div key={slot} className="slot out"><span>{data.info.output_name?.[slot] ?? t}</span><Handle type="source" position={Position.Right} id={`o${slot}`} /></div>
      ))}
      {data.status.images?.map((u) => <img key={u} src={u} alt={`${data.cls} output`} />)}
    </div>
  );
});
const nodeTypes = { comfy: ComfyNode };

function download(name: string, json: unknown) {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([JSON.stringify(json, null, 2)], { type: 'application/json' }));
  a.download = name;
  a.click();
}

function defaults(info: NodeInfo): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of orderedInputs(info)) {
    if (!isWidget(spec)) continue;
    out[name] = Array.isArray(spec[0]) ? (spec[0] as unknown[])[0] : spec[1]?.default ?? (spec[0] === 'STRING' ? '' : spec[0] === 'BOOLEAN' ? false : 0);
  }
  return out;
}

export default function Workflow() {
  const [info, setInfo] = useState<ObjectInfo>();
  const [graph, setGraph] = useState<ApiGraph>({});
  const [pos, setPos] = useState<Record<string, [number, number]>>({});
  const [status, setStatus] = useState<Record<string, NodeStatus>>({});
  const [palette, setPalette] = useState('');
  const [queue, setQueue] = useState<{ running: [number, string][]; pending: [number, string][] }>({ running: [], pending: [] });
  const [msg, setMsg] = useState('');
  const [mine, setMine] = useState<string[]>([]);

  const load = useCallback((w: { ui?: UiWorkflow; api?: ApiGraph }, oi: ObjectInfo) => {
    try {
      const api = w.ui ? uiToApi(w.ui, oi) : w.api!;
      const p: Record<string, [number, number]> = {};
      if (w.ui) for (const n of w.ui.nodes) p[String(n.id)] = n.pos;
      else for (const n of apiToUi(api, oi).nodes) p[String(n.id)] = n.pos;
      setGraph(api);
      setPos(p);
      setStatus({});
      setMsg(`loaded ${Object.keys(api).length} nodes`);
    } catch (err) {
      setMsg((err as Error).message);
    }
  }, []);

  useEffect(() => {
    void getObjectInfo().then((oi) => {
      setInfo(oi);
      const w = useStudio.getState().takeWorkflow();
      if (w) load(w, oi);
    });
  }, [load]);
  const pending = useStudio((s) => s.pendingWorkflow);
  useEffect(() => { if (pending && info) load(useStudio.getState().takeWorkflow()!, info); }, [pending, info, load]);

  useEffect(() => onWs((m) => {
    const id = m.data.prompt_id as string | undefined;
    if (!id || !mine.includes(id)) return;
    const node = m.data.node as string | null | undefined;
    if (m.type === 'executing') setStatus((s) => Object.fromEntries(Object.entries({ ...s, ...(node ? { [node]: { ...s[node] } } : {}) }).map(([k, v]) => [k, { ...v, running: k === node }])));
    if (m.type === 'progress' && node) setStatus((s) => ({ ...s, [node]: { ...s[node], value: m.data.value as number, max: m.data.max as number } }));
    if (m.type === 'executed' && node) {
      const imgs = ((m.data.output as { images?: { filename: string; subfolder: string; type: string }[] }).images ?? []).map(viewUrl);
      setStatus((s) => ({ ...s, [node]: { ...s[node], images: imgs } }));
    }
    if (m.type === 'execution_success') setMsg('done');
    if (m.type === 'execution_error') setMsg(`error: ${String(m.data.exception_message)}`);
  }), [mine]);

  useEffect(() => {
    const t = setInterval(() => {
      void getJson<{ queue_running: [number, string][]; queue_pending: [number, string][] }>('/queue')
        .then((q) => setQueue({ running: q.queue_running, pending: q.queue_pending }), () => undefined);
    }, 1000);
    return () => clearInterval(t);
  }, []);

  const setInput = useCallback((id: string, name: string, v: unknown) => setGraph((g) => ({ ...g, [id]: { ...g[id], inputs: { ...g[id].inputs, [name]: v } } })), []);

  const nodes: Node<NodeData>[] = useMemo(() => !info ? [] : Object.entries(graph).filter(([, n]) => info[n.class_type]).map(([id, n]) => ({
    id, type: 'comfy', position: { x: pos[id]?.[0] ?? 0, y: pos[id]?.[1] ?? 0 },
    data: { cls: n.class_type, inputs: n.inputs, info: info[n.class_type], status: status[id] ?? {}, title: n._meta?.title, setInput: (name, v) => setInput(id, name, v) },
  })), [graph, pos, info, status, setInput]);
  const edges: Edge[] = useMemo(() => Object.entries(graph).flatMap(([id, n]) => Object.entries(n.inputs).filter(([, v]) => isLink(v))
    .map(([name, v]) => { const [src, slot] = v as [string, number]; return { id: `${src}:${slot}>${id}:${name}`, source: String(src), sourceHandle: `o${slot}`, target: id, targetHandle: name }; })), [graph]);

  const onNodesChange = (changes: NodeChange[]) => {
    for (const c of changes) {
      if (c.type === 'position' && c.position) setPos((p) => ({ ...p, [c.id]: [c.position!.x, c.position!.y] }));
      if (c.type === 'remove') setGraph((g) => { const { [c.id]: _gone, ...rest } = g; return rest; });
    }
  };
  const onEdgesChange = (changes: EdgeChange[]) => {
    for (const c of changes) {
      if (c.type !== 'remove') continue;
      const [, to] = c.id.split('>');
      const [id, name] = to.split(':');
      setGraph((g) => { const { [name]: _gone, ...rest } = g[id].inputs; return { ...g, [id]: { ...g[id], inputs: rest } }; });
    }
  };
  const onConnect = (c: Connection) => { if (c.targetHandle && c.sourceHandle) setInput(c.target, c.targetHandle, [c.source, Number(c.sourceHandle.slice(1))]); };

  const addNode = (cls: string) => {
    const id = String(Math.max(0, ...Object.keys(graph).map(Number).filter(Number.isFinite)) + 1);
    setGraph((g) => ({ ...g, [id]: { class_type: cls, inputs: defaults(info![cls]) } }));
    setPos((p) => ({ ...p, [id]: [80, 80] }));
  };

  const openFile = async (file: File) => {
    if (!info) return;
    const bytes = new Uint8Array(await file.arrayBuffer());
    if (file.name.endsWith('.json')) {
      const json = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
      const kind = workflowKind(json);
      if (!kind) return setMsg(`${file.name}: not a workflow`);
      return load(kind === 'ui' ? { ui: json as UiWorkflow } : { api: json as ApiGraph }, info);
    }
    const t = pngTextChunks(bytes);
    if (t.workflow) load({ ui: JSON.parse(t.workflow) as UiWorkflow }, info);
    else if (t.prompt) load({ api: JSON.parse(t.prompt) as ApiGraph }, info);
    else setMsg(`${file.name}: no workflow in this PNG`);
  };

  const run = async () => {
    try {
      setStatus({});
      const id = await queuePrompt(graph, apiToUi(graph, info!, pos));
      setMine((m) => [...m, id]);
      setMsg('queued');
    } catch (err) {
      setMsg((err as Error).message);
    }
  };

  const classes = info ? Object.keys(info).filter((c) => c.toLowerCase().includes(palette.toLowerCase())).sort() : [];
  return (
    <div className="workflow" data-own-drop onDragOver={(e) => e.preventDefault()} onDrop={(e) => { e.preventDefault(); const f = e.dataTransfer.files[0]; if (f) void openFile(f); }}>
      <div className="row toolbar">
        <label className="file">Load workflow <input type="file" aria-label="Load workflow" accept=".json,.png,application/json,image/png" onChange={(e) => { const f = e.target.files?.[0]; if (f) void openFile(f); }} /></label>
        <button type="button" onClick={() => download('workflow.json', apiToUi(graph, info!, pos))} disabled={!info}>Save (UI format)</button>
        <button type="button" onClick={() => download('workflow_api.json', graph)}>Save (API format)</button>
        <button type="button" className="primary" onClick={() => void run()} disabled={!info || Object.keys(graph).length === 0}>Queue</button>
        <span role="status">{msg}</span>
      </div>
      <div className="editor">
        <aside className="palette">
          <input type="search" aria-label="Find node" placeholder="Find node" value={palette} onChange={(e) => setPalette(e.target.value)} />
          <ul>{classes.slice(0, 200).map((c) => <li key={c}><button type="button" onClick={() => addNode(c)}>{info![c].display_name ?? c}</button></li>)}</ul>
        </aside>
        <div className="canvas" data-testid="graph">
          <ReactFlow nodes={nodes} edges={edges} nodeTypes={nodeTypes} onNodesChange={onNodesChange} onEdgesChange={onEdgesChange} onConnect={onConnect} fitView minZoom={0.1}>
            <Background /><Controls />
          </ReactFlow>
        </div>
        <aside className="queue" aria-label="Queue">
          <h3>Queue</h3>
          <ul>
            {queue.running.map(([n, id]) => <li key={id}>running #{n} <button type="button" onClick={() => void sendJson('/interrupt', { prompt_id: id })}>Cancel</button></li>)}
            {queue.pending.map(([n, id]) => <li key={id}>#{n} <button type="button" onClick={() => void sendJson('/queue', { delete: [id] })}>Cancel</button></li>)}
            {queue.running.length + queue.pending.length === 0 && <li>empty</li>}
          </ul>
        </aside>
      </div>
    </div>
  );
}
