// Loaded models kept between prompts, least recently used first out once their sizes pass a budget
// (`--cache-bytes`), so a server switching between a few checkpoints does not reload them each time.

export interface Closable {
  close(): Promise<void>;
}

interface Entry {
  readonly value: Promise<Closable>;
  readonly bytes: number;
}

export class ResourceCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly maxBytes = Infinity) {}

  get size(): number { return this.entries.size; }

  /** The cached value for `key`, or `load()`'s (cached under `bytes`; a failed load is not kept). */
  async get<T extends Closable>(key: string, bytes: number, load: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return (await hit.value) as T;
    }
    const value = load();
    this.entries.set(key, { value, bytes });
    try {
      const v = await value;
      await this.evict(key);
      return v;
    } catch (err) {
      this.entries.delete(key);
      throw err;
    }
  }

  private async evict(keep: string): Promise<void> {
    let total = 0;
    for (const e of this.entries.values()) total += e.bytes;
    for (const [k, e] of [...this.entries]) {
      if (total <= this.maxBytes) break;
      if (k === keep) continue;
      this.entries.delete(k);
      total -= e.bytes;
      await (await e.value.catch(() => undefined))?.close();
    }
  }

  async clear(): Promise<void> {
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const e of all) await (await e.value.catch(() => undefined))?.close();
  }
}
