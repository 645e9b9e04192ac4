// SPEC §4.10 at scale: audit insert throughput (events per second, batches of 500 as the writer sends
// them) and the time of "a key's recent events" at one million rows, on both stores.
//   bun bench/audit.ts [rows]      prints one JSON object
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { AuditEvent } from '../src/audit/event.ts'
import { createLogger } from '../src/log.ts'
import { PostgresStore } from '../src/store/postgres.ts'
import { SqliteStore } from '../src/store/sqlite.ts'
import type { Store } from '../src/store/store.ts'
import { sampleAuditEvent } from '../test/helpers/audit-events.ts'
import { freshDatabase } from '../test/helpers/infra.ts'

const rows = Number(process.argv[2] ?? 1_000_000)
const keys = Array.from({ length: 1000 }, (_, i) => `benchkey${String(i).padStart(4, '0')}`)

function event(i: number, start: number): AuditEvent {
  return sampleAuditEvent(i, start + i, { key_id: keys[i % keys.length] as string })
}

async function measure(store: Store) {
  await store.migrate()
  const start = Date.now() - rows
  const t0 = performance.now()
  for (let i = 0; i < rows; i += 500) {
    const batch: AuditEvent[] = []
    for (let j = i; j < Math.min(rows, i + 500); j++) batch.push(event(j, start))
    await store.insertAudit(batch)
  }
  const insertPerSecond = rows / ((performance.now() - t0) / 1000)
  const times: number[] = []
  for (let q = 0; q < 30; q++) {
    const t = performance.now()
    await store.queryAudit({ keyId: keys[q] as string, limit: 100 })
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  return { insert_events_per_s: Math.round(insertPerSecond), key_query_p50_ms: times[15], key_query_max_ms: times.at(-1) }
}

const db = await freshDatabase()
const pg = new PostgresStore(db.url, createLogger({ level: 'error', format: 'json' }))
const postgres = await measure(pg)
await pg.close()
await db.drop()
const liteDir = mkdtempSync(join(tmpdir(), 'nnz-audit-bench-'))
const lite = new SqliteStore(liteDir)
const sqlite = await measure(lite)
await lite.close()
// A million rows take about 230 MB: they go with the run, as the Postgres database does.
rmSync(liteDir, { recursive: true, force: true })
process.stdout.write(`${JSON.stringify({ rows, postgres, sqlite })}\n`)
process.exit(0)
