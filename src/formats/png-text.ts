// PNG text chunks: the `parameters` chunk A1111 writes and every SD image tool reads back.
import { crc32, inflateSync } from 'node:zlib';

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

/** Latin-1 text goes in tEXt, anything else in an uncompressed UTF-8 iTXt — what PIL (and so A1111) does. */
function textChunk(key: string, value: string): Buffer {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\xff]*$/.test(value)) return chunk('tEXt', Buffer.concat([Buffer.from(key, 'latin1'), Buffer.from([0]), Buffer.from(value, 'latin1')]));
  return chunk('iTXt', Buffer.concat([Buffer.from(key, 'latin1'), Buffer.from([0, 0, 0, 0, 0]), Buffer.from(value, 'utf8')]));
}

interface RawChunk { type: string; start: number; end: number; data: Buffer }

function chunks(png: Buffer, what: string): RawChunk[] {
  if (png.length < 8 || !png.subarray(0, 8).equals(SIGNATURE)) throw new Error(`${what}: not a PNG file`);
  const out: RawChunk[] = [];
  let pos = 8;
  while (pos + 12 <= png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.toString('latin1', pos + 4, pos + 8);
    if (pos + 12 + len > png.length) throw new Error(`${what}: truncated PNG (chunk ${type} runs past the end)`);
    out.push({ type, start: pos, end: pos + 12 + len, data: png.subarray(pos + 8, pos + 8 + len) });
    pos += 12 + len;
    if (type === 'IEND') return out;
  }
  throw new Error(`${what}: truncated PNG (no IEND chunk)`);
}

/** Inserts text chunks right after IHDR, replacing existing chunks with the same keys. */
export function withPngText(png: Buffer, entries: Readonly<Record<string, string>>): Buffer {
  const list = chunks(png, 'image');
  if (list[0]?.type !== 'IHDR') throw new Error('image: PNG without IHDR');
  const keys = new Set(Object.keys(entries));
  const keep = list.filter((c) => !((c.type === 'tEXt' || c.type === 'iTXt' || c.type === 'zTXt') && keys.has(c.data.toString('latin1', 0, Math.max(0, c.data.indexOf(0))))));
  const parts: Buffer[] = [SIGNATURE, png.subarray(keep[0].start, keep[0].end)];
  for (const [k, v] of Object.entries(entries)) parts.push(textChunk(k, v));
  for (const c of keep.slice(1)) parts.push(png.subarray(c.start, c.end));
  return Buffer.concat(parts);
}

/** Every tEXt / zTXt / iTXt entry of a PNG. */
export function readPngText(png: Buffer, what = 'image'): Record<string, string> {
  const out: Record<string, string> = {};
  for (const c of chunks(png, what)) {
    const nul = c.data.indexOf(0);
    if (nul < 0) continue;
    const key = c.data.toString('latin1', 0, nul);
    try {
      if (c.type === 'tEXt') out[key] = c.data.toString('latin1', nul + 1);
      else if (c.type === 'zTXt') out[key] = inflateSync(c.data.subarray(nul + 2)).toString('latin1');
      else if (c.type === 'iTXt') {
        const compressed = c.data[nul + 1] === 1;
        let p = nul + 3;
        p = c.data.indexOf(0, p) + 1; // language tag
        p = c.data.indexOf(0, p) + 1; // translated keyword
        const body = c.data.subarray(p);
        out[key] = (compressed ? inflateSync(body) : body).toString('utf8');
      }
    } catch {
      throw new Error(`${what}: PNG text chunk '${key}' is corrupt`);
    }
  }
  return out;
}
