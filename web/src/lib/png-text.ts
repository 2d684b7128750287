// The text chunks of a PNG in the browser (tEXt and uncompressed iTXt — what ComfyUI, A1111 and
// latentkit write): `workflow` / `prompt` from ComfyUI-style files, `parameters` from A1111-style ones.

const SIG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function pngTextChunks(bytes: Uint8Array): Record<string, string> {
  if (bytes.length < 8 || SIG.some((b, i) => bytes[i] !== b)) throw new Error('not a PNG file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8');
  const out: Record<string, string> = {};
  for (let p = 8; p + 8 <= bytes.length;) {
    const len = view.getUint32(p);
    const type = latin1.decode(bytes.subarray(p + 4, p + 8));
    const data = bytes.subarray(p + 8, Math.min(bytes.length, p + 8 + len));
    if (type === 'tEXt') {
      const z = data.indexOf(0);
      if (z > 0) out[latin1.decode(data.subarray(0, z))] = latin1.decode(data.subarray(z + 1));
    } else if (type === 'iTXt') {
      // keyword \0 compressed-flag method language \0 translated \0 text
      const z = data.indexOf(0);
      if (z > 0 && data[z + 1] === 0) {
        const lang = data.indexOf(0, z + 3);
        const trans = lang < 0 ? -1 : data.indexOf(0, lang + 1);
        if (trans >= 0) out[latin1.decode(data.subarray(0, z))] = utf8.decode(data.subarray(trans + 1));
      }
    } else if (type === 'IEND') break;
    p += 12 + len;
  }
  return out;
}
