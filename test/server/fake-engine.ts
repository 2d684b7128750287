// A stand-in for the workflow engine with the same public surface, for testing the server alone: a few
// tiny node classes (an image source, a saver, a node that blocks on a flag file, a failing node),
// ComfyUI-shaped validation errors for the top-level cases, a last-prompt cache and the message order.
import { existsSync, writeFileSync } from 'node:fs';
import type { ApiPrompt, ExecutionJob, ExecutionResult, NodeErrors, ValidationResult } from '../../src/workflow/engine.js';
import type { EngineHost, ExecutionSink, ImageBatch } from '../../src/workflow/types.js';
import { InterruptedError } from '../../src/workflow/types.js';

interface FakeNode {
  output: boolean;
  inputs: Record<string, 'INT' | 'FLOAT' | 'STRING' | 'IMAGE'>;
  run(inputs: Record<string, unknown>, ctx: RunCtx): Promise<{ out?: unknown; ui?: Record<string, unknown> }>;
}

interface RunCtx {
  host: EngineHost;
  prompt: ApiPrompt;
  extraPngInfo?: Record<string, unknown>;
  progress(v: number, max: number): void;
  check(): void;
  preview(jpeg: Buffer): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const NODES: Record<string, FakeNode> = {
  FakeImage: {
    output: false,
    inputs: { width: 'INT', height: 'INT', value: 'FLOAT' },
    async run(i) {
      const w = Number(i.width), h = Number(i.height);
      const img: ImageBatch = { data: new Float32Array(w * h * 3).fill(Number(i.value)), batch: 1, width: w, height: h, channels: 3 };
      return { out: img };
    },
  },
  FakeSave: {
    output: true,
    inputs: { images: 'IMAGE', filename_prefix: 'STRING' },
    async run(i, ctx) {
      const pngInfo: Record<string, unknown> = { prompt: ctx.prompt, ...(ctx.extraPngInfo ?? {}) };
      const images = await ctx.host.saveImages({ images: i.images as ImageBatch, prefix: String(i.filename_prefix), type: 'output', pngInfo });
      return { ui: { images } };
    },
  },
  // Blocks until the file `flag` exists, touching `started` first: lets tests act mid-job without timers.
  FakeWait: {
    output: false,
    inputs: { images: 'IMAGE', flag: 'STRING', started: 'STRING', steps: 'INT' },
    async run(i, ctx) {
      if (i.started) writeFileSync(String(i.started), 'started');
      while (i.flag && !existsSync(String(i.flag))) {
        ctx.check();
        await sleep(10);
      }
      const steps = Number(i.steps ?? 2);
      for (let s = 1; s <= steps; s++) {
        ctx.check();
        ctx.progress(s, steps);
        ctx.preview(Buffer.from([0xff, 0xd8, 0xff, 0xd9]));
      }
      return { out: i.images };
    },
  },
  FakeFail: {
    output: false,
    inputs: { images: 'IMAGE' },
    async run() {
      throw new Error('fake failure');
    },
  },
};

function err(type: string, message: string, details = ''): ValidationResult {
  return { ok: false, error: { type, message, details, extra_info: {} }, nodeErrors: {} };
}

export class FakeEngine {
  currentNode: string | null = null;
  private interrupted = false;
  private cache = new Map<string, { out?: unknown; ui?: Record<string, unknown> }>();
  freed: unknown[] = [];
  executed: string[] = [];

  constructor(readonly opts: { host: EngineHost }) {}

  objectInfo(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const name of Object.keys(NODES)) Object.assign(out, this.objectInfoFor(name));
    return out;
  }

  objectInfoFor(cls: string): Record<string, unknown> {
    const n = NODES[cls];
    if (!n) return {};
    const required = Object.fromEntries(Object.entries(n.inputs).map(([k, t]) => [k, [t]]));
    return { [cls]: { input: { required }, input_order: { required: Object.keys(n.inputs) }, output: n.output ? [] : ['IMAGE'], name: cls, display_name: cls, category: 'test', output_node: n.output } };
  }

  async validate(prompt: unknown, partial?: readonly string[]): Promise<ValidationResult> {
    if (typeof prompt !== 'object' || prompt === null || Array.isArray(prompt)) return err('invalid_prompt', 'Prompt must be an object');
    const p = prompt as Record<string, unknown>;
    for (const [id, node] of Object.entries(p)) {
      if (typeof node !== 'object' || node === null || Array.isArray(node)) return err('invalid_prompt', 'Cannot execute because a node is not an object.', `Node ID '#${id}'`);
      const ct = (node as { class_type?: unknown }).class_type;
      if (typeof ct !== 'string') return err('invalid_prompt', 'Cannot execute because a node is missing the class_type property.', `Node ID '#${id}'`);
      if (!NODES[ct]) return err('invalid_prompt', `Cannot execute because node ${ct} does not exist.`, `Node ID '#${id}'`);
    }
    const api = p as ApiPrompt;
    let outputs = Object.keys(api).filter((id) => NODES[api[id].class_type].output);
    if (partial) outputs = outputs.filter((o) => partial.includes(o));
    if (outputs.length === 0) return err('prompt_no_outputs', 'Prompt has no outputs');
    const nodeErrors: Record<string, NodeErrors> = {};
    for (const [id, node] of Object.entries(api)) {
      for (const [name, v] of Object.entries(node.inputs ?? {})) {
        if (Array.isArray(v) && !(String(v[0]) in api)) {
          nodeErrors[id] = { errors: [{ type: 'exception_during_inner_validation', message: 'Exception when validating inner node', details: `'${v[0]}'`, extra_info: { input_name: name } }], dependent_outputs: outputs, class_type: node.class_type };
        }
      }
    }
    if (Object.keys(nodeErrors).length) return { ok: false, error: { type: 'prompt_outputs_failed_validation', message: 'Prompt outputs failed validation', details: '', extra_info: {} }, nodeErrors };
    return { ok: true, prompt: api, outputs, nodeErrors: {} };
  }

  interrupt(): void {
    if (this.currentNode !== null) this.interrupted = true;
  }

  free(opts: { unloadModels?: boolean; freeMemory?: boolean }): void {
    this.freed.push(opts);
    this.cache.clear();
  }

  private key(prompt: ApiPrompt, id: string): string {
    const node = prompt[id];
    const inputs = Object.entries(node.inputs).map(([k, v]) => [k, Array.isArray(v) ? [this.key(prompt, String(v[0])), v[1]] : v]);
    return JSON.stringify([node.class_type, inputs]);
  }

  async execute(job: ExecutionJob, sink: ExecutionSink): Promise<ExecutionResult> {
    const P = job.promptId;
    const messages: [string, Record<string, unknown>][] = [];
    const record = (type: string, data: Record<string, unknown>) => {
      const d = { prompt_id: P, ...data, timestamp: Date.now() };
      messages.push([type, d]);
      sink.send(type, d);
    };
    this.interrupted = false;
    record('execution_start', {});
    const order: string[] = [];
    const visit = (id: string) => {
      if (order.includes(id)) return;
      for (const v of Object.values(job.prompt[id].inputs)) if (Array.isArray(v)) visit(String(v[0]));
      order.push(id);
    };
    for (const o of job.outputs) visit(o);
    const keys = new Map(order.map((id) => [id, this.key(job.prompt, id)]));
    const cached = order.filter((id) => this.cache.has(keys.get(id)!));
    record('execution_cached', { nodes: cached });
    const results = new Map<string, { out?: unknown; ui?: Record<string, unknown> }>();
    const outputs: Record<string, Record<string, unknown>> = {};
    const meta: Record<string, Record<string, unknown>> = {};
    const newCache = new Map<string, { out?: unknown; ui?: Record<string, unknown> }>();
    const executed: string[] = [];
    try {
      for (const id of order) {
        const node = job.prompt[id];
        const def = NODES[node.class_type];
        let r = this.cache.get(keys.get(id)!);
        if (!r) {
          this.currentNode = id;
          sink.send('executing', { node: id, display_node: id, prompt_id: P });
          const inputs: Record<string, unknown> = {};
          for (const [k, v] of Object.entries(node.inputs)) inputs[k] = Array.isArray(v) ? results.get(String(v[0]))?.out : v;
          r = await def.run(inputs, {
            host: this.opts.host, prompt: job.prompt, extraPngInfo: job.extraData?.extra_pnginfo as Record<string, unknown> | undefined,
            progress: (value, max) => sink.send('progress', { value, max, prompt_id: P, node: id }),
            check: () => { if (this.interrupted) throw new InterruptedError(); },
            preview: (jpeg) => sink.preview?.(id, jpeg),
          });
          this.executed.push(node.class_type);
        }
        results.set(id, r);
        newCache.set(keys.get(id)!, r);
        executed.push(id);
        if (r.ui) {
          outputs[id] = r.ui;
          meta[id] = { node_id: id, display_node: id, parent_node: null, real_node_id: id };
          sink.send('executed', { node: id, display_node: id, output: r.ui, prompt_id: P });
        }
      }
    } catch (e) {
      this.currentNode = null;
      const id = order[executed.length];
      if (e instanceof InterruptedError) {
        record('execution_interrupted', { node_id: id, node_type: job.prompt[id].class_type, executed });
        return { status: 'interrupted', outputs, messages, meta };
      }
      record('execution_error', { node_id: id, node_type: job.prompt[id].class_type, executed, exception_message: (e as Error).message, exception_type: 'Exception', traceback: [], current_inputs: {}, current_outputs: [] });
      return { status: 'error', outputs, messages, meta };
    }
    this.currentNode = null;
    this.cache = newCache;
    record('execution_success', {});
    sink.send('executing', { node: null, prompt_id: P });
    return { status: 'success', outputs, messages, meta };
  }
}
