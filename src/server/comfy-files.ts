// ComfyUI's file routes: `/view` (with channel and preview recompression) and the image / mask
// uploads. Every path stays inside its folder; uploads are size- and pixel-limited, must be images,
// and appear under their final name only once complete.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { copyFile, link, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, posix } from 'node:path';
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import sharp from 'sharp';
import { readPngText, withPngText } from '../formats/png-text.js';
import { imageHeader, ImageTooLargeError, parseAnnotatedName, PathError, resolveInside, type FolderType } from '../workflow/files.js';
import { sendError, type ServerContext } from './http.js';

/** Types served with their own Content-Type; anything else (HTML, JS, SVG, …) as a download. */
const CONTENT_TYPES: Record<string, string> = {
  '.png': 'image/png', '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.webp': 'image/webp', '.gif': 'image/gif',
  '.avif': 'image/avif', '.tif': 'image/tiff', '.tiff': 'image/tiff', '.bmp': 'image/bmp', '.json': 'application/json',
  '.mp4': 'video/mp4', '.webm': 'video/webm', '.latent': 'application/octet-stream',
};

/** Formats an upload may have (sharp's names, read from the file header). */
const UPLOAD_FORMATS = new Set(['png', 'jpeg', 'webp', 'gif', 'tiff', 'avif', 'heif']);

function folderOf(type: unknown): FolderType | undefined {
  if (type === undefined || type === '') return undefined;
  return type === 'input' || type === 'output' || type === 'temp' ? type : undefined;
}

/** `Content-Disposition` safe for any name (Node refuses header bytes outside Latin-1). */
function disposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return ascii === name ? `filename="${name}"` : `filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

function pathErrorStatus(err: unknown): number {
  return err instanceof PathError && err.kind === 'outside' ? 403 : 400;
}

interface Staged {
  readonly path: string;
  readonly filename: string;
  readonly sha256: string;
}

interface UploadForm {
  file?: Staged;
  fields: Record<string, string>;
}

/** Streams the multipart body: the (first) file to a staging file, fields as strings. */
async function readForm(req: FastifyRequest, ctx: ServerContext, fileField: string): Promise<UploadForm> {
  const form: UploadForm = { fields: {} };
  await mkdir(ctx.stagingDir, { recursive: true });
  try {
    for await (const part of req.parts({ limits: { fileSize: ctx.maxUploadBytes, files: 4, fields: 32, fieldSize: 1 << 20 } })) {
      if (part.type === 'field') {
        if (typeof part.value === 'string') form.fields[part.fieldname] = part.value;
        continue;
      }
      if (part.fieldname !== fileField || form.file) {
        part.file.resume();
        continue;
      }
      const path = join(ctx.stagingDir, `.lk-part-upload-${randomBytes(6).toString('hex')}`);
      const hash = createHash('sha256');
      const tap = new Transform({ transform(chunk: Buffer, _enc, cb) { hash.update(chunk); cb(null, chunk); } });
      const sink = createWriteStream(path, { flags: 'wx' });
      try {
        await pipeline(part.file, tap, sink);
      } catch (err) {
        // the stream may still be opening the file: remove it only once the stream is done with it
        if (!sink.closed) await once(sink, 'close');
        await rm(path, { force: true });
        throw err;
      }
      form.file = { path, filename: part.filename ?? '', sha256: hash.digest('hex') };
      if (part.file.truncated) throw Object.assign(new Error('file too large'), { statusCode: 413 });
    }
  } catch (err) {
    // a limit can trip after the file part ended (multipart reports it on the next part)
    if (form.file) await rm(form.file.path, { force: true });
    throw err;
  }
  return form;
}

async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

/**
 * Moves the staged file to `dir/name` following ComfyUI's upload rule: overwrite when asked; else the
 * same bytes under the same name are reused, different bytes get `name (1).ext`, `name (2).ext`, ….
 * The final name appears only once its bytes are complete (link or rename of a full file).
 */
async function placeUpload(stagedPath: string, sha256: string, dir: string, name: string, overwrite: boolean): Promise<string> {
  await mkdir(dir, { recursive: true });
  // a copy on the target filesystem first, so the last step is an atomic link/rename there
  const local = join(dir, `.lk-part-${randomBytes(6).toString('hex')}-upload`);
  await copyFile(stagedPath, local);
  try {
    if (overwrite) {
      await rename(local, join(dir, name));
      return name;
    }
    const ext = extname(name);
    const stem = name.slice(0, name.length - ext.length);
    for (let i = 0; ; i++) {
      const candidate = i === 0 ? name : `${stem} (${i})${ext}`;
      const target = join(dir, candidate);
      if (existsSync(target)) {
        if ((await stat(target)).isFile() && await fileSha256(target) === sha256) return candidate;
        continue;
      }
      try {
        await link(local, target);
        return candidate;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
  } finally {
    await rm(local, { force: true });
  }
}

export function comfyFiles(ctx: ServerContext) {
  const { host } = ctx;
  const folders = host.folders;

  /** The checks shared by both uploads; answers the error itself and returns undefined on failure. */
  async function upload(req: FastifyRequest, reply: FastifyReply, makeBytes?: (form: UploadForm, staged: Staged) => Promise<Buffer | FastifyReply>): Promise<unknown> {
    if (!req.isMultipart()) return sendError(reply, 400, 'expected multipart/form-data with an "image" file');
    let form: UploadForm;
    try {
      form = await readForm(req, ctx, 'image');
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      if (status === 413) return sendError(reply, 413, `upload larger than the limit of ${ctx.maxUploadBytes} bytes`);
      return sendError(reply, status && status >= 400 && status < 500 ? status : 400, `malformed upload: ${(err as Error).message}`);
    }
    const staged = form.file;
    try {
      if (!staged) return sendError(reply, 400, 'no "image" file in the upload');
      if (!staged.filename) return sendError(reply, 400, 'the uploaded file has no file name');
      const type = form.fields.type === undefined || form.fields.type === '' ? 'input' : folderOf(form.fields.type);
      if (!type) return sendError(reply, 400, `type must be input, output or temp, not '${form.fields.type}'`);
      const subfolder = form.fields.subfolder ?? '';
      let target: string;
      try {
        target = resolveInside(folders[type], posix.join(subfolder.replace(/\\/g, '/'), staged.filename.replace(/\\/g, '/')));
      } catch (err) {
        return sendError(reply, 400, (err as Error).message);
      }
      try {
        const head = await imageHeader(staged.path, host.maxPixels);
        if (!UPLOAD_FORMATS.has(head.format)) return sendError(reply, 415, `${staged.filename}: ${head.format} files are not accepted (images only)`);
      } catch (err) {
        if (err instanceof ImageTooLargeError) return sendError(reply, 413, `${staged.filename}: ${err.message}`);
        return sendError(reply, 415, `${staged.filename}: ${(err as Error).message}`);
      }
      let source = staged;
      if (makeBytes) {
        const made = await makeBytes(form, staged);
        if (!Buffer.isBuffer(made)) return made;
        const path = `${staged.path}-made`;
        await writeFile(path, made, { flag: 'wx' });
        source = { path, filename: staged.filename, sha256: createHash('sha256').update(made).digest('hex') };
      }
      try {
        const overwrite = form.fields.overwrite === 'true' || form.fields.overwrite === '1';
        const name = await placeUpload(source.path, source.sha256, dirname(target), basename(target), overwrite);
        host.invalidate();
        // the answer's name carries any directory part of the uploaded file name, as ComfyUI's does
        const nameDir = posix.dirname(staged.filename.replace(/\\/g, '/'));
        return { name: nameDir === '.' ? name : `${nameDir}/${name}`, subfolder, type };
      } finally {
        if (source !== staged) await rm(source.path, { force: true });
      }
    } finally {
      if (staged) await rm(staged.path, { force: true });
    }
  }

  /** `/upload/mask`: the upload's alpha copied into the referenced image (RGBA), saved like an upload. */
  async function maskBytes(reply: FastifyReply, form: UploadForm, staged: Staged): Promise<Buffer | FastifyReply> {
    const refText = form.fields.original_ref;
    if (refText === undefined) return sendError(reply, 400, 'original_ref (a JSON object naming the image to mask) is missing');
    let ref: { filename?: unknown; subfolder?: unknown; type?: unknown };
    try {
      ref = JSON.parse(refText) as typeof ref;
    } catch {
      return sendError(reply, 400, 'original_ref is not valid JSON');
    }
    if (typeof ref !== 'object' || ref === null || typeof ref.filename !== 'string' || ref.filename === '') return sendError(reply, 400, 'original_ref.filename is missing');
    const { name: refName, type: annotated } = parseAnnotatedName(ref.filename);
    const refType = annotated ?? folderOf(ref.type ?? 'input');
    if (!refType) return sendError(reply, 400, `original_ref.type must be input, output or temp`);
    if (refName.startsWith('/') || refName.includes('..')) return sendError(reply, 400, `original_ref.filename '${ref.filename}' is not allowed`);
    let originalPath: string;
    try {
      originalPath = resolveInside(folders[refType], posix.join(typeof ref.subfolder === 'string' ? ref.subfolder : '', refName));
    } catch (err) {
      return sendError(reply, pathErrorStatus(err), (err as Error).message);
    }
    if (!existsSync(originalPath)) return sendError(reply, 404, `original_ref: ${ref.filename} not found`);
    try {
      const orig = await imageHeader(originalPath, host.maxPixels);
      const rgb = await sharp(originalPath).rotate().removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const alpha = await sharp(staged.path).ensureAlpha().extractChannel(3).resize(rgb.info.width, rgb.info.height, { fit: 'fill' }).raw().toBuffer();
      let png: Buffer = await sharp(rgb.data, { raw: { width: rgb.info.width, height: rgb.info.height, channels: 3 } }).joinChannel(alpha, { raw: { width: rgb.info.width, height: rgb.info.height, channels: 1 } }).png().toBuffer();
      if (orig.format === 'png') {
        // keep the original's text chunks (its workflow) as ComfyUI does
        const text = readPngText(await readFile(originalPath));
        if (Object.keys(text).length) png = withPngText(png, text);
      }
      return png;
    } catch (err) {
      if (err instanceof ImageTooLargeError) return sendError(reply, 413, err.message);
      return sendError(reply, 400, `cannot apply the mask: ${(err as Error).message}`);
    }
  }

  return async function plugin(app: FastifyInstance): Promise<void> {
    app.get<{ Querystring: Record<string, string | undefined> }>('/view', async (req, reply) => {
      const q = req.query;
      if (q.filename === undefined) return sendError(reply, 404, 'filename is missing');
      const { name, type: annotated } = parseAnnotatedName(q.filename);
      if (name === '' || name.startsWith('/') || name.includes('..')) return sendError(reply, 400, `filename '${q.filename}' is not allowed`);
      const type = annotated ?? (q.type === undefined || q.type === '' ? 'output' : folderOf(q.type));
      if (!type) return sendError(reply, 400, `type must be output, input or temp, not '${q.type}'`);
      const file = basename(name.replace(/\\/g, '/'));
      let path: string;
      try {
        path = resolveInside(folders[type], posix.join((q.subfolder ?? '').replace(/\\/g, '/'), file));
      } catch (err) {
        return sendError(reply, pathErrorStatus(err), (err as Error).message);
      }
      let info;
      try {
        info = await stat(path);
      } catch {
        return sendError(reply, 404, `${file}: not found`);
      }
      if (!info.isFile()) return sendError(reply, 404, `${file}: not found`);
      const channel = q.channel ?? 'rgba';
      reply.header('X-Content-Type-Options', 'nosniff');
      if (q.preview !== undefined || channel === 'rgb' || channel === 'a') {
        try {
          await imageHeader(path, host.maxPixels);
        } catch (err) {
          return sendError(reply, err instanceof ImageTooLargeError ? 413 : 415, `${file}: ${(err as Error).message}`);
        }
        let img = sharp(path, { limitInputPixels: host.maxPixels });
        if (q.preview !== undefined) {
          const parts = q.preview.split(';');
          let format = parts[0];
          if ((format !== 'webp' && format !== 'jpeg') || (q.channel ?? '').includes('a')) format = 'webp';
          const last = parts[parts.length - 1];
          const quality = /^\d+$/.test(last) ? Math.min(100, Math.max(1, Number(last))) : 90;
          if (format === 'jpeg' || channel === 'rgb') img = img.removeAlpha();
          const body = format === 'jpeg' ? await img.jpeg({ quality }).toBuffer() : await img.webp({ quality }).toBuffer();
          return reply.type(`image/${format}`).header('Content-Disposition', disposition(file)).send(body);
        }
        if (channel === 'rgb') {
          return reply.type('image/png').header('Content-Disposition', disposition(file)).send(await img.removeAlpha().png().toBuffer());
        }
        // channel a: black colour with the file's alpha (opaque when it has none)
        const { data, info: meta } = await img.ensureAlpha().extractChannel(3).raw().toBuffer({ resolveWithObject: true });
        const black = Buffer.alloc(meta.width * meta.height * 3);
        const body = await sharp(black, { raw: { width: meta.width, height: meta.height, channels: 3 } })
          .joinChannel(data, { raw: { width: meta.width, height: meta.height, channels: 1 } }).png().toBuffer();
        return reply.type('image/png').header('Content-Disposition', disposition(file)).send(body);
      }
      reply.type(CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream').header('Content-Disposition', disposition(file));
      return reply.send(createReadStream(path));
    });

    app.post('/upload/image', async (req, reply) => upload(req, reply));
    app.post('/upload/mask', async (req, reply) => upload(req, reply, (form, staged) => maskBytes(reply, form, staged)));
  };
}
