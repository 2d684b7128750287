// The prompt library: saved prompts and styles (A1111's name / prompt / negative_prompt) with tags,
// found by SQLite FTS5 full-text search. Its own file beside the queue so either can be deleted alone.
import Database from 'better-sqlite3';

export interface SavedPrompt {
  id: number;
  name: string;
  prompt: string;
  negativePrompt: string;
  tags: string[];
  /** A style (applied to the prompt with `{prompt}`) rather than a prompt to insert as is. */
  isStyle: boolean;
  updated: number;
}

export type PromptInput = Omit<SavedPrompt, 'id' | 'updated'>;

interface Row { id: number; name: string; prompt: string; negative_prompt: string; tags: string; is_style: number; updated: number }

const toPrompt = (r: Row): SavedPrompt => ({
  id: r.id, name: r.name, prompt: r.prompt, negativePrompt: r.negative_prompt,
  tags: r.tags ? r.tags.split(' ').filter(Boolean) : [], isStyle: r.is_style === 1, updated: r.updated,
});

/** A tag is one word: spaces would split it in the FTS column. */
export const normalizeTag = (t: string): string => t.trim().toLowerCase().replace(/\s+/g, '-');

/**
 * User text as an FTS5 query: each word a quoted prefix term, so punctuation and FTS operators in a
 * prompt ("(masterpiece:1.2)", "AND", "-") are searched for rather than parsed.
 */
export function ftsQuery(text: string): string {
  return text.split(/\s+/).map((w) => w.replace(/"/g, '""')).filter((w) => /[\p{L}\p{N}]/u.test(w)).map((w) => `"${w}"*`).join(' ');
}

export class PromptStore {
  private readonly db: Database.Database;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 5000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS prompts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        prompt TEXT NOT NULL,
        negative_prompt TEXT NOT NULL DEFAULT '',
        tags TEXT NOT NULL DEFAULT '',
        is_style INTEGER NOT NULL DEFAULT 0,
        updated INTEGER NOT NULL
      );
      CREATE VIRTUAL TABLE IF NOT EXISTS prompts_fts USING fts5(
        name, prompt, negative_prompt, tags, content='prompts', content_rowid='id', tokenize='unicode61'
      );
      -- external-content FTS kept in step by triggers, as the SQLite FTS5 documentation describes
      CREATE TRIGGER IF NOT EXISTS prompts_ai AFTER INSERT ON prompts BEGIN
        INSERT INTO prompts_fts(rowid, name, prompt, negative_prompt, tags) VALUES (new.id, new.name, new.prompt, new.negative_prompt, new.tags);
      END;
      CREATE TRIGGER IF NOT EXISTS prompts_ad AFTER DELETE ON prompts BEGIN
        INSERT INTO prompts_fts(prompts_fts, rowid, name, prompt, negative_prompt, tags) VALUES ('delete', old.id, old.name, old.prompt, old.negative_prompt, old.tags);
      END;
      CREATE TRIGGER IF NOT EXISTS prompts_au AFTER UPDATE ON prompts BEGIN
        INSERT INTO prompts_fts(prompts_fts, rowid, name, prompt, negative_prompt, tags) VALUES ('delete', old.id, old.name, old.prompt, old.negative_prompt, old.tags);
        INSERT INTO prompts_fts(rowid, name, prompt, negative_prompt, tags) VALUES (new.id, new.name, new.prompt, new.negative_prompt, new.tags);
      END;
    `);
  }

  add(p: PromptInput): SavedPrompt {
    const r = this.db.prepare('INSERT INTO prompts (name, prompt, negative_prompt, tags, is_style, updated) VALUES (?, ?, ?, ?, ?, ?) RETURNING *')
      .get(p.name, p.prompt, p.negativePrompt, p.tags.map(normalizeTag).filter(Boolean).join(' '), p.isStyle ? 1 : 0, Date.now()) as Row;
    return toPrompt(r);
  }

  update(id: number, p: PromptInput): SavedPrompt | undefined {
    const r = this.db.prepare('UPDATE prompts SET name = ?, prompt = ?, negative_prompt = ?, tags = ?, is_style = ?, updated = ? WHERE id = ? RETURNING *')
      .get(p.name, p.prompt, p.negativePrompt, p.tags.map(normalizeTag).filter(Boolean).join(' '), p.isStyle ? 1 : 0, Date.now(), id) as Row | undefined;
    return r && toPrompt(r);
  }

  remove(id: number): boolean {
    return this.db.prepare('DELETE FROM prompts WHERE id = ?').run(id).changes > 0;
  }

  /** Newest first; `text` searches every column (prefix match per word), `tag` must match exactly. */
  search(opts: { text?: string; tag?: string; styles?: boolean; limit?: number } = {}): SavedPrompt[] {
    const where: string[] = [];
    const args: unknown[] = [];
    const q = ftsQuery(opts.text ?? '');
    if (q) { where.push('id IN (SELECT rowid FROM prompts_fts WHERE prompts_fts MATCH ?)'); args.push(q); }
    if (opts.tag) { where.push("(' ' || tags || ' ') LIKE ?"); args.push(`% ${normalizeTag(opts.tag)} %`); }
    if (opts.styles !== undefined) { where.push('is_style = ?'); args.push(opts.styles ? 1 : 0); }
    const sql = `SELECT * FROM prompts ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY updated DESC, id DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, opts.limit ?? 200) as Row[]).map(toPrompt);
  }

  /** Replaces styles of the same name, adds the others, in one transaction. */
  importStyles(styles: readonly { name: string; prompt: string; negativePrompt: string }[]): number {
    const del = this.db.prepare('DELETE FROM prompts WHERE is_style = 1 AND name = ?');
    this.db.transaction(() => {
      for (const s of styles) {
        del.run(s.name);
        this.add({ ...s, tags: ['style'], isStyle: true });
      }
    })();
    return styles.length;
  }

  close(): void {
    this.db.close();
  }
}
