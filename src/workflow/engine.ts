// The workflow engine: validates ComfyUI API-format prompts against the node registry and runs them
// with ComfyUI's semantics (only what outputs need, outputs cached across prompts, interrupts between
// steps). The server owns queueing, storage and routing of the messages; the engine owns the graph.
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { builtinNodes } from './nodes/index.js';
import { NodeRegistry } from './registry.js';
import { ResourceCache } from './resource-cache.js';
import {
  InterruptedError, type ApiPrompt, type EngineHost, type ExecutionJob, type ExecutionResult, type ExecutionSink, type NodeContext, type NodeDef,
  type ValidationResult,
} from './types.js';
import { validatePrompt } from './validate.js';

export type { ApiPrompt, ExecutionJob, ExecutionResult, NodeErrors, PromptError, ValidationResult } from './types.js';

export interface EngineOptions {
  readonly host: EngineHost;
  /** Node classes; defaults to every built-in node. */
  readonly nodes?: readonly NodeDef[];
  readonly previewMethod?: 'none' | 'latent2rgb' | 'taesd';
  /** Budget for models kept loaded between prompts (default: no limit). */
  readonly cacheBytes?: number;
}

interface CachedNode {
  readonly outputs: readonly unknown[];
  readonly ui?: Readonly<Record<string, unknown>>;
}

const PREVIEW_SIZE = 512;

/** Whether an input value is a link `[node id, slot]` (validation has unwrapped literal lists). */
const isLink = (v: unknown): v is [string, number] => Array.isArray(v) && v.length === 2;

export class WorkflowEngine {
  readonly registry: NodeRegistry;
  readonly resources: ResourceCache;
  private readonly host: EngineHost;
  private readonly previewMethod: 'none' | 'latent2rgb' | 'taesd';
  /** ComfyUI's "classic" cache: outputs of the last prompt's nodes, by input signature. */
  private cache = new Map<string, CachedNode>();
  private interrupted = false;
  private running: string | null = null;

  constructor(opts: EngineOptions) {
    this.host = opts.host;
    this.registry = new NodeRegistry(opts.nodes ?? builtinNodes());
    this.resources = new ResourceCache(opts.cacheBytes ?? Infinity);
    this.previewMethod = opts.previewMethod ?? 'none';
  }

  /** `GET /object_info`. */
  objectInfo(): Record<string, unknown> {
    return this.registry.objectInfo(this.host);
  }

  /** `GET /object_info/{class}`: `{class: info}`, or `{}` for an unknown class. */
  objectInfoFor(classType: string): Record<string, unknown> {
    const def = this.registry.get(classType);
    return def ? { [classType]: this.registry.info(def, this.host) } : {};
  }

  /** Validates a `POST /prompt` body's `prompt` (any JSON value) as ComfyUI does. */
  validate(prompt: unknown, partialTargets?: readonly string[]): Promise<ValidationResult> {
    return validatePrompt(prompt, this.registry, this.host, partialTargets);
  }

  /** The node the running prompt is executing, or null. */
  get currentNode(): string | null {
    return this.running;
  }

  /** `POST /interrupt`: stops the running prompt at the next step boundary (no-op when idle). */
  interrupt(): void {
    this.interrupted = true;
  }

  /** `POST /free`: drops cached node outputs and loaded models. */
  free(opts: { unloadModels?: boolean; freeMemory?: boolean }): void {
    if (opts.freeMemory || opts.unloadModels) this.cache = new Map();
    if (opts.unloadModels) void this.resources.clear();
  }

  /** Releases every loaded model and cached output. */
  async close(): Promise<void> {
    this.cache = new Map();
    await this.resources.clear();
  }

  /** Nodes the outputs need, dependencies first, outputs in the order given. */
  private order(prompt: ApiPrompt, outputs: readonly string[]): string[] {
    const order: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (id: string) => {
      const s = state.get(id);
      if (s === 'done') return;
      if (s === 'visiting') throw Object.assign(new Error('Dependency cycle detected'), { pyType: 'graph.DependencyCycleError' });
      state.set(id, 'visiting');
      for (const v of Object.values(prompt[id].inputs)) if (isLink(v)) visit(String(v[0]));
      state.set(id, 'done');
      order.push(id);
    };
    for (const o of outputs) visit(o);
    return order;
  }

  /** ComfyUI's input signature: class, changed-token, widget values and the ancestors' signatures by link. */
  private async signatures(prompt: ApiPrompt, order: readonly string[]): Promise<Map<string, string>> {
    const sigs = new Map<string, string>();
    for (const id of order) {
      const node = prompt[id];
      const def = this.registry.get(node.class_type)!;
      const changed = def.changed ? await def.changed(node.inputs, this.host) : '';
      const inputs = Object.keys(node.inputs).sort().map((k) => {
        const v = node.inputs[k];
        return [k, isLink(v) ? { link: sigs.get(String(v[0])), slot: v[1] } : v];
      });
      sigs.set(id, createHash('sha256').update(JSON.stringify([node.class_type, changed, inputs])).digest('hex'));
    }
    return sigs;
  }

  /** Runs one prompt; sends its messages (with `prompt_id`) to the sink; never throws for node errors. */
  async execute(job: ExecutionJob, sink: ExecutionSink): Promise<ExecutionResult> {
    const P = job.promptId;
    const messages: [string, Record<string, unknown>][] = [];
    const outputs: Record<string, Record<string, unknown>> = {};
    const meta: Record<string, Record<string, unknown>> = {};
    const record = (type: string, data: Record<string, unknown>) => {
      const d = { ...data, prompt_id: P, timestamp: Date.now() };
      messages.push([type, d]);
      sink.send(type, d);
    };
    const send = (type: string, data: Record<string, unknown>) => sink.send(type, { ...data, prompt_id: P });
    this.interrupted = false;
    record('execution_start', {});
    const executed: string[] = [];
    let current = '';
    const states: Record<string, Record<string, unknown>> = {};
    const progressState = (id: string, state: string, value = 0, max = 1) => {
      states[id] = { value, max, state, node_id: id, prompt_id: P, display_node_id: id, parent_node_id: null, real_node_id: id };
      send('progress_state', { nodes: { ...states } });
    };
    try {
      const order = this.order(job.prompt, job.outputs);
      const sigs = await this.signatures(job.prompt, order);
      const cachedIds = order.filter((id) => this.cache.has(sigs.get(id)!));
      record('execution_cached', { nodes: cachedIds });
      const results = new Map<string, CachedNode>();
      for (const id of order) {
        current = id;
        const node = job.prompt[id];
        const def = this.registry.get(node.class_type)!;
        const sig = sigs.get(id)!;
        const hit = this.cache.get(sig);
        if (hit) {
          results.set(id, hit);
          if (def.outputNode) {
            if (hit.ui) outputs[id] = { ...hit.ui };
            meta[id] = { node_id: id, display_node: id, parent_node: null, real_node_id: id };
            send('executed', { node: id, display_node: id, output: hit.ui ?? null });
          }
          continue;
        }
        if (this.interrupted) throw new InterruptedError();
        this.running = id;
        progressState(id, 'running');
        send('executing', { node: id, display_node: id });
        const inputs: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(node.inputs)) inputs[k] = isLink(v) ? results.get(String(v[0]))!.outputs[v[1]] : v;
        const ctx = this.context(job, id, send, sink);
        const r = await def.run(inputs, ctx);
        const entry: CachedNode = { outputs: r.outputs, ui: r.ui };
        results.set(id, entry);
        this.cache.set(sig, entry);
        executed.push(id);
        progressState(id, 'finished');
        if (r.ui) {
          outputs[id] = { ...r.ui };
          meta[id] = { node_id: id, display_node: id, parent_node: null, real_node_id: id };
          send('executed', { node: id, display_node: id, output: r.ui });
        }
      }
      // Classic cache: keep what this prompt used, drop the rest.
      const keep = new Set(order.map((id) => sigs.get(id)!));
      for (const k of [...this.cache.keys()]) if (!keep.has(k)) this.cache.delete(k);
      record('execution_success', {});
      return { status: 'success', outputs, messages, meta };
    } catch (err) {
      const node = job.prompt[current];
      if (err instanceof InterruptedError) {
        record('execution_interrupted', { node_id: current, node_type: node?.class_type ?? '', executed });
        return { status: 'interrupted', outputs, messages, meta };
      }
      const e = err as Error & { pyType?: string };
      const currentInputs: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(node?.inputs ?? {})) if (!isLink(v)) currentInputs[k] = [String(v)];
      record('execution_error', {
        node_id: current, node_type: node?.class_type ?? '', executed,
        exception_message: e.message, exception_type: e.pyType ?? e.name ?? 'Error',
        traceback: (e.stack ?? '').split('\n').slice(1, 8).map((l) => `${l.trim()}\n`),
        current_inputs: currentInputs, current_outputs: executed,
      });
      return { status: 'error', outputs, messages, meta };
    } finally {
      this.running = null;
    }
  }

  private context(job: ExecutionJob, id: string, send: (t: string, d: Record<string, unknown>) => void, sink: ExecutionSink): NodeContext {
    const extra = job.extraData?.extra_pnginfo;
    return {
      host: this.host, resources: this.resources, nodeId: id, promptId: job.promptId, prompt: job.prompt,
      extraPngInfo: typeof extra === 'object' && extra !== null ? extra as Record<string, unknown> : undefined,
      previews: this.previewMethod,
      progress: (value, max) => send('progress', { value, max, node: id }),
      checkInterrupted: () => {
        if (this.interrupted) throw new InterruptedError();
      },
      preview: sink.preview ? (rgb, width, height) => {
        const scale = Math.min(1, PREVIEW_SIZE / Math.max(width, height));
        return sharp(Buffer.from(rgb.buffer, rgb.byteOffset, rgb.byteLength), { raw: { width, height, channels: 3 } })
          .resize(Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale)))
          .jpeg({ quality: 95 }).toBuffer().then((jpeg) => sink.preview!(id, jpeg), () => undefined);
      } : undefined,
    };
  }
}
