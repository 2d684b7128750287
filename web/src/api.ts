// The server as the UI sees it: JSON helpers and the ComfyUI websocket (status, progress, previews).
import type { ObjectInfo } from './lib/workflow-convert';

export const clientId = crypto.randomUUID();

export async function getJson<T>(url: string): Promise<T> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${(await r.text()).slice(0, 300)}`);
  return r.json() as Promise<T>;
}

export async function sendJson<T>(url: string, body: unknown, method = 'POST'): Promise<T> {
  const r = await fetch(url, { method, headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
  const text = await r.text();
  if (!r.ok) throw new Error(text.slice(0, 2000));
  return (text ? JSON.parse(text) : {}) as T;
}

let objectInfo: Promise<ObjectInfo> | undefined;
export const getObjectInfo = (): Promise<ObjectInfo> => (objectInfo ??= getJson<ObjectInfo>('/object_info'));

export async function queuePrompt(prompt: unknown, workflow?: unknown): Promise<string> {
  const body = { prompt, client_id: clientId, ...(workflow ? { extra_data: { extra_pnginfo: { workflow } } } : {}) };
  return (await sendJson<{ prompt_id: string }>('/prompt', body)).prompt_id;
}

export async function uploadImage(blob: Blob, name: string): Promise<string> {
  const form = new FormData();
  form.append('image', blob, name);
  form.append('overwrite', 'true');
  const r = await fetch('/upload/image', { method: 'POST', body: form });
  if (!r.ok) throw new Error(await r.text());
  const j = (await r.json()) as { name: string; subfolder?: string };
  return j.subfolder ? `${j.subfolder}/${j.name}` : j.name;
}

export const viewUrl = (img: { filename: string; subfolder?: string; type?: string }) =>
  `/view?filename=${encodeURIComponent(img.filename)}&subfolder=${encodeURIComponent(img.subfolder ?? '')}&type=${img.type ?? 'output'}`;

export interface WsMessage { type: string; data: Record<string, unknown> }
type Listener = (m: WsMessage) => void;
type PreviewListener = (url: string) => void;

const listeners = new Set<Listener>();
const previewListeners = new Set<PreviewListener>();
let socket: WebSocket | undefined;

/** One websocket for the page, reconnected after a drop; binary frames are preview images. */
function connect(): void {
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  socket = new WebSocket(`${proto}://${location.host}/ws?clientId=${clientId}`);
  socket.binaryType = 'arraybuffer';
  socket.onmessage = (ev) => {
    if (typeof ev.data === 'string') {
      const m = JSON.parse(ev.data) as WsMessage;
      for (const l of listeners) l(m);
    } else {
      // [u32 event=1][u32 format][image bytes]
      const buf = ev.data as ArrayBuffer;
      const fmt = new DataView(buf).getUint32(4);
      const url = URL.createObjectURL(new Blob([buf.slice(8)], { type: fmt === 2 ? 'image/png' : 'image/jpeg' }));
      for (const l of previewListeners) l(url);
    }
  };
  socket.onclose = () => setTimeout(connect, 1000);
}

export function onWs(l: Listener, p?: PreviewListener): () => void {
  if (!socket) connect();
  listeners.add(l);
  if (p) previewListeners.add(p);
  return () => { listeners.delete(l); if (p) previewListeners.delete(p); };
}
