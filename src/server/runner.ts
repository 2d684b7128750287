// The single in-process worker: takes queue items one at a time (a crash's leftover first), runs them
// on the engine, routes their messages, and records history before announcing the shorter queue —
// the order ComfyUI clients depend on.
import { randomUUID } from 'node:crypto';
import type { ExecutionResult, ExecutionJob } from '../workflow/engine.js';
import type { ExecutionSink } from '../workflow/types.js';
import type { WsHub } from './comfy-ws.js';
import { toTuple, type JobKind, type QueueItem, type QueueStore } from './queue-store.js';
import type { Engine } from './engine-api.js';

/** What `/interrupt` and `/skip` ask of a running API job; the job's pipelines poll it between steps. */
export interface JobControl {
  interrupted: boolean;
  skipped: boolean;
}

/** Runs one A1111 / OpenAI queue item; resolves to the answer the waiting HTTP request sends. */
export type ApiJobHandler = (item: QueueItem, control: JobControl) => Promise<unknown>;

/** The HTTP client hung up while its job still waited: the job left the queue unrun. */
export class AbandonedError extends Error {
  constructor() {
    super('the client disconnected before the job started');
    this.name = 'AbandonedError';
  }
}

interface Waiter {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

/** Messages ComfyUI sends only to the prompt's own client (never broadcast when it has none). */
const CLIENT_ONLY = new Set(['execution_start', 'execution_cached', 'execution_success', 'execution_error']);

export interface FreeRequest {
  unloadModels?: boolean;
  freeMemory?: boolean;
}

export class QueueRunner {
  private current: QueueItem | undefined;
  private wakeUp: (() => void) | undefined;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private pendingFree: FreeRequest | undefined;
  private readonly handlers = new Map<JobKind, ApiJobHandler>();
  /** HTTP requests waiting for their API job's answer, by prompt id (in memory: a restart loses them). */
  private readonly waiters = new Map<string, Waiter>();
  private control: JobControl = { interrupted: false, skipped: false };

  constructor(private readonly store: QueueStore, private readonly engine: Engine, private readonly hub: WsHub) {}

  /** Who runs the queue items of an API family. */
  setHandler(kind: Exclude<JobKind, 'comfy'>, handler: ApiJobHandler): void {
    this.handlers.set(kind, handler);
  }

  /**
   * Queues an API job behind everything already waiting (ComfyUI's counter orders both) and returns
   * its id and a promise of its answer; the caller keeps the HTTP request open until it settles.
   */
  submit(kind: Exclude<JobKind, 'comfy'>, payload: unknown, extraData: Record<string, unknown>): { promptId: string; done: Promise<unknown> } {
    const promptId = randomUUID();
    const done = new Promise<unknown>((resolve, reject) => this.waiters.set(promptId, { resolve, reject }));
    this.store.enqueue({ promptId, kind, number: this.store.nextNumber(), prompt: {}, extraData: { ...extraData, create_time: Date.now() }, outputs: [], payload });
    this.hub.broadcastStatus(this.store.remaining());
    this.wake();
    return { promptId, done };
  }

  /** The client of a waiting job went away: drop the job if it has not started (a started one runs on). */
  abandon(promptId: string): void {
    // while stopping, connections close under waiting jobs: they stay queued for the next start
    if (this.stopping || this.current?.promptId === promptId) return;
    const waiter = this.waiters.get(promptId);
    if (!waiter) return;
    this.waiters.delete(promptId);
    this.store.deletePending([promptId]);
    this.hub.broadcastStatus(this.store.remaining());
    waiter.reject(new AbandonedError());
  }

  /** The kind of the running item, if any. */
  get runningKind(): JobKind | undefined {
    return this.current?.kind;
  }

  /** A1111 `/skip`: the running API job moves on to its next batch. */
  skip(): void {
    if (this.current && this.current.kind !== 'comfy') this.control.skipped = true;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Called after an enqueue: the worker looks at the queue again. */
  wake(): void {
    const w = this.wakeUp;
    this.wakeUp = undefined;
    w?.();
  }

  /** The running item's prompt id, client and node (for `/queue`, reconnects and `/interrupt`). */
  get running(): { promptId: string; clientId?: string; node: string | null } | undefined {
    const c = this.current;
    if (!c) return undefined;
    const clientId = typeof c.extraData.client_id === 'string' ? c.extraData.client_id : undefined;
    return { promptId: c.promptId, clientId, node: this.engine.currentNode };
  }

  /** `POST /interrupt`: only the given prompt when an id is given. */
  interrupt(promptId?: string): void {
    if (!this.current) return;
    if (promptId !== undefined && promptId !== this.current.promptId) return;
    if (this.current.kind === 'comfy') this.engine.interrupt();
    else this.control.interrupted = true;
  }

  /** `POST /free`: applied now when idle, else after the running prompt. */
  free(req: FreeRequest): void {
    if (!this.current) this.engine.free(req);
    else this.pendingFree = { unloadModels: (this.pendingFree?.unloadModels ?? false) || req.unloadModels, freeMemory: (this.pendingFree?.freeMemory ?? false) || req.freeMemory };
  }

  /**
   * Stops taking items. The running one is interrupted and left flagged in the queue, so the next
   * start runs it again rather than recording an interruption nobody asked for.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.current) this.interrupt();
    this.wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const item = this.store.take();
      if (!item) {
        await new Promise<void>((resolve) => { this.wakeUp = resolve; });
        continue;
      }
      this.current = item;
      this.hub.broadcastStatus(this.store.remaining());
      const result = item.kind === 'comfy' ? await this.execute(item) : await this.executeApi(item);
      if (this.stopping && result.status === 'interrupted') break;
      this.store.finish(item.promptId, historyEntry(item, result));
      this.current = undefined;
      this.hub.broadcastStatus(this.store.remaining());
      const clientId = typeof item.extraData.client_id === 'string' ? item.extraData.client_id : undefined;
      if (clientId !== undefined) this.hub.sendTo(clientId, 'executing', { node: null, prompt_id: item.promptId });
      if (this.pendingFree) {
        this.engine.free(this.pendingFree);
        this.pendingFree = undefined;
      }
    }
    this.current = undefined;
  }

  /**
   * An A1111 / OpenAI job: its handler's answer goes to the waiting request. A job nobody waits for
   * (left by a crash or restart: its HTTP client is gone) is recorded and dropped without running.
   */
  private async executeApi(item: QueueItem): Promise<ExecutionResult> {
    const waiter = this.waiters.get(item.promptId);
    this.waiters.delete(item.promptId);
    const handler = this.handlers.get(item.kind);
    const fail = (message: string): ExecutionResult => ({ status: 'error', outputs: {}, messages: [['execution_error', { prompt_id: item.promptId, exception_message: message, timestamp: Date.now() }]], meta: {} });
    if (!waiter) return fail('no client is waiting for this job (the server restarted)');
    if (!handler) {
      waiter.reject(new Error(`no handler for ${item.kind} jobs`));
      return fail(`no handler for ${item.kind} jobs`);
    }
    this.control = { interrupted: false, skipped: false };
    try {
      const answer = await handler(item, this.control);
      waiter.resolve(answer);
      const interrupted = this.control.interrupted;
      return { status: interrupted ? 'interrupted' : 'success', outputs: {}, messages: [[interrupted ? 'execution_interrupted' : 'execution_success', { prompt_id: item.promptId, timestamp: Date.now() }]], meta: {} };
    } catch (err) {
      waiter.reject(err);
      return fail((err as Error)?.message ?? String(err));
    }
  }

  private async execute(item: QueueItem): Promise<ExecutionResult> {
    const clientId = typeof item.extraData.client_id === 'string' ? item.extraData.client_id : undefined;
    const hub = this.hub;
    const sink: ExecutionSink = {
      send(type, data) {
        // the final `executing {node: null}` is the server's, sent after history and status
        if (type === 'executing' && data.node === null) return;
        if (type === 'execution_interrupted') hub.broadcast(type, data);
        else if (CLIENT_ONLY.has(type)) { if (clientId !== undefined) hub.sendTo(clientId, type, data); }
        else hub.send(clientId, type, data);
      },
      preview(nodeId, jpeg) {
        hub.preview(clientId, jpeg, { node_id: nodeId, prompt_id: item.promptId });
      },
    };
    const job: ExecutionJob = { promptId: item.promptId, prompt: item.prompt as ExecutionJob['prompt'], outputs: item.outputs, extraData: item.extraData };
    try {
      return await this.engine.execute(job, sink);
    } catch (err) {
      // the engine reports node errors itself; this is a failure of the engine, kept off the queue
      const e = err as Error;
      const data = {
        prompt_id: item.promptId, node_id: null, node_type: null, executed: [], exception_message: e?.message ?? String(err),
        exception_type: e?.name ?? 'Error', traceback: String(e?.stack ?? '').split('\n'), current_inputs: {}, current_outputs: [], timestamp: Date.now(),
      };
      sink.send('execution_error', data);
      return { status: 'error', outputs: {}, messages: [['execution_error', data]], meta: {} };
    }
  }
}

/** ComfyUI's history entry for a finished prompt. */
export function historyEntry(item: QueueItem, result: ExecutionResult): Record<string, unknown> {
  const ok = result.status === 'success';
  return {
    prompt: toTuple(item),
    outputs: result.outputs,
    status: { status_str: ok ? 'success' : 'error', completed: ok, messages: result.messages },
    meta: result.meta,
  };
}
