// Tokenizers by checkpoint path: building one parses the whole CLIP vocabulary (about a quarter of a
// second on the event loop), which a server would otherwise repeat for every job or graph.
import { ClipTokenizer } from './clip-tokenizer.js';

const tokenizers = new Map<string, Promise<ClipTokenizer>>();

/** The tokenizer found for the model at `modelPath` (model folder, configured path or the package's copy), loaded once. */
export function tokenizerFor(modelPath: string): Promise<ClipTokenizer> {
  let t = tokenizers.get(modelPath);
  if (!t) {
    t = ClipTokenizer.load({ modelPath });
    tokenizers.set(modelPath, t);
    t.catch(() => tokenizers.delete(modelPath));
  }
  return t;
}
