// The workflow engine: validates ComfyUI API-format prompts against the node registry and runs them
// with ComfyUI's semantics (only what outputs need, outputs cached across prompts, interrupts between
// steps). The server owns queueing, storage and routing of the messages; the engine owns the graph.
import type { EngineHost, ExecutionSink, NodeDef } from './types.js';

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

export interface EngineOptions {
  readonly host: EngineHost;
  /** Node classes; defaults to every built-in node. */
  readonly nodes?: readonly NodeDef[];
  readonly previewMethod?: 'none' | 'latent2rgb' | 'taesd';
}

export declare class WorkflowEngine {
  constructor(opts: EngineOptions);
  /** `GET /object_info`. */
  objectInfo(): Record<string, unknown>;
  /** `GET /object_info/{class}`: `{class: info}`, or `{}` for an unknown class. */
  objectInfoFor(classType: string): Record<string, unknown>;
  /** Validates a `POST /prompt` body's `prompt` (any JSON value) as ComfyUI does. */
  validate(prompt: unknown, partialTargets?: readonly string[]): Promise<ValidationResult>;
  /** Runs one prompt; sends its messages (with `prompt_id`) to the sink; never throws for node errors. */
  execute(job: ExecutionJob, sink: ExecutionSink): Promise<ExecutionResult>;
  /** `POST /interrupt`: stops the running prompt at the next step boundary (no-op when idle). */
  interrupt(): void;
  /** The node the running prompt is executing, or null. */
  readonly currentNode: string | null;
  /** `POST /free`: drops cached node outputs and loaded models. */
  free(opts: { unloadModels?: boolean; freeMemory?: boolean }): void;
}
