// A1111's "infotext": the `parameters` PNG chunk that A1111, ComfyUI plugins, Civitai and others read.
// Layout: the prompt, then "Negative prompt: …" when there is one, then one line of "Key: value" pairs.

export type InfoValue = string | number | undefined;

/** Values containing a comma, colon or quote are written as JSON strings, as A1111's `quote()` does. */
function quote(v: string): string {
  return /[,:\n"]/.test(v) ? JSON.stringify(v) : v;
}

export function formatParameters(prompt: string, negativePrompt: string, fields: ReadonlyArray<readonly [string, InfoValue]>): string {
  const pairs = fields
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}: ${typeof v === 'number' ? String(v) : quote(v as string)}`);
  const lines = [prompt];
  if (negativePrompt) lines.push(`Negative prompt: ${negativePrompt}`);
  lines.push(pairs.join(', '));
  return lines.join('\n');
}

export interface ParsedParameters {
  prompt: string;
  negativePrompt: string;
  fields: Record<string, string>;
}

/** Reads infotext back: the last line holding `Steps:` carries the settings, earlier lines the prompts. */
export function parseParameters(text: string): ParsedParameters {
  const lines = text.trim().split('\n');
  let settings = '';
  if (lines.length && /(^|, )Steps: /.test(lines[lines.length - 1])) settings = lines.pop() as string;
  let prompt = '';
  let negative = '';
  let inNegative = false;
  for (const line of lines) {
    if (line.startsWith('Negative prompt:')) {
      inNegative = true;
      negative = line.slice('Negative prompt:'.length).trim();
    } else if (inNegative) negative += `\n${line}`;
    else prompt += (prompt ? '\n' : '') + line;
  }
  const fields: Record<string, string> = {};
  // key: value, where value is a JSON string or runs to the next ", "
  const re = /\s*([\w ./+-]+):\s*("(?:\\.|[^\\"])*"|[^,]*)(?:,|$)/g;
  for (const m of settings.matchAll(re)) {
    const raw = m[2].trim();
    fields[m[1].trim()] = raw.startsWith('"') ? JSON.parse(raw) : raw;
  }
  return { prompt, negativePrompt: negative, fields };
}
