// The durable queue and history: one SQLite file. A prompt is committed before `POST /prompt` answers;
// the running item stays in the table (flagged) until its history entry is written in the same
// transaction that removes it, so a crash at any point either re-runs it at start-up or has finished it
// — never both, never neither.
import Database from 'better-sqlite3';

/** ComfyUI keeps this many history entries; older ones are dropped. */
export const MAX_HISTORY = 10_000;

/**
 * What a queue item runs: a ComfyUI prompt on the workflow engine, or an A1111 / OpenAI request on the
 * A1111-style pipelines (its request in `payload`).
 */
export type JobKind = 'comfy' | 'a1111' | 'openai';

export interface QueueItem {
  readonly promptId: string;
  readonly kind: JobKind;
  /** ComfyUI's queue key: the counter, its negative (`front`), or the client's `number`. */
  readonly number: number;
  /** Tie-breaker: order of acceptance. */
  readonly seq: number;
  readonly prompt: Record<string, unknown>;
  readonly extraData: Record<string, unknown>;
  readonly outputs: string[];
  /** The request of a non-ComfyUI job (absent for ComfyUI prompts). */
  readonly payload?: unknown;
}

/** The 5-array ComfyUI shows in `/queue` and history: `[number, prompt_id, prompt, extra_data, outputs]`. */
export type QueueTuple = [number, string, Record<string, unknown>, Record<string, unknown>, string[]];

export function toTuple(item: QueueItem): QueueTuple {
  return [item.number, item.promptId, item.prompt, item.extraData, item.outputs];
}

interface QueueRow { prompt_id: string; number: number; seq: number; item: string; running: number; kind: string | null }

export class QueueStore {
  private readonly db: Database.Database;
  /** ComfyUI's `number` counter (persisted so numbers keep rising across restarts). */
  private counter: number;
  /** Acceptance order, the tie-breaker among equal numbers. */
  private seq: number;
  private readonly stmts;

  constructor(file: string) {
    this.db = new Database(file);
    // WAL + FULL: a committed prompt is on disk when the answer leaves; readers never block the runner
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS queue (
        prompt_id TEXT PRIMARY KEY,
        number REAL NOT NULL,
        seq INTEGER NOT NULL,
        item TEXT NOT NULL,
        running INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX IF NOT EXISTS queue_order ON queue (running DESC, number, seq);
      CREATE TABLE IF NOT EXISTS history (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        prompt_id TEXT NOT NULL UNIQUE,
        entry TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
    // Queues written before API jobs existed have no kind column: their rows are ComfyUI prompts.
    const columns = this.db.prepare('PRAGMA table_info(queue)').all() as { name: string }[];
    if (!columns.some((c) => c.name === 'kind')) this.db.exec(`ALTER TABLE queue ADD COLUMN kind TEXT NOT NULL DEFAULT 'comfy'`);
    const stored = this.db.prepare(`SELECT value FROM meta WHERE key = 'counter'`).get() as { value: string } | undefined;
    this.counter = stored ? Number(stored.value) : 0;
    this.seq = ((this.db.prepare('SELECT MAX(seq) AS m FROM queue').get() as { m: number | null }).m ?? -1) + 1;
    this.stmts = {
      insert: this.db.prepare('INSERT INTO queue (prompt_id, number, seq, item, running, kind) VALUES (?, ?, ?, ?, 0, ?)'),
      setCounter: this.db.prepare(`INSERT INTO meta (key, value) VALUES ('counter', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`),
      next: this.db.prepare('SELECT * FROM queue ORDER BY running DESC, number, seq LIMIT 1'),
      markRunning: this.db.prepare('UPDATE queue SET running = 1 WHERE prompt_id = ?'),
      running: this.db.prepare('SELECT * FROM queue WHERE running = 1 ORDER BY number, seq'),
      pending: this.db.prepare('SELECT * FROM queue WHERE running = 0 ORDER BY number, seq'),
      count: this.db.prepare('SELECT COUNT(*) AS n FROM queue'),
      has: this.db.prepare('SELECT 1 FROM queue WHERE prompt_id = ?'),
      deletePending: this.db.prepare('DELETE FROM queue WHERE prompt_id = ? AND running = 0'),
      clearPending: this.db.prepare('DELETE FROM queue WHERE running = 0'),
      remove: this.db.prepare('DELETE FROM queue WHERE prompt_id = ?'),
      addHistory: this.db.prepare('INSERT INTO history (prompt_id, entry) VALUES (?, ?) ON CONFLICT(prompt_id) DO UPDATE SET entry = excluded.entry'),
      trimHistory: this.db.prepare('DELETE FROM history WHERE seq <= (SELECT seq FROM history ORDER BY seq DESC LIMIT 1 OFFSET ?)'),
      historyAll: this.db.prepare('SELECT prompt_id, entry FROM history ORDER BY seq'),
      historyNewest: this.db.prepare('SELECT seq, prompt_id, entry FROM history ORDER BY seq DESC'),
      historyPage: this.db.prepare('SELECT prompt_id, entry FROM history ORDER BY seq LIMIT ? OFFSET ?'),
      historyCount: this.db.prepare('SELECT COUNT(*) AS n FROM history'),
      historyOne: this.db.prepare('SELECT entry FROM history WHERE prompt_id = ?'),
      deleteHistory: this.db.prepare('DELETE FROM history WHERE prompt_id = ?'),
      clearHistory: this.db.prepare('DELETE FROM history'),
    };
  }

  /** ComfyUI's running counter: the default `number`, incremented on every prompt that has none. */
  nextNumber(): number {
    return this.counter++;
  }

  has(promptId: string): boolean {
    return this.stmts.has.get(promptId) !== undefined;
  }

  /** Commits one prompt (and the counter) durably. */
  enqueue(item: Omit<QueueItem, 'seq' | 'kind'> & { kind?: JobKind }): QueueItem {
    const full: QueueItem = { ...item, kind: item.kind ?? 'comfy', seq: this.seq++ };
    const body = JSON.stringify({ prompt: item.prompt, extraData: item.extraData, outputs: item.outputs, payload: item.payload });
    this.db.transaction(() => {
      this.stmts.insert.run(full.promptId, full.number, full.seq, body, full.kind);
      this.stmts.setCounter.run(String(this.counter));
    })();
    return full;
  }

  /** The item to run: one left running by a crash first, else the smallest (number, seq); marks it running. */
  take(): QueueItem | undefined {
    const row = this.stmts.next.get() as QueueRow | undefined;
    if (!row) return undefined;
    if (!row.running) this.stmts.markRunning.run(row.prompt_id);
    return rowToItem(row);
  }

  running(): QueueItem[] {
    return (this.stmts.running.all() as QueueRow[]).map(rowToItem);
  }

  pending(): QueueItem[] {
    return (this.stmts.pending.all() as QueueRow[]).map(rowToItem);
  }

  /** Pending + running, as `queue_remaining` counts them. */
  remaining(): number {
    return (this.stmts.count.get() as { n: number }).n;
  }

  deletePending(ids: readonly string[]): void {
    this.db.transaction(() => { for (const id of ids) this.stmts.deletePending.run(id); })();
  }

  clearPending(): void {
    this.stmts.clearPending.run();
  }

  /** Removes the item from the queue and stores its history entry, atomically; keeps the newest MAX_HISTORY. */
  finish(promptId: string, entry: unknown): void {
    const json = JSON.stringify(entry);
    this.db.transaction(() => {
      this.stmts.remove.run(promptId);
      this.stmts.addHistory.run(promptId, json);
      this.stmts.trimHistory.run(MAX_HISTORY);
    })();
  }

  /**
   * `GET /history` as ComfyUI slices it: all; `maxItems` alone → the last N; with `offset` → up to N
   * from index `offset` (a negative offset counts as "not given").
   */
  history(maxItems?: number, offset = -1): Record<string, unknown> {
    let rows: { prompt_id: string; entry: string }[];
    if (maxItems === undefined && offset < 0) rows = this.stmts.historyAll.all() as typeof rows;
    else {
      const total = (this.stmts.historyCount.get() as { n: number }).n;
      const start = offset < 0 ? Math.max(0, total - (maxItems ?? total)) : offset;
      rows = this.stmts.historyPage.all(maxItems ?? -1, start) as typeof rows;
    }
    const out: Record<string, unknown> = {};
    for (const r of rows) out[r.prompt_id] = JSON.parse(r.entry);
    return out;
  }

  /** Every history entry, newest first, with its insertion order (the gallery pages and filters these). */
  historyNewestFirst(): { seq: number; promptId: string; entry: unknown }[] {
    return (this.stmts.historyNewest.all() as { seq: number; prompt_id: string; entry: string }[])
      .map((r) => ({ seq: r.seq, promptId: r.prompt_id, entry: JSON.parse(r.entry) }));
  }

  historyEntry(promptId: string): unknown {
    const row = this.stmts.historyOne.get(promptId) as { entry: string } | undefined;
    return row ? JSON.parse(row.entry) : undefined;
  }

  deleteHistory(ids: readonly string[]): void {
    this.db.transaction(() => { for (const id of ids) this.stmts.deleteHistory.run(id); })();
  }

  clearHistory(): void {
    this.stmts.clearHistory.run();
  }

  close(): void {
    this.db.close();
  }
}

const KINDS: readonly string[] = ['comfy', 'a1111', 'openai'];

function rowToItem(row: QueueRow): QueueItem {
  const body = JSON.parse(row.item) as { prompt: Record<string, unknown>; extraData: Record<string, unknown>; outputs: string[]; payload?: unknown };
  const kind = (row.kind && KINDS.includes(row.kind) ? row.kind : 'comfy') as JobKind;
  return { promptId: row.prompt_id, kind, number: row.number, seq: row.seq, ...body };
}
