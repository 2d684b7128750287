// ComfyUI's websocket (`/ws`, `/api/ws`): one socket per client id (a reconnect with the same id
// replaces the old one), `status` with the `sid` on connect, private vs broadcast messages, binary
// preview frames (type 1, or type 4 with metadata after `feature_flags`).
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { originRefused, tokenAccepted } from './security.js';

interface Client {
  readonly ws: WebSocket;
  previewMetadata: boolean;
}

export interface WsOptions {
  readonly authToken?: string;
  readonly maxUploadBytes: number;
  /** `queue_remaining` for the connect-time status. */
  readonly queueRemaining: () => number;
  /** The client id owning the running prompt and the node it executes (a reconnect resumes with it). */
  readonly running: () => { clientId?: string; node: string | null; promptId: string } | undefined;
}

/** Frames wait in a socket's buffer beyond this: previews are dropped rather than piling up. */
const PREVIEW_BACKLOG_BYTES = 8 << 20;

function refuseUpgrade(socket: Duplex, status: number, reason: string, message: string): void {
  const body = JSON.stringify({ error: message });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

export class WsHub {
  private readonly clients = new Map<string, Client>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20 });

  constructor(private readonly opts: WsOptions) {}

  /** Takes over `upgrade` requests for `/ws` and `/api/ws` on the HTTP server. */
  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname !== '/ws' && url.pathname !== '/api/ws') return refuseUpgrade(socket, 404, 'Not Found', `no websocket at ${url.pathname}`);
      if (this.opts.authToken !== undefined && !tokenAccepted(this.opts.authToken, req.headers, req.url ?? '/')) {
        return refuseUpgrade(socket, 401, 'Unauthorized', 'missing or wrong token');
      }
      const refused = originRefused(req.headers);
      if (refused) return refuseUpgrade(socket, 403, 'Forbidden', refused);
      this.wss.handleUpgrade(req, socket, head, (ws) => this.connected(ws, url.searchParams.get('clientId')));
    });
  }

  private connected(ws: WebSocket, clientId: string | null): void {
    const sid = clientId && clientId.length <= 256 ? clientId : randomUUID().replace(/-/g, '');
    const client: Client = { ws, previewMetadata: false };
    this.clients.set(sid, client);
    ws.on('close', () => {
      // a replaced socket closing later must not remove its successor
      if (this.clients.get(sid) === client) this.clients.delete(sid);
    });
    ws.on('error', () => undefined);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let msg: unknown;
      try {
        msg = JSON.parse(data.toString());
      } catch {
        return;
      }
      const m = msg as { type?: unknown; data?: { supports_preview_metadata?: unknown } };
      if (m?.type === 'feature_flags') {
        client.previewMetadata = m.data?.supports_preview_metadata === true;
        this.sendTo(sid, 'feature_flags', { supports_preview_metadata: true, max_upload_size: this.opts.maxUploadBytes });
      }
    });
    this.sendTo(sid, 'status', { status: { exec_info: { queue_remaining: this.opts.queueRemaining() } }, sid });
    const run = this.opts.running();
    if (run && run.clientId === sid && run.node !== null) this.sendTo(sid, 'executing', { node: run.node, display_node: run.node, prompt_id: run.promptId });
  }

  /** Number of connected client ids. */
  get size(): number {
    return this.clients.size;
  }

  sendTo(sid: string, type: string, data: unknown): void {
    const c = this.clients.get(sid);
    if (c && c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify({ type, data }));
  }

  broadcast(type: string, data: unknown): void {
    const text = JSON.stringify({ type, data });
    for (const c of this.clients.values()) if (c.ws.readyState === c.ws.OPEN) c.ws.send(text);
  }

  /** To `sid` when given, else to everyone. */
  send(sid: string | undefined, type: string, data: unknown): void {
    if (sid === undefined) this.broadcast(type, data);
    else this.sendTo(sid, type, data);
  }

  broadcastStatus(queueRemaining: number): void {
    this.broadcast('status', { status: { exec_info: { queue_remaining: queueRemaining } } });
  }

  /** A JPEG preview as binary frame 1 (`[1][1=JPEG][bytes]`), or 4 with metadata to sockets that asked. */
  preview(sid: string | undefined, jpeg: Buffer, meta: { node_id: string; prompt_id: string }): void {
    const targets = sid === undefined ? [...this.clients.values()] : [this.clients.get(sid)].filter((c): c is Client => c !== undefined);
    let plain: Buffer | undefined;
    let withMeta: Buffer | undefined;
    for (const c of targets) {
      if (c.ws.readyState !== c.ws.OPEN || c.ws.bufferedAmount > PREVIEW_BACKLOG_BYTES) continue;
      if (c.previewMetadata) {
        if (!withMeta) {
          const json = Buffer.from(JSON.stringify({
            node_id: meta.node_id, prompt_id: meta.prompt_id, display_node_id: meta.node_id, parent_node_id: null,
            real_node_id: meta.node_id, image_type: 'image/jpeg',
          }));
          const head = Buffer.alloc(8);
          head.writeUInt32BE(4, 0);
          head.writeUInt32BE(json.length, 4);
          withMeta = Buffer.concat([head, json, jpeg]);
        }
        c.ws.send(withMeta);
      } else {
        if (!plain) {
          const head = Buffer.alloc(8);
          head.writeUInt32BE(1, 0);
          head.writeUInt32BE(1, 4);
          plain = Buffer.concat([head, jpeg]);
        }
        c.ws.send(plain);
      }
    }
  }

  close(): Promise<void> {
    for (const c of this.clients.values()) c.ws.terminate();
    this.clients.clear();
    return new Promise((resolve) => this.wss.close(() => resolve()));
  }
}
