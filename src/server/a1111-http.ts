// A1111's answers outside the request models: the bodies of its exception handler (HTTPException and
// any other exception), and base64 images as its `decode_base64_to_image` takes them.
import { imageHeader } from '../workflow/files.js';

/** An error the A1111 routes answer with `{error, detail, body, errors}` (or a bare `{detail}` for 413). */
export class A1111Error extends Error {
  constructor(readonly status: number, message: string, readonly errorName = 'HTTPException') {
    super(message);
    this.name = 'A1111Error';
  }
}

/** `raise HTTPException(status, detail)`. */
export function httpException(status: number, detail: string): A1111Error {
  return new A1111Error(status, detail);
}

/** Any other exception: A1111 reports its class and message with status 500. */
export function runtimeError(message: string, errorName = 'RuntimeError'): A1111Error {
  return new A1111Error(500, message, errorName);
}

/** The JSON body A1111's exception handler writes. */
export function errorBody(err: unknown): { status: number; body: Record<string, unknown> } {
  if (err instanceof A1111Error) {
    if (err.status === 413) return { status: 413, body: { detail: err.message } };
    if (err.errorName === 'HTTPException') {
      return { status: err.status, body: { error: 'HTTPException', detail: err.message, body: '', errors: `${err.status}: ${err.message}` } };
    }
    return { status: err.status, body: { error: err.errorName, detail: '', body: '', errors: err.message } };
  }
  const e = err as Error;
  return { status: 500, body: { error: e?.name ?? 'Error', detail: '', body: '', errors: e?.message ?? String(err) } };
}

/** Largest base64 image string accepted (latentkit's limit; A1111 has none). */
export const MAX_IMAGE_BASE64 = 32 * 1024 * 1024;

const DATA_URL = /^data:[^;,]*;base64,/i;

/**
 * A base64 image (bare or a `data:…;base64,` URL) as bytes, checked to be a readable image within the
 * pixel limit. URLs are refused: this server makes no outbound requests.
 */
export async function decodeImage(value: unknown, maxPixels: number, maxChars = MAX_IMAGE_BASE64): Promise<Buffer> {
  if (typeof value !== 'string') throw httpException(500, 'Invalid encoded image');
  if (/^https?:\/\//i.test(value)) throw httpException(500, 'Requests not allowed');
  if (value.length > maxChars) throw new A1111Error(413, `image of ${value.length} base64 characters is larger than the limit of ${maxChars}`);
  const text = value.replace(DATA_URL, '');
  const bytes = Buffer.from(text, 'base64');
  try {
    await imageHeader(bytes, maxPixels);
  } catch {
    throw httpException(500, 'Invalid encoded image');
  }
  return bytes;
}
