// Request checks shared by the HTTP routes and the websocket upgrade: the optional bearer token and
// ComfyUI's Origin rule against cross-site requests to a loopback server.
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** `Authorization: Bearer T` or `?token=T`, compared in constant time. */
export function tokenAccepted(expected: string, headers: IncomingHttpHeaders, url: string): boolean {
  const auth = headers.authorization;
  const fromHeader = typeof auth === 'string' && /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, '').trim() : undefined;
  let fromQuery: string | null;
  try {
    fromQuery = new URL(url, 'http://x').searchParams.get('token');
  } catch {
    fromQuery = null;
  }
  const want = Buffer.from(expected);
  for (const got of [fromHeader, fromQuery]) {
    if (got === undefined || got === null) continue;
    const b = Buffer.from(got);
    if (b.length === want.length && timingSafeEqual(b, want)) return true;
  }
  return false;
}

const LOOPBACK = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\]|::1)$/i;

function hostPort(hostHeader: string, defaultPort: string): { host: string; port: string } | undefined {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(hostHeader.trim().toLowerCase());
  return m ? { host: m[1], port: m[2] ?? defaultPort } : undefined;
}

/**
 * ComfyUI's `origin_only_middleware`: a request carrying both `Host` and `Origin`, to a loopback host,
 * from an origin whose host:port differs, is refused (a web page trying to drive a local server).
 * Returns the reason, or undefined when the request may pass.
 */
export function originRefused(headers: IncomingHttpHeaders): string | undefined {
  const origin = headers.origin;
  const host = headers.host;
  if (typeof origin !== 'string' || typeof host !== 'string') return undefined;
  const h = hostPort(host, '80');
  if (!h || !LOOPBACK.test(h.host)) return undefined;
  let o: URL;
  try {
    o = new URL(origin);
  } catch {
    return `Origin '${origin}' is not a URL`;
  }
  const oPort = o.port || (o.protocol === 'https:' ? '443' : '80');
  // URL keeps IPv6 brackets in hostname, as the Host header does
  if (o.hostname.toLowerCase() !== h.host || oPort !== h.port) return `Origin ${origin} does not match Host ${host}`;
  return undefined;
}
