// The embedded store (SPEC §3.1): one SQLite file in DATA_DIR through node:sqlite, which has the same
// API on Bun and Deno and works inside the compiled binary (STACK).
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { DatabaseSync, SQLInputValue } from 'node:sqlite'
import {
  type AuditEvent,
  type AuditQuery,
  decodeAuditCursor,
  encodeAuditCursor,
  eventIdFloor,
  type UsageQuery,
  type UsageRow,
} from '../audit/event.ts'
import type { Logger } from '../log.ts'
import { SQLITE_MIGRATIONS } from './migrations.ts'
import { AuditInserter, AuditThread, openSqlite } from './sqlite-audit.ts'
import { decodeCursor, encodeCursor, type KeyChanges, type KeyListQuery, type KeyPage, type KeyRecord, type Store } from './store.ts'

type Row = Record<string, SQLInputValue>

export interface SqliteStoreOptions {
  /**
   * The audit thread's module (sqlite-audit.worker.ts), as a URL made where the compiled binary can
   * resolve it (services.ts). Without it, audit batches are inserted on the calling thread.
   */
  readonly auditThread?: string
  /** Hears that the audit thread stopped, and that its batches are inserted on the event loop from then on. */
  readonly log?: Logger
}

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const
  private readonly file: string
  private readonly db: DatabaseSync
  private readonly auditInline: AuditInserter
  /** Started on the first audit batch; undefined until then, and for good once it has failed. */
  private auditThread?: AuditThread
  /**
   * Key rows this connection changed since the key watcher last looked (see watchKeys): the change
   * counter moves for them too, but they are not changes made elsewhere.
   */
  private ownKeyChanges = 0

  constructor(
    dataDir: string,
    private readonly opts: SqliteStoreOptions = {},
  ) {
    mkdirSync(dataDir, { recursive: true })
    this.file = join(dataDir, 'neuronetz.db')
    // WAL lets the CLI (and the audit thread) read and write while a gateway runs; busy_timeout waits out their locks.
    this.db = openSqlite(this.file)
    this.auditInline = new AuditInserter(this.db)
  }

  async migrate(): Promise<void> {
    this.db.exec('begin immediate')
    try {
      this.db.exec(
        'create table if not exists schema_migrations (version integer primary key, name text not null, applied_at integer not null)',
      )
      const done = new Set(
        (this.db.prepare('select version from schema_migrations').all() as Array<{ version: number }>).map((r) => r.version),
      )
      for (const m of SQLITE_MIGRATIONS) {
        if (done.has(m.version)) continue
        this.db.exec(m.sql)
        this.db.prepare('insert into schema_migrations (version, name, applied_at) values (?, ?, ?)').run(m.version, m.name, Date.now())
      }
      this.db.exec('commit')
    } catch (err) {
      this.db.exec('rollback')
      throw err
    }
  }

  async ping(): Promise<void> {
    this.db.prepare('select 1').get()
  }

  async close(): Promise<void> {
    await this.auditThread?.close()
    if (this.db.isOpen) this.db.close()
  }

  /** Key writes the change counter counts (all but use times) go through here: the watcher leaves them out. */
  private writeKey(sql: string, ...params: SQLInputValue[]): void {
    this.ownKeyChanges += Number(this.db.prepare(sql).run(...params).changes)
  }

  async insertKey(r: KeyRecord): Promise<void> {
    this.writeKey(
      `insert into api_keys (id, hash, name, scopes, allowed_models, limits, metadata, expires_at, created_at, updated_at, revoked_at, last_used_at)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      r.id,
      r.hash,
      r.name,
      JSON.stringify(r.scopes),
      JSON.stringify(r.allowedModels),
      JSON.stringify(r.limits),
      JSON.stringify(r.metadata),
      r.expiresAt,
      r.createdAt,
      r.updatedAt,
      r.revokedAt,
      r.lastUsedAt,
    )
  }

  async getKey(id: string): Promise<KeyRecord | undefined> {
    const row = this.db.prepare('select * from api_keys where id = ?').get(id) as Row | undefined
    return row ? fromRow(row) : undefined
  }

  async listKeys(q: KeyListQuery): Promise<KeyPage> {
    const where: string[] = []
    const params: SQLInputValue[] = []
    const now = Date.now()
    if (q.name) {
      where.push("lower(name) like ? escape '\\'")
      params.push(`%${q.name.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`)
    }
    if (q.state === 'revoked') where.push('revoked_at is not null')
    if (q.state === 'expired') {
      where.push('revoked_at is null and expires_at is not null and expires_at <= ?')
      params.push(now)
    }
    if (q.state === 'active') {
      where.push('revoked_at is null and (expires_at is null or expires_at > ?)')
      params.push(now)
    }
    const cursor = q.cursor ? decodeCursor(q.cursor) : undefined
    if (cursor) {
      where.push('(created_at < ? or (created_at = ? and id < ?))')
      params.push(cursor.createdAt, cursor.createdAt, cursor.id)
    }
    const sql = `select * from api_keys ${where.length ? `where ${where.join(' and ')}` : ''} order by created_at desc, id desc limit ?`
    const rows = this.db.prepare(sql).all(...params, q.limit + 1) as Row[]
    const items = rows.slice(0, q.limit).map(fromRow)
    const last = items[items.length - 1]
    return { items, nextCursor: rows.length > q.limit && last ? encodeCursor(last.createdAt, last.id) : null }
  }

  async updateKey(id: string, changes: KeyChanges): Promise<KeyRecord | undefined> {
    const sets: string[] = ['updated_at = ?']
    const params: SQLInputValue[] = [Date.now()]
    const column = (name: string, value: SQLInputValue) => {
      sets.push(`${name} = ?`)
      params.push(value)
    }
    if (changes.name !== undefined) column('name', changes.name)
    if (changes.hash !== undefined) column('hash', changes.hash)
    if (changes.scopes !== undefined) column('scopes', JSON.stringify(changes.scopes))
    if (changes.allowedModels !== undefined) column('allowed_models', JSON.stringify(changes.allowedModels))
    if (changes.limits !== undefined) column('limits', JSON.stringify(changes.limits))
    if (changes.metadata !== undefined) column('metadata', JSON.stringify(changes.metadata))
    if (changes.expiresAt !== undefined) column('expires_at', changes.expiresAt)
    this.writeKey(`update api_keys set ${sets.join(', ')} where id = ?`, ...params, id)
    return this.getKey(id)
  }

  async revokeKey(id: string): Promise<KeyRecord | undefined> {
    const now = Date.now()
    this.writeKey('update api_keys set revoked_at = coalesce(revoked_at, ?), updated_at = ? where id = ?', now, now, id)
    return this.getKey(id)
  }

  async countKeys(): Promise<number> {
    return Number((this.db.prepare('select count(*) as n from api_keys').get() as { n: number }).n)
  }

  async touchKeys(lastUsed: ReadonlyMap<string, number>): Promise<void> {
    if (lastUsed.size === 0) return
    const stmt = this.db.prepare('update api_keys set last_used_at = max(coalesce(last_used_at, 0), ?) where id = ?')
    this.db.exec('begin')
    try {
      for (const [id, at] of lastUsed) stmt.run(at, id)
      this.db.exec('commit')
    } catch (err) {
      this.db.exec('rollback')
      throw err
    }
  }

  async insertAudit(events: readonly AuditEvent[]): Promise<void> {
    if (events.length === 0) return
    if (this.opts.auditThread && !this.auditThread && this.db.isOpen)
      this.auditThread = new AuditThread(this.opts.auditThread, this.file, (err) =>
        this.opts.log?.warn('audit thread stopped; audit batches are inserted on the event loop from now on', { err }),
      )
    const thread = this.auditThread
    if (!thread || thread.failed) return this.auditInline.insert(events)
    try {
      await thread.insert(events)
    } catch (err) {
      // A thread that died (or never started) loses nothing: the batch it may or may not have
      // committed is inserted here (ids already stored are skipped), and so is every batch after it.
      // A failed insert in a live thread (a lock held too long, a full disk) is the writer's to retry.
      if (!thread.failed || !this.db.isOpen) throw err
      this.auditInline.insert(events)
    }
  }

  async queryAudit(q: AuditQuery): Promise<{ items: AuditEvent[]; nextCursor: string | null }> {
    const where: string[] = []
    const params: SQLInputValue[] = []
    const add = (clause: string, ...values: SQLInputValue[]) => {
      where.push(clause)
      params.push(...values)
    }
    if (q.keyId) add('key_id = ?', q.keyId)
    if (q.model) add('model = ?', q.model)
    if (q.status !== undefined) add('status = ?', q.status)
    if (q.outcome) add('outcome = ?', q.outcome)
    // Time bounds are event id bounds (eventIdFloor): the table is clustered on the id.
    if (q.from !== undefined) add('event_id >= ?', eventIdFloor(q.from))
    if (q.to !== undefined) add('event_id < ?', eventIdFloor(q.to))
    const before = q.cursor ? decodeAuditCursor(q.cursor) : undefined
    if (before) add('event_id < ?', before)
    const rows = this.db
      .prepare(`select * from audit_events ${where.length ? `where ${where.join(' and ')}` : ''} order by event_id desc limit ?`)
      .all(...params, q.limit + 1) as Row[]
    const items = rows.slice(0, q.limit).map((r) => ({ ...(r as unknown as AuditEvent), tokens_partial: Boolean(r.tokens_partial) }))
    const last = items[items.length - 1]
    return { items, nextCursor: rows.length > q.limit && last ? encodeAuditCursor(last.event_id) : null }
  }

  async usage(q: UsageQuery): Promise<UsageRow[]> {
    const params: SQLInputValue[] = [eventIdFloor(q.from), eventIdFloor(q.to)]
    if (q.keyId) params.push(q.keyId)
    return this.db
      .prepare(
        `select date(time / 1000, 'unixepoch') as day, key_id, model, count(*) as requests,
                count(*) filter (where outcome = 'ok') as ok, count(*) filter (where outcome = 'error') as errors,
                count(*) filter (where outcome = 'aborted') as aborted, count(*) filter (where outcome = 'rejected') as rejected,
                coalesce(sum(prompt_tokens), 0) as prompt_tokens, coalesce(sum(completion_tokens), 0) as completion_tokens
         from audit_events where event_id >= ? and event_id < ? and action is null ${q.keyId ? 'and key_id = ?' : ''}
         group by day, key_id, model order by day, key_id, model`,
      )
      .all(...params) as unknown as UsageRow[]
  }

  async pruneAudit(before: number): Promise<number> {
    return Number(this.db.prepare('delete from audit_events where event_id < ?').run(eventIdFloor(before)).changes)
  }

  /**
   * One process owns the embedded store, so its own changes evict directly (keys/service.ts). The CLI
   * may change keys from another process: the key change counter (migration 004, kept by triggers)
   * moves with every change to a key, and when it does the whole key cache is expired. SQLite's
   * data_version cannot tell this: it moves for every commit of the audit thread too. The process's
   * own key writes move the counter as well and are counted out: expiring the cache for them would cost
   * each key in use a read of its record, and drop any verification in flight, which then ran argon2
   * again (a key's first request just after another key was created).
   */
  async watchKeys(_onChange: (id: string) => void, onResync: () => void): Promise<() => Promise<void>> {
    const keyChanges = this.db.prepare('select n from key_changes where id = 1')
    const changes = () => Number((keyChanges.get() as { n: number } | undefined)?.n ?? 0)
    let seen = changes()
    this.ownKeyChanges = 0
    const timer = setInterval(() => {
      if (!this.db.isOpen) return
      // The counter only grows, by one for each key row written.
      const now = changes()
      const elsewhere = now - seen - this.ownKeyChanges
      seen = now
      this.ownKeyChanges = 0
      if (elsewhere !== 0) onResync()
    }, 500)
    ;(timer as { unref?: () => void }).unref?.()
    return async () => clearInterval(timer)
  }
}

function fromRow(row: Row): KeyRecord {
  const n = (v: SQLInputValue | undefined) => (v === null || v === undefined ? null : Number(v))
  return {
    id: String(row.id),
    hash: String(row.hash),
    name: String(row.name),
    scopes: JSON.parse(String(row.scopes)),
    allowedModels: JSON.parse(String(row.allowed_models)),
    limits: JSON.parse(String(row.limits)),
    metadata: JSON.parse(String(row.metadata)),
    expiresAt: n(row.expires_at),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    revokedAt: n(row.revoked_at),
    lastUsedAt: n(row.last_used_at),
  }
}
