// The single in-process worker: takes queue items one at a time (a crash's leftover first), runs them
// on the engine, routes their messages, and records history before announcing the shorter queue —
// the order ComfyUI clients depend on.
import type { ExecutionResult, ExecutionJob } from '../workflow/engine.js';
import type { ExecutionSink } from '../workflow/types.js';
import type { WsHub } from './comfy-ws.js';
import { toTuple, type QueueItem, type QueueStore } from './queue-store.js';
import type { Engine } from './engine-api.js';

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

  constructor(private readonly store: QueueStore, private readonly engine: Engine, private readonly hub: WsHub) {}

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
    this.engine.interrupt();
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
    if (this.current) this.engine.interrupt();
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
      const result = await this.execute(item);
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
