// One HTTP download into a `.part` file that survives anything short of success: a dropped
// connection, Ctrl-C or a full disk leave the bytes received so far, and the next call asks only for
// the rest (Range). The sha256 is computed while writing and checked against what the hub states;
// a mismatch deletes the file, since those bytes can never become the right ones.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat, type FileHandle } from 'node:fs/promises';

export interface DownloadRequest {
  readonly url: string;
  /** Sent to the first URL's origin only: a redirect to a CDN on another host never sees a token. */
  readonly headers?: Readonly<Record<string, string>>;
  /** The `.part` file; resumed when it exists. */
  readonly dest: string;
  /** The sha256 the source's metadata states (Civitai); Hugging Face's comes with the response. */
  readonly expectedSha256?: string;
  /** Said after an HTTP 401/403: which variable holds the credentials this source takes. */
  readonly authHint?: string;
  readonly signal?: AbortSignal;
  readonly onStart?: (info: { total?: number; resumedFrom: number }) => void;
  /** Bytes in the file so far (resumed ones included). */
  readonly onProgress?: (done: number) => void;
  /** Writes one chunk at the end of the file; tests replace it to simulate a full disk. */
  readonly write?: (fh: FileHandle, chunk: Uint8Array) => Promise<void>;
  readonly fetch?: typeof fetch;
}

export interface DownloadResult {
  readonly sha256: string;
  /** The hash the hub stated, when it stated one (then equal to sha256). */
  readonly expectedSha256?: string;
  /** Size of the finished file. */
  readonly size: number;
  /** Bytes fetched by this call: size minus what a previous attempt had left. */
  readonly received: number;
  readonly resumedFrom: number;
}

/** An error whose message is the one line the CLI prints; `partial` says a `.part` was kept. */
export class DownloadError extends Error {
  constructor(message: string, readonly partial?: { path: string; bytes: number }, options?: ErrorOptions) {
    super(message, options);
  }
}

const MAX_REDIRECTS = 10;
const SHA256 = /^[0-9a-f]{64}$/;

/** Hugging Face states an LFS file's sha256 as `X-Linked-Etag: "<hex>"` on the resolve redirect. */
function statedSha256(h: Headers): string | undefined {
  const v = (h.get('x-linked-etag') ?? '').replace(/^W\//, '').replace(/"/g, '').toLowerCase();
  return SHA256.test(v) ? v : undefined;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function hashFile(hash: Hash, path: string): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 22 })) hash.update(chunk as Buffer);
}

async function writeFully(fh: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.byteLength) {
    const { bytesWritten } = await fh.write(chunk, off, chunk.byteLength - off);
    off += bytesWritten;
  }
}

const describeStatus = (r: Response) => `HTTP ${r.status}${r.statusText ? ` ${r.statusText}` : ''}`;

/**
 * Follows redirects by hand: to read Hugging Face's hash off the first response, and to decide
 * which request carries the Authorization header (only the original origin's).
 */
async function request(req: DownloadRequest, range: number): Promise<{ res: Response; stated?: string; url: string }> {
  const doFetch = req.fetch ?? fetch;
  const origin = new URL(req.url).origin;
  let url = req.url;
  let stated: string | undefined;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'latentkit', 'accept-encoding': 'identity' };
    if (new URL(url).origin === origin) Object.assign(headers, req.headers);
    if (range > 0) headers.range = `bytes=${range}-`;
    let res: Response;
    try {
      res = await doFetch(url, { headers, redirect: 'manual', signal: req.signal });
    } catch (err) {
      if (req.signal?.aborted) throw err;
      throw new DownloadError(`${url}: ${(err as Error).message}${(err as Error).cause ? ` (${((err as Error).cause as Error).message ?? String((err as Error).cause)})` : ''}`, undefined, { cause: err });
    }
    stated ??= statedSha256(res.headers);
    if (res.status >= 300 && res.status < 400 && res.headers.has('location')) {
      await res.body?.cancel();
      url = new URL(res.headers.get('location')!, url).href;
      continue;
    }
    return { res, stated, url };
  }
  throw new DownloadError(`${req.url}: more than ${MAX_REDIRECTS} redirects`);
}

export async function download(req: DownloadRequest): Promise<DownloadResult> {
  let resumedFrom = await fileSize(req.dest);
  let { res, stated, url } = await request(req, resumedFrom);

  if (res.status === 416 && resumedFrom > 0) {
    // Asked past the end: either the part is already whole, or the remote file changed under it.
    const total = Number(/\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1] ?? NaN);
    await res.body?.cancel();
    if (total !== resumedFrom) {
      await rm(req.dest, { force: true });
      resumedFrom = 0;
      ({ res, stated, url } = await request(req, 0));
    }
  }
  if (res.status === 401 || res.status === 403) {
    await res.body?.cancel();
    const hint = req.authHint ? `: ${req.authHint}` : '';
    throw new DownloadError(`${req.url}: ${describeStatus(res)} — the server wants credentials${hint}`);
  }
  if (res.status === 404) {
    await res.body?.cancel();
    throw new DownloadError(`${req.url}: ${describeStatus(res)} — no such file (check the repository, path and revision)`);
  }
  if (res.status !== 200 && res.status !== 206 && res.status !== 416) {
    await res.body?.cancel();
    throw new DownloadError(`${url}: ${describeStatus(res)}`);
  }
  if (/^text\/html/i.test(res.headers.get('content-type') ?? '')) {
    await res.body?.cancel();
    throw new DownloadError(`${req.url}: the server sent a web page, not a model file (is this the page of the model rather than its download link?)`);
  }

  let append = res.status === 206 || res.status === 416;
  let total: number | undefined;
  if (res.status === 206) {
    const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (!m || Number(m[1]) !== resumedFrom) {
      await res.body?.cancel();
      throw new DownloadError(`${url}: the server answered the resume request with the wrong range (${res.headers.get('content-range') ?? 'none'}); delete ${req.dest} to start over`);
    }
    total = m[2] === '*' ? undefined : Number(m[2]);
  } else if (res.status === 200) {
    // The server ignored Range (or there was nothing to resume): start from byte 0.
    append = false;
    resumedFrom = 0;
    const len = res.headers.get('content-length');
    total = len === null ? undefined : Number(len);
  } else {
    total = resumedFrom;
  }

  const hash = createHash('sha256');
  if (append && resumedFrom > 0) await hashFile(hash, req.dest);
  req.onStart?.({ total, resumedFrom: append ? resumedFrom : 0 });
  const fh = await open(req.dest, append ? 'a' : 'w');
  const write = req.write ?? writeFully;
  let done = append ? resumedFrom : 0;
  const start = done;
  try {
    if (res.status !== 416 && res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        await write(fh, chunk);
        hash.update(chunk);
        done += chunk.byteLength;
        req.onProgress?.(done);
      }
    }
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => undefined);
    const kept = await fileSize(req.dest);
    const partial = { path: req.dest, bytes: kept };
    if (req.signal?.aborted) throw new DownloadError(`interrupted: ${kept} bytes kept in ${req.dest}; run the same command to resume`, partial, { cause: err });
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC') throw new DownloadError(`disk full writing ${req.dest}: ${kept} bytes kept; free some space and run the same command to resume`, partial, { cause: err });
    if (code) throw new DownloadError(`cannot write ${req.dest} (${(err as Error).message}); ${kept} bytes kept`, partial, { cause: err });
    throw new DownloadError(`the connection broke after ${kept} bytes (${(err as Error).message}); run the same command to resume`, partial, { cause: err });
  }
  await fh.close();
  if (total !== undefined && done !== total) {
    throw new DownloadError(`the connection closed after ${done} of ${total} bytes; run the same command to resume`, { path: req.dest, bytes: done });
  }
  const sha256 = hash.digest('hex');
  const expected = req.expectedSha256?.toLowerCase() ?? stated;
  if (expected && expected !== sha256) {
    await rm(req.dest, { force: true });
    throw new DownloadError(`sha256 mismatch for ${req.url}: the source states ${expected}, the download is ${sha256}; the download was deleted`);
  }
  return { sha256, expectedSha256: expected, size: done, received: done - start, resumedFrom: start };
}
