// The cluster store (SPEC §3.1) on postgres.js. Key changes NOTIFY every replica in the same
// transaction (SPEC §4.5); migrations take an advisory lock so replicas can start together.
import postgres from 'postgres'
import {
  AUDIT_COLUMNS,
  type AuditEvent,
  type AuditQuery,
  decodeAuditCursor,
  encodeAuditCursor,
  eventIdFloor,
  type UsageQuery,
  type UsageRow,
} from '../audit/event.ts'
import type { Logger } from '../log.ts'
import { POSTGRES_MIGRATIONS } from './migrations.ts'
import { AUDIT_COPY_SQL, auditCopyBinary } from './pg-copy.ts'
import {
  decodeCursor,
  encodeCursor,
  KEY_CHANNEL,
  type KeyChanges,
  type KeyListQuery,
  type KeyPage,
  type KeyRecord,
  type Store,
} from './store.ts'

// A fixed 64-bit advisory lock id for "neuronetz migrations".
const MIGRATION_LOCK = 7_243_001_017

type Sql = postgres.Sql<Record<string, never>>
/** How long a COPY may take before the batch is sent again through the idempotent INSERT. */
const COPY_GUARD_MS = 2000

type Row = Record<string, unknown>

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const
  readonly sql: Sql
  /**
   * The audit COPYs' own connection (SPEC §7): one Postgres backend takes every batch. Through the shared
   * pool, batches spread over the two or three backends it had open, and Postgres spent about 1.2 µs
   * more CPU per event (7.5 against 6.3 µs per request in saturated rounds, bench/RESULTS.md).
   */
  private readonly auditSql: Sql

  constructor(
    url: string,
    private readonly log: Logger,
  ) {
    const options = {
      connect_timeout: 5,
      idle_timeout: 60,
      onnotice: () => {},
      // Timestamps come back as Date; JSON columns are parsed by postgres.js.
      transform: { undefined: null },
    }
    this.sql = postgres(url, { ...options, max: 10 })
    this.auditSql = postgres(url, { ...options, max: 1 })
  }

  async migrate(): Promise<void> {
    await this.sql.begin(async (tx) => {
      await tx`select pg_advisory_xact_lock(${MIGRATION_LOCK})`
      await tx`create table if not exists schema_migrations (version integer primary key, name text not null, applied_at timestamptz not null default now())`
      const done = new Set((await tx<Array<{ version: number }>>`select version from schema_migrations`).map((r) => r.version))
      for (const m of POSTGRES_MIGRATIONS) {
        if (done.has(m.version)) continue
        await tx.unsafe(m.sql)
        await tx`insert into schema_migrations (version, name) values (${m.version}, ${m.name})`
      }
    })
  }

  async ping(): Promise<void> {
    await this.sql`select 1`
  }

  async close(): Promise<void> {
    await Promise.all([this.sql.end({ timeout: 5 }), this.auditSql.end({ timeout: 5 })])
  }

  /**
   * No notification: a new id is in no replica's cache. One would only evict here, after the key's
   * first request had begun verifying, and drop that verification's cache fill (a second argon2).
   */
  async insertKey(r: KeyRecord): Promise<void> {
    await this.sql`
      insert into api_keys (id, hash, name, scopes, allowed_models, limits, metadata, expires_at, created_at, updated_at, revoked_at, last_used_at)
      values (${r.id}, ${r.hash}, ${r.name}, ${this.sql.json(r.scopes as string[])}, ${this.sql.json(r.allowedModels as string[])}, ${this.sql.json(r.limits as postgres.JSONValue)},
              ${this.sql.json(r.metadata as postgres.JSONValue)}, ${date(r.expiresAt)}, ${new Date(r.createdAt)}, ${new Date(r.updatedAt)}, ${date(r.revokedAt)}, ${date(r.lastUsedAt)})`
  }

  async getKey(id: string): Promise<KeyRecord | undefined> {
    const [row] = await this.sql<Row[]>`select * from api_keys where id = ${id}`
    return row ? fromRow(row) : undefined
  }

  async listKeys(q: KeyListQuery): Promise<KeyPage> {
    const sql = this.sql
    const now = new Date()
    const cursor = q.cursor ? decodeCursor(q.cursor) : undefined
    const conditions = [
      q.name ? sql`lower(name) like ${`%${q.name.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`}` : sql`true`,
      q.state === 'revoked' ? sql`revoked_at is not null` : sql`true`,
      q.state === 'expired' ? sql`revoked_at is null and expires_at is not null and expires_at <= ${now}` : sql`true`,
      q.state === 'active' ? sql`revoked_at is null and (expires_at is null or expires_at > ${now})` : sql`true`,
      cursor ? sql`(created_at, id) < (${new Date(cursor.createdAt)}, ${cursor.id})` : sql`true`,
    ]
    const where = conditions.reduce((acc, c) => sql`${acc} and ${c}`)
    const rows = await sql<Row[]>`select * from api_keys where ${where} order by created_at desc, id desc limit ${q.limit + 1}`
    const items = rows.slice(0, q.limit).map(fromRow)
    const last = items[items.length - 1]
    return { items, nextCursor: rows.length > q.limit && last ? encodeCursor(last.createdAt, last.id) : null }
  }

  async updateKey(id: string, changes: KeyChanges): Promise<KeyRecord | undefined> {
    const sql = this.sql
    const set: Record<string, unknown> = { updated_at: new Date() }
    if (changes.name !== undefined) set.name = changes.name
    if (changes.hash !== undefined) set.hash = changes.hash
    if (changes.scopes !== undefined) set.scopes = sql.json(changes.scopes as string[])
    if (changes.allowedModels !== undefined) set.allowed_models = sql.json(changes.allowedModels as string[])
    if (changes.limits !== undefined) set.limits = sql.json(changes.limits as postgres.JSONValue)
    if (changes.metadata !== undefined) set.metadata = sql.json(changes.metadata as postgres.JSONValue)
    if (changes.expiresAt !== undefined) set.expires_at = date(changes.expiresAt)
    return this.changeAndNotify(id, (tx) => tx<Row[]>`update api_keys set ${tx(set)} where id = ${id} returning *`)
  }

  async revokeKey(id: string): Promise<KeyRecord | undefined> {
    return this.changeAndNotify(
      id,
      (tx) => tx<Row[]>`update api_keys set revoked_at = coalesce(revoked_at, now()), updated_at = now() where id = ${id} returning *`,
    )
  }

  /** SPEC §4.5: the change and its NOTIFY commit together, so no replica hears of an uncommitted change. */
  private async changeAndNotify(
    id: string,
    change: (tx: postgres.TransactionSql<Record<string, never>>) => Promise<Row[]>,
  ): Promise<KeyRecord | undefined> {
    const rows = await this.sql.begin(async (tx) => {
      const updated = await change(tx)
      if (updated.length > 0) await tx`select pg_notify(${KEY_CHANNEL}, ${id})`
      return updated
    })
    const row = (rows as Row[])[0]
    return row ? fromRow(row) : undefined
  }

  async countKeys(): Promise<number> {
    const [row] = await this.sql<Array<{ n: string }>>`select count(*)::text as n from api_keys`
    return Number(row?.n ?? 0)
  }

  async touchKeys(lastUsed: ReadonlyMap<string, number>): Promise<void> {
    if (lastUsed.size === 0) return
    const ids = [...lastUsed.keys()]
    const times = ids.map((id) => new Date(lastUsed.get(id) as number).toISOString())
    await this.sql`
      update api_keys k set last_used_at = greatest(k.last_used_at, v.at)
      from (select unnest(${ids}::text[]) as id, unnest(${times}::timestamptz[]) as at) v
      where k.id = v.id`
  }

  async insertAudit(events: readonly AuditEvent[], opts: { readonly mayRepeat?: boolean } = {}): Promise<void> {
    if (events.length === 0) return
    if (opts.mayRepeat) return await this.insertAuditIdempotent(events)
    // COPY is Postgres's cheapest way in: about half the database CPU per event of the INSERT below
    // (bench/RESULTS.md), and audit inserts are most of the database's load. COPY has no ON CONFLICT,
    // so it takes only batches that cannot have been stored before; if it fails for any reason the
    // batch goes through the idempotent INSERT, which also reports the real error.
    if (await this.copyAudit(events)) return
    await this.insertAuditIdempotent(events)
  }

  /**
   * True when Postgres confirmed the COPY. postgres.js 3.4.9 never settles a COPY writable that the
   * server rejects, or whose connection drops, after the data was sent (porsager/postgres#1173), so a
   * guard stops waiting; the connection itself recovers (autocommit, no transaction left open).
   */
  private async copyAudit(events: readonly AuditEvent[]): Promise<boolean> {
    const stream = await this.auditSql.unsafe(AUDIT_COPY_SQL).writable()
    return await new Promise<boolean>((resolve) => {
      const guard = setTimeout(() => resolve(false), COPY_GUARD_MS)
      const settle = (ok: boolean) => {
        clearTimeout(guard)
        resolve(ok)
      }
      stream.once('error', () => settle(false))
      stream.once('finish', () => settle(true))
      stream.end(auditCopyBinary(events))
    })
  }

  private async insertAuditIdempotent(events: readonly AuditEvent[]): Promise<void> {
    // The batch travels as one JSON text parameter that Postgres expands (json_to_recordset). `json`,
    // not `jsonb`: read once instead of converted first. The text cast stops postgres.js from encoding
    // the string again.
    await this.sql`
      insert into audit_events (${this.sql.unsafe(AUDIT_COLUMNS.join(', '))})
      select event_id::uuid, to_timestamp(time / 1000.0), request_id, key_id, client_ip, user_agent, method, path, model, backend,
             status, outcome, latency_ms, ttfb_ms, prompt_tokens, completion_tokens, tokens_partial, bytes_in, bytes_out, error, action, target
      from json_to_recordset(${JSON.stringify(events)}::text::json) as x(
        event_id text, time double precision, request_id text, key_id text, client_ip text, user_agent text, method text, path text,
        model text, backend text, status integer, outcome text, latency_ms double precision, ttfb_ms double precision,
        prompt_tokens integer, completion_tokens integer, tokens_partial boolean, bytes_in bigint, bytes_out bigint,
        error text, action text, target text)
      on conflict (event_id) do nothing`
  }

  async queryAudit(q: AuditQuery): Promise<{ items: AuditEvent[]; nextCursor: string | null }> {
    const sql = this.sql
    // Time bounds are event id bounds (eventIdFloor): the primary key serves them and the order.
    const before = q.cursor ? decodeAuditCursor(q.cursor) : undefined
    const conditions = [
      q.keyId ? sql`key_id = ${q.keyId}` : sql`true`,
      q.model ? sql`model = ${q.model}` : sql`true`,
      q.status !== undefined ? sql`status = ${q.status}` : sql`true`,
      q.outcome ? sql`outcome = ${q.outcome}` : sql`true`,
      q.from !== undefined ? sql`event_id >= ${eventIdFloor(q.from)}::uuid` : sql`true`,
      q.to !== undefined ? sql`event_id < ${eventIdFloor(q.to)}::uuid` : sql`true`,
      before ? sql`event_id < ${before}::uuid` : sql`true`,
    ]
    const where = conditions.reduce((acc, c) => sql`${acc} and ${c}`)
    const rows = await sql<Row[]>`select * from audit_events where ${where} order by event_id desc limit ${q.limit + 1}`
    const items = rows.slice(0, q.limit).map(
      (r) =>
        ({
          ...r,
          event_id: String(r.event_id),
          time: ms(r.time) as number,
          bytes_in: num(r.bytes_in),
          bytes_out: num(r.bytes_out),
        }) as unknown as AuditEvent,
    )
    const last = items[items.length - 1]
    return { items, nextCursor: rows.length > q.limit && last ? encodeAuditCursor(last.event_id) : null }
  }

  async usage(q: UsageQuery): Promise<UsageRow[]> {
    const sql = this.sql
    const rows = await sql<Row[]>`
      select to_char(date_trunc('day', time at time zone 'UTC'), 'YYYY-MM-DD') as day, key_id, model, count(*)::int as requests,
             (count(*) filter (where outcome = 'ok'))::int as ok, (count(*) filter (where outcome = 'error'))::int as errors,
             (count(*) filter (where outcome = 'aborted'))::int as aborted, (count(*) filter (where outcome = 'rejected'))::int as rejected,
             coalesce(sum(prompt_tokens), 0)::int as prompt_tokens, coalesce(sum(completion_tokens), 0)::int as completion_tokens
      from audit_events
      where event_id >= ${eventIdFloor(q.from)}::uuid and event_id < ${eventIdFloor(q.to)}::uuid and action is null
        ${q.keyId ? sql`and key_id = ${q.keyId}` : sql``}
      group by 1, 2, 3 order by 1, 2, 3`
    return rows as unknown as UsageRow[]
  }

  async pruneAudit(before: number): Promise<number> {
    const result = await this.sql`delete from audit_events where event_id < ${eventIdFloor(before)}::uuid`
    return result.count
  }

  /**
   * SPEC §4.5: LISTEN on the key channel. postgres.js reconnects the listener by itself with backoff;
   * every connect after the first may have missed notifications, so the caller resyncs.
   */
  async watchKeys(onChange: (id: string) => void, onResync: () => void): Promise<() => Promise<void>> {
    let connects = 0
    const { unlisten } = await this.sql.listen(KEY_CHANNEL, onChange, () => {
      if (connects++ > 0) {
        this.log.warn('revocation listener reconnected; key cache cleared', { channel: KEY_CHANNEL })
        onResync()
      }
    })
    return unlisten
  }
}

function num(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value)
}

function date(ms: number | null): Date | null {
  return ms === null ? null : new Date(ms)
}

function ms(value: unknown): number | null {
  return value === null || value === undefined ? null : new Date(value as string | Date).getTime()
}

function fromRow(row: Row): KeyRecord {
  return {
    id: String(row.id),
    hash: String(row.hash),
    name: String(row.name),
    scopes: row.scopes as KeyRecord['scopes'],
    allowedModels: row.allowed_models as string[],
    limits: row.limits as KeyRecord['limits'],
    metadata: row.metadata as KeyRecord['metadata'],
    expiresAt: ms(row.expires_at),
    createdAt: ms(row.created_at) as number,
    updatedAt: ms(row.updated_at) as number,
    revokedAt: ms(row.revoked_at),
    lastUsedAt: ms(row.last_used_at),
  }
}
