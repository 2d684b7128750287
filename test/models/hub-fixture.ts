// A stand-in for Hugging Face and Civitai on two local ports: the "hub" answers resolve / API calls and
// redirects downloads to the "cdn", another origin, the way both services do. The CDN serves Range
// requests and can drop a connection mid-file or stall, and both record what they were sent.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serializeSafetensors } from '../../src/formats/safetensors.js';
import { Tensor } from '../../src/tensor/tensor.js';

export interface HubFile {
  readonly bytes: Uint8Array;
  /** The sha256 the hub states (defaults to the real one; a test may lie). */
  readonly stated?: string;
  /** Needs `Authorization: Bearer <token>` at the hub. */
  readonly token?: string;
  readonly contentType?: string;
}

export interface Hit { readonly url: string; readonly authorization?: string; readonly range?: string; sent: number }

export interface Hub {
  readonly hubUrl: string;
  readonly cdnUrl: string;
  /** hf files by `owner/repo/path`; civitai versions by id; plain files by path (served directly). */
  readonly hf: Map<string, HubFile>;
  readonly civitai: Map<string, HubFile & { name: string }>;
  readonly plain: Map<string, HubFile>;
  readonly hubHits: Hit[];
  readonly cdnHits: Hit[];
  /** The next CDN response for this blob sends this many bytes, then cuts the connection. */
  dropAfter: Map<string, number>;
  /** CDN responses for this blob send half, then stall until the client goes away. */
  stall: Set<string>;
  close(): Promise<void>;
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function listen(server: Server, host: string): Promise<string> {
  return new Promise((resolve) => server.listen(0, host, () => resolve(`http://${host}:${(server.address() as AddressInfo).port}`)));
}

export async function startHub(): Promise<Hub> {
  const blobs = new Map<string, HubFile>();
  const hub: Omit<Hub, 'hubUrl' | 'cdnUrl' | 'close'> = {
    hf: new Map(), civitai: new Map(), plain: new Map(), hubHits: [], cdnHits: [], dropAfter: new Map(), stall: new Set(),
  };
  const record = (req: IncomingMessage, into: Hit[]): Hit => {
    const hit = { url: req.url ?? '', authorization: req.headers.authorization, range: req.headers.range, sent: 0 };
    into.push(hit);
    return hit;
  };
  const sockets = new Set<import('node:net').Socket>();

  const cdn = createServer((req, res) => {
    const hit = record(req, hub.cdnHits);
    const id = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname.replace(/^\/blob\//, ''));
    const file = blobs.get(id);
    if (!file) { res.writeHead(404).end(); return; }
    serveBytes(req, res, file, hit, id);
  });
  cdn.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });

  function serveBytes(req: IncomingMessage, res: ServerResponse, file: HubFile, hit: Hit, id: string) {
    const total = file.bytes.byteLength;
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (m) {
      start = Number(m[1]);
      if (start >= total) { res.writeHead(416, { 'content-range': `bytes */${total}` }).end(); return; }
      res.writeHead(206, { 'content-range': `bytes ${start}-${total - 1}/${total}`, 'content-length': total - start, 'content-type': file.contentType ?? 'application/octet-stream', 'accept-ranges': 'bytes' });
    } else {
      res.writeHead(200, { 'content-length': total, 'content-type': file.contentType ?? 'application/octet-stream', 'accept-ranges': 'bytes' });
    }
    const body = file.bytes.subarray(start);
    const drop = hub.dropAfter.get(id);
    if (drop !== undefined) {
      hub.dropAfter.delete(id);
      const part = body.subarray(0, drop);
      hit.sent = part.byteLength;
      res.write(part, () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    if (hub.stall.has(id)) {
      const part = body.subarray(0, body.byteLength >> 1);
      hit.sent = part.byteLength;
      res.write(part);
      return; // never ends: the client has to give up
    }
    hit.sent = body.byteLength;
    res.end(body);
  }

  const cdnUrl = await listen(cdn, 'localhost');
  const redirect = (res: ServerResponse, id: string, file: HubFile, status = 302, extra: Record<string, string> = {}) => {
    blobs.set(id, file);
    res.writeHead(status, { location: `${cdnUrl}/blob/${encodeURIComponent(id)}`, ...extra }).end();
  };
  const server = createServer((req, res) => {
    const hit = record(req, hub.hubHits);
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const authorized = (f: HubFile) => !f.token || req.headers.authorization === `Bearer ${f.token}`;
    let m = /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (m) {
      const file = hub.hf.get(`${m[1]}/${m[2]}/${m[4]}`);
      if (!file) { res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found'); return; }
      if (!authorized(file)) { res.writeHead(401).end('Access to this model is restricted'); return; }
      redirect(res, `hf/${m[1]}/${m[2]}/${m[3]}/${m[4]}`, file, 302, { 'x-linked-etag': `"${file.stated ?? sha(file.bytes)}"`, 'x-linked-size': String(file.bytes.byteLength) });
      return;
    }
    m = /^\/api\/v1\/model-versions\/(\d+)$/.exec(path);
    if (m) {
      const file = hub.civitai.get(m[1]);
      if (!file) { res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"No model version with id"}'); return; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        id: Number(m[1]), files: [
          { name: 'other.yaml', primary: false, hashes: {} },
          { name: file.name, primary: true, hashes: { SHA256: (file.stated ?? sha(file.bytes)).toUpperCase(), AutoV2: sha(file.bytes).slice(0, 10).toUpperCase() } },
        ],
      }));
      return;
    }
    m = /^\/api\/download\/models\/(\d+)$/.exec(path);
    if (m) {
      const file = hub.civitai.get(m[1]);
      if (!file) { res.writeHead(404).end(); return; }
      if (!authorized(file)) { res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"Unauthorized"}'); return; }
      redirect(res, `civitai/${m[1]}/${file.name}`, file, 307);
      return;
    }
    const plain = hub.plain.get(path);
    if (plain) { serveBytes(req, res, plain, hit, path); return; }
    res.writeHead(404).end();
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  const hubUrl = await listen(server, '127.0.0.1');
  return {
    ...hub, hubUrl, cdnUrl,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([new Promise((r) => server.close(r)), new Promise((r) => cdn.close(r))]);
    },
  };
}

/** Deterministic filler so files do not compress to nothing and a wrong offset changes the hash. */
function filler(n: number, seed: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * 0.1);
}

/** A tiny file with the key layout of an SD1 single-file checkpoint (~270 KB). */
export function tinyCheckpointBytes(seed = 1): Uint8Array {
  return serializeSafetensors({
    'model.diffusion_model.input_blocks.0.0.weight': Tensor.f32([8, 4, 3, 3], filler(288, seed)),
    'model.diffusion_model.out.2.weight': Tensor.f32([4, 8, 3, 3], filler(288, seed + 1)),
    'cond_stage_model.transformer.text_model.embeddings.token_embedding.weight': Tensor.f32([84, 768], filler(84 * 768, seed + 2)),
    'first_stage_model.decoder.conv_in.weight': Tensor.f32([8, 4, 3, 3], filler(288, seed + 3)),
  }, { 'modelspec.architecture': 'stable-diffusion-v1', 'modelspec.title': 'tiny test checkpoint' });
}

/** A tiny kohya LoRA for SD1 with the training metadata kohya writes. */
export function tinyLoraBytes(): Uint8Array {
  const k = 'lora_unet_down_blocks_1_attentions_0_transformer_blocks_0_attn2_to_k';
  const t = 'lora_te_text_model_encoder_layers_0_self_attn_k_proj';
  return serializeSafetensors({
    [`${k}.lora_down.weight`]: Tensor.f32([2, 768], filler(1536, 5)),
    [`${k}.lora_up.weight`]: Tensor.f32([64, 2], filler(128, 6)),
    [`${k}.alpha`]: Tensor.f32([], [2]),
    [`${t}.lora_down.weight`]: Tensor.f32([2, 768], filler(1536, 7)),
    [`${t}.lora_up.weight`]: Tensor.f32([768, 2], filler(1536, 8)),
  }, {
    ss_base_model_version: 'sd_v1', ss_network_module: 'networks.lora', ss_network_dim: '2', ss_output_name: 'tinyfox',
    ss_tag_frequency: JSON.stringify({ '10_tinyfox': { tinyfox: 12, 'red fur': 7, snow: 3 } }),
  });
}

export const sha256Hex = sha;
