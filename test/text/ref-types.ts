// Shapes of the text reference vectors (../shared/ref/text/README.md).
export type RefError = { error: string; message: string };
export type RefNumber = number | string;
export interface RefChunks { token_count: number; chunks: { tokens: number[]; multipliers: number[] }[] }
export interface A1111Case {
  prompt: string;
  attention: [string, RefNumber][] | RefError;
  schedules: Record<string, [number, string][]>;
  schedules_hires: { base20_hires10: [number, string][]; old_scheduling_20: [number, string][] };
  multicond: { indexes: [number, number][]; flat: string[] };
  extra_networks: { prompt: string; networks: Record<string, string[][]> };
  chunks: { backtrack20: RefChunks | RefError; backtrack0: RefChunks | RefError };
  pipeline_steps20: unknown;
}
export interface ComfyCase {
  prompt: string;
  escaped: string;
  parse_parentheses: string[];
  token_weights: [string, RefNumber][];
  segments: [string, RefNumber][];
  tokenize_with_weights: [number, RefNumber, number][][];
}
export interface TokenizerCase { text: string; ids: number[] }
export interface EmphasisCase { dtype: string; z: number[][][]; multipliers: number[]; outputs: Record<string, number[][][]> }
export interface ComfyWeightingCase { token_weight_pairs: [number, number][][]; empty_tokens: number[]; output: number[][][] }
