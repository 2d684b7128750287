// A1111's prompt token counter ("42/75"): the longest prompt among the AND parts and the scheduled
// variants, extra-network tags removed, against the next multiple of 75. Shared by `latentkit prompt`
// and the web UI's counter route so both print the same number.
import { chunkA1111 } from './chunking.js';
import type { ClipTokenizer } from './clip-tokenizer.js';
import { parseExtraNetworks } from './extra-networks.js';
import { promptSchedule, splitAnd } from './prompt-a1111.js';

export interface TokenCount { count: number; max: number }

export function countTokens(tokenizer: ClipTokenizer, text: string, steps = 20): TokenCount {
  const { prompt: cleaned } = parseExtraNetworks(text);
  const { flat } = splitAnd(cleaned);
  let count = 0;
  for (const p of flat) for (const [, t] of promptSchedule(p, steps)) count = Math.max(count, chunkA1111(tokenizer, t).tokenCount);
  return { count, max: Math.max(1, Math.ceil(count / 75)) * 75 };
}
