// The workflow engine's contracts: node declarations (what `/object_info` shows), the context a node
// runs in, and the host services the server supplies (folders, image files, models). Everything here is
// plain data or interfaces so the server, the CLI and tests can provide their own implementations.
import type { ResourceCache } from './resource-cache.js';

/** Options of a widget input, as ComfyUI's `/object_info` prints them (keys kept in ComfyUI's spelling). */
export interface InputOptions {
  readonly default?: unknown;
  readonly min?: number;
  readonly max?: number;
  readonly step?: number;
  readonly round?: number | false;
  readonly tooltip?: string;
  readonly multiline?: boolean;
  readonly dynamicPrompts?: boolean;
  readonly control_after_generate?: boolean;
  readonly image_upload?: boolean;
  /** Values of a newer-API `COMBO` input (a file-list source is resolved when listed). */
  readonly options?: readonly string[] | FileListSource;
  readonly [key: string]: unknown;
}

/**
 * Where a combo's values come from when they are not fixed: the files of a model folder (or the input
 * folder), listed when `/object_info` is asked and when a prompt is validated.
 */
export interface FileListSource {
  readonly files: FolderName;
}

/** ComfyUI's folder names (`/models/{folder}`), plus the input folder of uploaded images. */
export type FolderName =
  | 'checkpoints' | 'configs' | 'loras' | 'vae' | 'embeddings' | 'hypernetworks' | 'upscale_models'
  | 'controlnet' | 'clip' | 'unet' | 'diffusion_models' | 'text_encoders' | 'clip_vision' | 'input'
  /** `.latent` files at the top of the input folder (LoadLatent). */
  | 'input_latents';

/**
 * An input declaration: `[type, options]` where type is a type name (`INT`, `MODEL`, …, `COMBO`), a
 * fixed list of values (a classic combo) or a file-list source resolved to a classic combo.
 */
export type InputSpec = readonly [string | readonly string[] | FileListSource, InputOptions?];

export interface NodeInputs {
  readonly required?: Readonly<Record<string, InputSpec>>;
  readonly optional?: Readonly<Record<string, InputSpec>>;
  /** Hidden inputs the server fills (`PROMPT`, `EXTRA_PNGINFO`, `UNIQUE_ID`). */
  readonly hidden?: Readonly<Record<string, string>>;
}

/** What a node function returns: one value per declared output, and optionally a UI dict (history `outputs`). */
export interface NodeResult {
  readonly outputs: readonly unknown[];
  readonly ui?: Readonly<Record<string, unknown>>;
}

export interface NodeDef {
  /** The class_type. */
  readonly name: string;
  readonly displayName: string | null;
  readonly description: string;
  readonly category: string;
  readonly pythonModule?: string;
  readonly input: NodeInputs;
  readonly output: readonly string[];
  readonly outputName?: readonly string[];
  readonly outputIsList?: readonly boolean[];
  readonly outputTooltips?: readonly (string | null)[];
  readonly outputNode?: boolean;
  readonly deprecated?: boolean;
  readonly experimental?: boolean;
  /** Keys of the newer node API that ComfyUI prints for some nodes (`api_node` and friends). */
  readonly newApi?: boolean;
  /** Runs the node on validated inputs (links resolved to the upstream outputs). */
  run(inputs: Record<string, unknown>, ctx: NodeContext): Promise<NodeResult>;
  /**
   * ComfyUI's IS_CHANGED: a token added to the cache key (file readers return the file's hash, so a
   * replaced file re-runs the node and everything downstream).
   */
  changed?(inputs: Record<string, unknown>, host: EngineHost): Promise<string> | string;
  /**
   * ComfyUI's VALIDATE_INPUTS: the named inputs skip the range and list checks and are checked here
   * instead (LoadImage checks that its file exists). `check` returns an error text, or nothing.
   */
  readonly validateInputs?: {
    readonly inputs: readonly string[];
    check(inputs: Record<string, unknown>, host: EngineHost): Promise<string | undefined> | string | undefined;
  };
}

/** An image batch flowing between nodes (ComfyUI's IMAGE): [B, H, W, C] floats 0..1, C = 3 (or 4). */
export interface ImageBatch {
  readonly data: Float32Array;
  readonly batch: number;
  readonly height: number;
  readonly width: number;
  readonly channels: number;
}

/** A mask (ComfyUI's MASK): [B, H, W] floats 0..1. */
export interface MaskBatch {
  readonly data: Float32Array;
  readonly batch: number;
  readonly height: number;
  readonly width: number;
}

/** One saved file as history and `executed` report it. */
export interface SavedFile {
  readonly filename: string;
  readonly subfolder: string;
  readonly type: 'output' | 'temp' | 'input';
}

export interface SaveImagesRequest {
  readonly images: ImageBatch;
  /** `filename_prefix` as the node received it (placeholders such as `%width%` not yet replaced). */
  readonly prefix: string;
  readonly type: 'output' | 'temp';
  /** tEXt chunks: `prompt` (the graph as run) and one per `extra_pnginfo` key; JSON written as Python writes it. */
  readonly pngInfo?: Readonly<Record<string, unknown>>;
  /** zlib level (ComfyUI: 4 for SaveImage, 1 for PreviewImage). */
  readonly compressLevel?: number;
}

export interface SaveFileRequest {
  /** `filename_prefix` as the node received it. */
  readonly prefix: string;
  /** Without the dot (`latent`). */
  readonly extension: string;
  readonly data: Uint8Array;
  readonly type?: 'output';
}

/**
 * What the engine needs from whoever runs it: folders, model files and image storage. The server
 * implements it over its `--models/--input/--output` folders; tests may implement it over a temp dir.
 */
export interface EngineHost {
  /** Files of a folder, relative with `/` separators, sorted (combo lists). */
  listFiles(folder: FolderName): string[];
  /** The existing directories of a folder kind (embeddings are searched there by name). */
  folderPaths(folder: FolderName): string[];
  /** The absolute path of a listed file, or an error naming the folder when there is none. */
  resolveFile(folder: FolderName, name: string): string;
  /** Reads an image by its LoadImage name (`x.png`, `sub/x.png`, `x.png [output]`); throws a clear error. */
  readImage(name: string): Promise<{ image: ImageBatch; alpha?: Float32Array }>;
  /** Writes images as ComfyUI names them (prefix, subfolder, `_00001_` counter), atomically. */
  saveImages(req: SaveImagesRequest): Promise<SavedFile[]>;
  /** Writes one file (SaveLatent) named as outputs are named, atomically, never overwriting. */
  saveFile(req: SaveFileRequest): Promise<SavedFile>;
}

/** Messages a running prompt emits (ComfyUI websocket names and payloads, minus `prompt_id`, which the engine adds). */
export interface ExecutionSink {
  /** A JSON message (`executing`, `progress`, `executed`, `execution_cached`, `progress_state`, …). */
  send(type: string, data: Record<string, unknown>): void;
  /** A preview image of the node's current sampling step (JPEG bytes), when previews are on. */
  preview?(nodeId: string, jpeg: Buffer): void;
}

/** Handed to a node's `run`. */
export interface NodeContext {
  readonly host: EngineHost;
  /** Models kept loaded between prompts (keyed by file and options, sized by bytes). */
  readonly resources: ResourceCache;
  readonly nodeId: string;
  readonly promptId: string;
  /** The validated API graph as it runs (SaveImage stores it in the `prompt` chunk). */
  readonly prompt: Readonly<Record<string, unknown>>;
  /** `extra_data.extra_pnginfo` of the request. */
  readonly extraPngInfo?: Readonly<Record<string, unknown>>;
  /** Reports progress of a long node (sampler steps, tiles). */
  progress(value: number, max: number): void;
  /** A preview of the current latent, when previews are on (the engine encodes and forwards it). */
  preview?(rgb: Uint8Array, width: number, height: number): Promise<void>;
  /** Throws `InterruptedError` once `/interrupt` has been asked; nodes call it between steps. */
  checkInterrupted(): void;
  /** Whether latent previews are wanted (so the sampler need not decode them otherwise). */
  readonly previews: 'none' | 'latent2rgb' | 'taesd';
}

export class InterruptedError extends Error {
  constructor() {
    super('Processing interrupted');
    this.name = 'InterruptedError';
  }
}

// ---------------------------------------------------------------- prompts, validation and results

/** A prompt in ComfyUI's API format: node id → `{class_type, inputs, _meta?}`. */
export type ApiPrompt = Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: unknown }>;

export interface PromptError {
  readonly type: string;
  readonly message: string;
  readonly details: string;
  readonly extra_info: Record<string, unknown>;
}

export interface NodeErrors {
  readonly errors: PromptError[];
  readonly dependent_outputs: string[];
  readonly class_type: string;
}

export type ValidationResult =
  | { readonly ok: true; readonly prompt: ApiPrompt; readonly outputs: string[]; readonly nodeErrors: Record<string, NodeErrors> }
  | { readonly ok: false; readonly error: PromptError; readonly nodeErrors: Record<string, NodeErrors> };

export interface ExecutionJob {
  readonly promptId: string;
  /** The validated prompt (ValidationResult.prompt). */
  readonly prompt: ApiPrompt;
  /** Output node ids to run (ValidationResult.outputs). */
  readonly outputs: readonly string[];
  readonly extraData?: Readonly<Record<string, unknown>>;
}

export interface ExecutionResult {
  readonly status: 'success' | 'error' | 'interrupted';
  /** UI dicts of output nodes (history `outputs`). */
  readonly outputs: Record<string, Record<string, unknown>>;
  /** `[event, data]` of execution_start / execution_cached / execution_success|error|interrupted. */
  readonly messages: [string, Record<string, unknown>][];
  /** History `meta`: per output node `{node_id, display_node, parent_node, real_node_id}`. */
  readonly meta: Record<string, Record<string, unknown>>;
}
