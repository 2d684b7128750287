import { test } from 'node:test';
import assert from 'node:assert/strict';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { readPngText, withPngText } from './png-text.js';

async function tinyPng(): Promise<Buffer> {
  return sharp({ create: { width: 3, height: 2, channels: 3, background: '#336699' } }).png().toBuffer();
}

test('text chunks round-trip (latin-1 as tEXt, other text as iTXt) and the image still decodes', async () => {
  const png = withPngText(await tinyPng(), { parameters: 'a cat\nSteps: 20, Seed: 1', comment: 'naïve — 日本語' });
  assert.deepEqual(readPngText(png), { parameters: 'a cat\nSteps: 20, Seed: 1', comment: 'naïve — 日本語' });
  const raw = await sharp(png).raw().toBuffer();
  assert.equal(raw.length, 18);
  assert.deepEqual([...raw.subarray(0, 3)], [0x33, 0x66, 0x99]);
  // replacing a key keeps one copy
  const again = withPngText(png, { parameters: 'new' });
  assert.equal(readPngText(again).parameters, 'new');
  assert.equal(again.toString('latin1').split('parameters').length - 1, 1);
});

test('zTXt chunks written by other tools are read', async () => {
  const png = await tinyPng();
  const body = Buffer.concat([Buffer.from('parameters\0\0', 'latin1'), deflateSync(Buffer.from('zipped', 'latin1'))]);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length, 0);
  head.write('zTXt', 4, 'latin1');
  const { crc32 } = await import('node:zlib');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), body])) >>> 0);
  const withZ = Buffer.concat([png.subarray(0, 33), head, body, crc, png.subarray(33)]);
  assert.equal(readPngText(withZ).parameters, 'zipped');
});

test('non-PNG and truncated input give one clear error', async () => {
  assert.throws(() => readPngText(Buffer.from('GIF89a'), 'x.gif'), /x\.gif: not a PNG file/);
  const png = await tinyPng();
  assert.throws(() => readPngText(png.subarray(0, 40), 'cut.png'), /cut\.png: truncated PNG/);
});
