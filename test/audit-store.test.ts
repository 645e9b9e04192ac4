// SPEC §4.10: the audit insert on both stores, against real Postgres and SQLite. Postgres takes batches
// through COPY (text format), so every value must survive its escaping; a batch that was already
// stored, wholly or in part, is inserted again without error and without duplicates, flagged as a
// possible repeat or not.
import { afterAll, describe, expect, test } from 'bun:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AuditEvent } from '../src/audit/event.ts'
import { createLogger } from '../src/log.ts'
import { PostgresStore } from '../src/store/postgres.ts'
import { SqliteStore } from '../src/store/sqlite.ts'
import type { Store } from '../src/store/store.ts'
import { sampleAuditEvent } from './helpers/audit-events.ts'
import { type FreshDatabase, freshDatabase } from './helpers/infra.ts'

const base = Date.UTC(2026, 10, 26, 12, 0, 0)

function event(i: number, fields: Partial<AuditEvent> = {}): AuditEvent {
  return sampleAuditEvent(i, base + i, { key_id: 'k_audit_store', ...fields })
}

async function stored(store: Store): Promise<AuditEvent[]> {
  const { items } = await store.queryAudit({ keyId: 'k_audit_store', limit: 100 })
  return items.map(({ seq: _seq, ...rest }) => rest as AuditEvent).sort((a, b) => a.time - b.time)
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
})
