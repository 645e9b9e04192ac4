// SPEC §4.10: the audit insert on both stores, against real Postgres and SQLite. Postgres takes batches
// through COPY (binary format), so every value must survive its encoding; a batch that was already
// stored, wholly or in part, is inserted again without error and without duplicates, flagged as a
// possible repeat or not. Events are keyed, sorted and paged by their time-ordered id (SPEC §7): pages
// and time ranges hold exactly the right events, and migration 003 carries older rows (random ids,
// a serial seq) over.
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import postgres from 'postgres'
import { AUDIT_COLUMNS, type AuditEvent } from '../src/audit/event.ts'
import { createLogger } from '../src/log.ts'
import { SQLITE_AUDIT_THREAD } from '../src/services.ts'
import { POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS } from '../src/store/migrations.ts'
import { AUDIT_COPY_SQL, auditCopyBinary } from '../src/store/pg-copy.ts'
import { PostgresStore } from '../src/store/postgres.ts'
import { SqliteStore, type SqliteStoreOptions } from '../src/store/sqlite.ts'
import type { Store } from '../src/store/store.ts'
import { sampleAuditEvent } from './helpers/audit-events.ts'
import { type FreshDatabase, freshDatabase } from './helpers/infra.ts'

const base = Date.UTC(2026, 10, 26, 12, 0, 0)

function event(i: number, fields: Partial<AuditEvent> = {}): AuditEvent {
  // The id is minted from the event's time, as the gateway does (ids sort as times).
  return sampleAuditEvent(i, fields.time ?? base + i, { key_id: 'k_audit_store', ...fields })
}

/** Every column that may be null, null. */
const NULLABLE_AS_NULL: Partial<AuditEvent> = {
  client_ip: null,
  user_agent: null,
  model: null,
  backend: null,
  latency_ms: null,
  ttfb_ms: null,
  prompt_tokens: null,
  completion_tokens: null,
  bytes_in: null,
  bytes_out: null,
}

async function stored(store: Store): Promise<AuditEvent[]> {
  const { items } = await store.queryAudit({ keyId: 'k_audit_store', limit: 100 })
  return items.sort((a, b) => a.time - b.time)
}

const databases: FreshDatabase[] = []
const stores: Store[] = []
afterAll(async () => {
  for (const store of stores) await store.close()
  for (const db of databases) await db.drop()
})

const kinds: Array<[string, () => Promise<Store>]> = [
  [
    'Postgres',
    async () => {
      const db = await freshDatabase()
      databases.push(db)
      return new PostgresStore(db.url, createLogger({ level: 'error', format: 'json' }))
    },
  ],
  ['SQLite', async () => new SqliteStore(mkdtempSync(join(tmpdir(), 'nnz-audit-store-')))],
  // The server's embedded store: the same inserts, made by the audit thread on a connection of its own.
  [
    'SQLite, audit thread',
    async () => new SqliteStore(mkdtempSync(join(tmpdir(), 'nnz-audit-store-')), { auditThread: SQLITE_AUDIT_THREAD }),
  ],
]

describe.each(kinds)('audit store (SPEC §4.10): %s', (_name, open) => {
  const migrated = async () => {
    const store = await open()
    stores.push(store)
    await store.migrate()
    return store
  }

  test('every value comes back as written: tabs, newlines, backslashes, COPY markers, unicode, nulls', async () => {
    const store = await migrated()
    const events = [
      event(1, {
        user_agent: 'tab\there\nnewline\r\nand \\ backslash \\N \\. end',
        path: '/api/chat',
        error: 'upstream said "no"\tthen\\nnothing',
        model: 'qwen2.5:0.5b-ünïcödé-😀',
      }),
      event(2, {
        key_id: 'k_audit_store',
        ...NULLABLE_AS_NULL,
        status: 502,
        outcome: 'error',
        tokens_partial: true,
      }),
      event(3, { user_agent: '\\.', error: '', action: 'key.revoke', target: 'k_other\tx' }),
    ]
    await store.insertAudit(events)
    expect(await stored(store)).toEqual(events)
  })

  test('a batch that may have been stored before (a retry, a spill replay) inserts again without duplicates', async () => {
    const store = await migrated()
    const [a, b, c] = [event(10), event(11), event(12)]
    await store.insertAudit([a, b] as AuditEvent[])
    await store.insertAudit([a, b] as AuditEvent[], { mayRepeat: true })
    // Partly stored: only the new event is added.
    await store.insertAudit([b, c] as AuditEvent[], { mayRepeat: true })
    expect((await stored(store)).map((e) => e.request_id)).toEqual(['req-10', 'req-11', 'req-12'])
  })

  test('a repeated batch not flagged as such is still stored once (Postgres: the rejected COPY falls back)', async () => {
    const store = await migrated()
    const [a, b, c] = [event(20), event(21), event(22)]
    await store.insertAudit([a, b] as AuditEvent[])
    await store.insertAudit([b, c] as AuditEvent[])
    expect((await stored(store)).map((e) => e.request_id)).toEqual(['req-20', 'req-21', 'req-22'])
    // The store stays usable afterwards.
    await store.insertAudit([event(23)])
    expect(await stored(store)).toHaveLength(4)
  }, 15_000)

  test('pages newest first by event id: every event exactly once, across events of the same millisecond', async () => {
    const store = await migrated()
    // 30 events over 10 milliseconds, three in each; inserted out of order.
    const fixed = Array.from({ length: 30 }, (_, i) => event(i, { time: base + Math.floor(i / 3) }))
    await store.insertAudit([...fixed].reverse().slice(0, 15))
    await store.insertAudit([...fixed].reverse().slice(15))
    const seen: string[] = []
    let cursor: string | undefined
    let pages = 0
    do {
      const page = await store.queryAudit({ keyId: 'k_audit_store', limit: 7, ...(cursor ? { cursor } : {}) })
      seen.push(...page.items.map((e) => e.event_id))
      cursor = page.nextCursor ?? undefined
      pages++
    } while (cursor)
    expect(pages).toBe(5)
    expect(seen).toEqual(
      fixed
        .map((e) => e.event_id)
        .sort()
        .reverse(),
    )
  })

  test('the usage report counts each group by outcome, beside the total', async () => {
    const store = await migrated()
    const outcomes = ['ok', 'ok', 'ok', 'error', 'aborted', 'rejected', 'rejected'] as const
    await store.insertAudit(outcomes.map((outcome, i) => event(200 + i, { time: base + i, outcome })))
    const usage = await store.usage({ from: base, to: base + 1000, keyId: 'k_audit_store' })
    expect(usage).toEqual([expect.objectContaining({ requests: 7, ok: 3, errors: 1, aborted: 1, rejected: 2 })])
  })

  test('time ranges: from inclusive, to exclusive, on the audit list, the usage report and the pruning', async () => {
    const store = await migrated()
    const events = Array.from({ length: 10 }, (_, i) => event(100 + i, { time: base + i * 1000 }))
    await store.insertAudit(events)
    const range = await store.queryAudit({ keyId: 'k_audit_store', limit: 100, from: base + 2000, to: base + 5000 })
    expect(range.items.map((e) => e.request_id)).toEqual(['req-104', 'req-103', 'req-102'])
    const usage = await store.usage({ from: base + 2000, to: base + 5000, keyId: 'k_audit_store' })
    expect(usage).toEqual([
      {
        day: '2026-11-26',
        key_id: 'k_audit_store',
        model: 'llama3.2',
        requests: 3,
        ok: 3,
        errors: 0,
        aborted: 0,
        rejected: 0,
        prompt_tokens: 21,
        completion_tokens: 9,
      },
    ])
    expect(await store.pruneAudit(base + 3000)).toBe(3)
    expect((await stored(store)).map((e) => e.request_id)).toEqual([
      'req-103',
      'req-104',
      'req-105',
      'req-106',
      'req-107',
      'req-108',
      'req-109',
    ])
  })

  test('migration 003 keeps every older row, giving random (v4) ids a time-ordered id with their own random bits', async () => {
    const legacy = await legacyStore(_name as 'Postgres' | 'SQLite')
    // Rows written under migration 002: half with random ids, half already time-ordered.
    const old = Array.from({ length: 6 }, (_, i) =>
      event(200 + i, { time: base + i * 60_000, ...(i % 2 === 0 ? { event_id: crypto.randomUUID() } : {}) }),
    )
    await legacy.insert(old)
    const store = await legacy.upgrade()
    stores.push(store)
    const rows = await stored(store)
    expect(rows.map(({ event_id: _id, ...rest }) => rest)).toEqual(old.map(({ event_id: _id, ...rest }) => rest))
    for (const [i, row] of rows.entries()) {
      expect(Number.parseInt(row.event_id.replaceAll('-', '').slice(0, 12), 16)).toBe(row.time)
      expect(row.event_id[14]).toBe('7')
      expect(row.event_id.slice(15)).toBe((old[i] as AuditEvent).event_id.slice(15))
    }
    const range = await store.queryAudit({ keyId: 'k_audit_store', limit: 100, from: base + 60_000, to: base + 180_000 })
    expect(range.items.map((e) => e.request_id)).toEqual(['req-202', 'req-201'])
    // New events go in beside the carried-over ones.
    await store.insertAudit([event(300, { time: base + 600_000 })])
    expect(await stored(store)).toHaveLength(7)
  })
})

/** A store migrated only to version 2 (the audit table with `seq`), to insert rows into and then upgrade. */
async function legacyStore(kind: 'Postgres' | 'SQLite'): Promise<{
  insert(events: AuditEvent[]): Promise<void>
  upgrade(): Promise<Store>
}> {
  const values = (e: AuditEvent) => AUDIT_COLUMNS.map((c) => (c === 'tokens_partial' ? (e.tokens_partial ? 1 : 0) : e[c]))
  if (kind === 'Postgres') {
    const db = await freshDatabase()
    databases.push(db)
    const sql = postgres(db.url, { max: 1, onnotice: () => {} })
    await sql`create table schema_migrations (version integer primary key, name text not null, applied_at timestamptz not null default now())`
    for (const m of POSTGRES_MIGRATIONS.slice(0, 2)) {
      await sql.unsafe(m.sql)
      await sql`insert into schema_migrations (version, name) values (${m.version}, ${m.name})`
    }
    return {
      async insert(events) {
        for (const e of events) {
          const row = values(e).map((v, i) =>
            AUDIT_COLUMNS[i] === 'time' ? new Date(v as number) : AUDIT_COLUMNS[i] === 'tokens_partial' ? v === 1 : v,
          )
          await sql.unsafe(
            `insert into audit_events (${AUDIT_COLUMNS.join(', ')}) values (${AUDIT_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})`,
            row as never[],
          )
        }
      },
      async upgrade() {
        await sql.end()
        const store = new PostgresStore(db.url, createLogger({ level: 'error', format: 'json' }))
        await store.migrate()
        return store
      },
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'nnz-audit-legacy-'))
  const db = new DatabaseSync(join(dir, 'neuronetz.db'))
  db.exec('create table schema_migrations (version integer primary key, name text not null, applied_at integer not null)')
  for (const m of SQLITE_MIGRATIONS.slice(0, 2)) {
    db.exec(m.sql)
    db.prepare('insert into schema_migrations (version, name, applied_at) values (?, ?, ?)').run(m.version, m.name, Date.now())
  }
  return {
    async insert(events) {
      const stmt = db.prepare(`insert into audit_events (${AUDIT_COLUMNS.join(', ')}) values (${AUDIT_COLUMNS.map(() => '?').join(', ')})`)
      for (const e of events) stmt.run(...(values(e) as Array<string | number | null>))
    },
    async upgrade() {
      db.close()
      const store = new SqliteStore(dir)
      await store.migrate()
      return store
    },
  }
}

// The insert above falls back to INSERT whenever a COPY fails, so these go through the COPY alone (but
// the test of which connection takes the batches, which goes through the store as the writer does).
describe('audit COPY, binary format (SPEC §4.10, §7): Postgres takes every batch without the fallback', () => {
  async function migratedStore(): Promise<PostgresStore> {
    const db = await freshDatabase()
    databases.push(db)
    const store = new PostgresStore(db.url, createLogger({ level: 'error', format: 'json' }))
    stores.push(store)
    await store.migrate()
    return store
  }
  /** `events` through one COPY, as the store sends them but with no INSERT to fall back to. */
  async function copyIn(store: PostgresStore, events: AuditEvent[]): Promise<void> {
    const stream = await store.sql.unsafe(AUDIT_COPY_SQL).writable()
    await new Promise<void>((resolve, reject) => {
      stream.once('error', reject)
      stream.once('finish', () => resolve())
      stream.end(auditCopyBinary(events))
    })
  }

  test('every type round-trips: uuid, timestamp, text with control characters and unicode, integers, doubles, booleans, 64-bit sizes, nulls', async () => {
    const store = await migratedStore()
    const events = [
      event(1, { user_agent: 'tab\there\nnewline \\N \\. ünïcödé 😀', error: '', latency_ms: 0.07, ttfb_ms: 1234.56 }),
      event(2, {
        ...NULLABLE_AS_NULL,
        status: 499,
        outcome: 'aborted',
        tokens_partial: true,
      }),
      // Sizes past 32 bits, the largest token counts an int column holds, a time before 2000.
      event(3, {
        bytes_in: 2 ** 40 + 5,
        bytes_out: Number.MAX_SAFE_INTEGER,
        prompt_tokens: 2 ** 31 - 1,
        time: Date.UTC(1999, 11, 31, 23, 59, 59, 999),
      }),
      event(4, { action: 'key.revoke', target: 'k_other', time: base + 4 }),
    ]
    await copyIn(store, events)
    expect(await stored(store)).toEqual([...events].sort((a, b) => a.time - b.time))
    const [row] = await store.sql<
      Array<{ time: Date; bytes_out: string }>
    >`select time, bytes_out::text from audit_events where request_id = 'req-3'`
    expect(row?.time.toISOString()).toBe('1999-12-31T23:59:59.999Z')
    expect(row?.bytes_out).toBe(String(Number.MAX_SAFE_INTEGER))
  })

  test('an event id spelt other than in canonical lower case (upper case, no dashes) is stored as the same UUID', async () => {
    const store = await migratedStore()
    const canonical = [event(6), event(7)]
    const spelt = [
      { ...(canonical[0] as AuditEvent), event_id: (canonical[0] as AuditEvent).event_id.toUpperCase() },
      { ...(canonical[1] as AuditEvent), event_id: (canonical[1] as AuditEvent).event_id.replaceAll('-', '') },
    ]
    await copyIn(store, spelt)
    expect(await stored(store)).toEqual(canonical)
  })

  test('every batch goes through one Postgres backend of its own while the pool serves other queries', async () => {
    const store = await migratedStore()
    // Other queries run through the pool all along, as key look-ups and the last-used updates do.
    let busy = true
    const others = (async () => {
      while (busy) await store.sql`select pg_sleep(0.002)`
    })()
    const copying = new Set<number>()
    for (let i = 0; i < 8; i++) {
      await store.insertAudit([event(60 + i)])
      const backends = await store.sql<Array<{ pid: number }>>`
        select pid from pg_stat_activity where datname = current_database() and query like 'copy audit_events%'`
      for (const { pid } of backends) copying.add(pid)
    }
    busy = false
    await others
    expect(await stored(store)).toHaveLength(8)
    expect(copying.size).toBe(1)
  })

  test('an event id that is not a UUID is refused before anything is sent', () => {
    for (const id of [
      'not-a-uuid',
      '0192f1e2-0000-7000-8000-00000000000',
      '0192f1e2-0000-7000-8000-0000000000000',
      '0192f1e2-0000-7000-8000-0000000000g0',
      '0192f1e2-0000-7000-8000-0000000000é0',
    ])
      expect(() => auditCopyBinary([event(5, { event_id: id })])).toThrow('malformed event id')
  })
})

/** A migrated embedded store whose key watcher counts the times it would expire the whole key cache. */
async function watchedSqlite(prefix: string, opts: SqliteStoreOptions = {}) {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const store = new SqliteStore(dir, opts)
  stores.push(store)
  await store.migrate()
  const watched = { dir, store, resyncs: 0, stop: async () => {} }
  watched.stop = await store.watchKeys(
    () => {},
    () => {
      watched.resyncs++
    },
  )
  return watched
}

describe('the embedded store’s audit thread (SPEC §4.10, §7): off the event loop, and nothing lost if it cannot run', () => {
  test('a thread that cannot start (its module missing): every batch is inserted on the calling thread instead', async () => {
    const store = new SqliteStore(mkdtempSync(join(tmpdir(), 'nnz-audit-thread-')), {
      auditThread: new URL('./no-such-audit-worker.ts', import.meta.url).href,
    })
    stores.push(store)
    await store.migrate()
    await store.insertAudit([event(40), event(41)])
    await store.insertAudit([event(42)])
    expect((await stored(store)).map((e) => e.request_id)).toEqual(['req-40', 'req-41', 'req-42'])
  })

  test('the thread’s commits are not key changes: the key watcher expires the cache only for a change to a key', async () => {
    const watched = await watchedSqlite('nnz-audit-thread-', { auditThread: SQLITE_AUDIT_THREAD })
    const { dir, store } = watched
    try {
      // Audit batches from the thread for 1.5 s: three checks of the watcher, each after audit commits.
      for (let i = 0; i < 15; i++) {
        await store.insertAudit([event(100 + i)])
        await Bun.sleep(100)
      }
      expect(watched.resyncs).toBe(0)
      // Another process (the CLI) revokes a key: seen within a check.
      const cli = new DatabaseSync(join(dir, 'neuronetz.db'))
      cli.exec('pragma busy_timeout = 5000')
      cli.prepare(`insert into api_keys (id, hash, name, created_at, updated_at) values ('k_watch', 'h', 'w', 1, 1)`).run()
      await Bun.sleep(700)
      expect(watched.resyncs).toBe(1)
      cli.prepare(`update api_keys set revoked_at = 2, updated_at = 2 where id = 'k_watch'`).run()
      await Bun.sleep(700)
      expect(watched.resyncs).toBe(2)
      // A use time (last_used_at) is not a change.
      cli.prepare(`update api_keys set last_used_at = 3 where id = 'k_watch'`).run()
      await Bun.sleep(700)
      expect(watched.resyncs).toBe(2)
      cli.close()
    } finally {
      await watched.stop()
    }
  })
})

describe('the embedded store’s key watcher (SPEC §4.5)', () => {
  test('its own key writes are not changes made elsewhere: only another process’s expire the cache', async () => {
    const watched = await watchedSqlite('nnz-key-watch-')
    const { dir, store } = watched
    try {
      // What the admin API does through this store: the key service evicts these in process. Expiring
      // every cached key as well dropped any verification in flight, which then ran argon2 again.
      const key = (id: string) => ({
        id,
        hash: 'h',
        name: id,
        scopes: ['inference' as const],
        allowedModels: [],
        limits: {},
        metadata: {},
        expiresAt: null,
        createdAt: 1,
        updatedAt: 1,
        revokedAt: null,
        lastUsedAt: null,
      })
      await store.insertKey(key('k_own_1'))
      await store.updateKey('k_own_1', { name: 'renamed', limits: { rpm: 5 } })
      await store.revokeKey('k_own_1')
      await Bun.sleep(700)
      expect(watched.resyncs).toBe(0)
      // Another process's change in the same interval as one of ours is still seen.
      const cli = new DatabaseSync(join(dir, 'neuronetz.db'))
      cli.exec('pragma busy_timeout = 5000')
      await store.insertKey(key('k_own_2'))
      cli.prepare(`update api_keys set name = 'cli' where id = 'k_own_2'`).run()
      await Bun.sleep(700)
      expect(watched.resyncs).toBe(1)
      cli.prepare(`update api_keys set revoked_at = 2, updated_at = 2 where id = 'k_own_2'`).run()
      await Bun.sleep(700)
      expect(watched.resyncs).toBe(2)
      cli.close()
      await store.updateKey('k_own_2', { name: 'back' })
      await Bun.sleep(700)
      expect(watched.resyncs).toBe(2)
    } finally {
      await watched.stop()
    }
  })
})
