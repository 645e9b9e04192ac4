// SPEC §4.10: the audit log never loses an event. Under a steady load, Postgres is stopped for 10 s
// and started again: afterwards the audit rows equal the requests served, exactly, with and without
// the disk spill engaged, and across a SIGTERM in the middle of the outage.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import postgres from 'postgres'
import { FakeOllama } from './helpers/fake-ollama.ts'
import { type GatewayProcess, startGateway } from './helpers/gateway.ts'
import { freshDatabase, freshRedis } from './helpers/infra.ts'

const fake = new FakeOllama({ record: false })
beforeAll(() => {
  fake.start()
})
afterAll(async () => {
  pg('start')
  await fake.stop()
}, 30_000)

function pg(action: 'start' | 'stop'): void {
  const command = process.env.PG_RESTART_COMMAND
    ? ['sh', '-c', `${process.env.PG_RESTART_COMMAND.replace(/restart$/, action)}`]
    : ['pg_ctlcluster', '--skip-systemctl-redirect', readdirSync('/etc/postgresql')[0] as string, 'main', action]
  const proc = Bun.spawnSync(command)
  const said = `${proc.stdout.toString()}${proc.stderr.toString()}`
  if (proc.exitCode !== 0 && !/already|not running/i.test(said)) throw new Error(`cannot ${action} Postgres: ${said}`)
}

async function waitPostgres(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const sql = postgres(url, { max: 1, connect_timeout: 1, onnotice: () => {} })
    try {
      await sql`select 1`
      return
    } catch {
      await Bun.sleep(200)
    } finally {
      await sql.end({ timeout: 1 }).catch(() => {})
    }
  }
}

/** Sends `rate` requests per second for `seconds`; counts the ones answered (any HTTP status). */
function load(target: () => string, key: string, rate: number, seconds: number): Promise<{ served: number; refused: number }> {
  let served = 0
  let refused = 0
  const pending: Promise<void>[] = []
  const total = rate * seconds
  const started = performance.now()
  return new Promise((resolve) => {
    let sent = 0
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate))
      for (; sent < due; sent++) {
        pending.push(
          fetch(`${target()}/api/chat`, {
            method: 'POST',
            headers: { authorization: `Bearer ${key}` },
            body: '{"model":"llama3.2","messages":[],"stream":false}',
          })
            .then(async (r) => {
              await r.arrayBuffer()
              served++
            })
            .catch(() => {
              refused++
            }),
        )
      }
      if (sent < total) setTimeout(tick, 5)
      else Promise.all(pending).then(() => resolve({ served, refused }))
    }
    tick()
  })
}

async function auditRows(url: string, keyId: string, expected: number): Promise<number> {
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    let count = -1
    for (let i = 0; i < 100 && count !== expected; i++) {
      const [row] = await sql<
        Array<{ n: number }>
      >`select count(*)::int as n from audit_events where key_id = ${keyId} and path = '/api/chat'`
      count = row?.n ?? 0
      if (count !== expected) await Bun.sleep(200)
    }
    return count
  } finally {
    await sql.end()
  }
}

async function setup(extra: Record<string, string>) {
  const db = await freshDatabase()
  const env = { OLLAMA_BASE_URL: fake.url, DATABASE_URL: db.url, REDIS_URL: await freshRedis(9), KEY_CACHE_TTL_S: '600', ...extra }
  const gw = await startGateway({ env })
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { ...gw.auth, 'content-type': 'application/json' },
    body: '{"name":"load"}',
  })
  const { key, id } = await res.json()
  await (await fetch(`${gw.url}/api/tags`, { headers: { authorization: `Bearer ${key}` } })).arrayBuffer()
  return { db, env, gw, key, id }
}

describe('audit durability (SPEC §4.10)', () => {
  for (const [name, bufferSize] of [
    ['buffer only', '10000'],
    ['disk spill engaged', '100'],
  ] as const) {
    test(`Postgres down for 10 s under 200 req/s: rows equal requests served (${name})`, async () => {
      const { db, gw, key, id } = await setup({ AUDIT_BUFFER_SIZE: bufferSize })
      try {
        const running = load(() => gw.url, key, 200, 15)
        await Bun.sleep(2000)
        pg('stop')
        await Bun.sleep(10_000)
        pg('start')
        const { served } = await running
        await waitPostgres(db.url)
        const rows = await auditRows(db.url, id, served)
        process.stderr.write(`audit (${name}): ${served} served, ${rows} rows\n`)
        expect(served).toBeGreaterThan(2500)
        expect(rows).toBe(served)
        if (bufferSize === '100') expect(gw.logs.some((l) => l.msg === 'audit buffer full; spilling to disk')).toBe(true)
      } finally {
        pg('start')
        await gw.stop()
        await db.drop()
      }
    }, 60_000)
  }

  test('SIGTERM during the outage spills to disk; the next start replays it: rows equal requests served', async () => {
    const { db, env, gw, key, id } = await setup({ AUDIT_BUFFER_SIZE: '100' })
    let current: GatewayProcess = gw
    try {
      const running = load(() => current.url, key, 200, 6)
      await Bun.sleep(1000)
      pg('stop')
      await Bun.sleep(2000)
      expect(await gw.stop('SIGTERM')).toBe(0)
      expect(
        gw.logs.some(
          (l) =>
            l.msg === 'audit store unreachable at shutdown; events spilled to disk for replay' ||
            l.msg === 'audit buffer full; spilling to disk',
        ),
      ).toBe(true)
      const { served } = await running
      pg('start')
      await waitPostgres(db.url)
      current = await startGateway({ env: { ...env, DATA_DIR: gw.dataDir, BOOTSTRAP_ADMIN_KEY: gw.adminKey } })
      // Around the SIGTERM a request can be answered by the gateway while its client sees the connection
      // close: it was served, and audited. The gateway's own account is its request log line (stdout,
      // independent of the audit path); the client's count is a lower bound.
      const answered = gw.logs.filter((l) => l.msg === 'request' && l.path === '/api/chat').length
      const rows = await auditRows(db.url, id, answered)
      process.stderr.write(`audit (SIGTERM mid-outage): ${answered} answered (${served} seen by the client), ${rows} rows\n`)
      expect(served).toBeGreaterThan(300)
      expect(rows).toBe(answered)
      expect(rows).toBeGreaterThanOrEqual(served)
      expect(readdirSync(`${gw.dataDir}/audit-spill`)).toEqual([])
    } finally {
      pg('start')
      await current.stop()
      await db.drop()
    }
  }, 60_000)

  // Embedded mode writes audit batches on a thread of its own (store/sqlite-audit.ts): a batch handed
  // to it is the writer's until the thread has committed it, and shutdown waits for the last one.
  test('embedded: SIGTERM under 300 req/s; every request answered is in the SQLite audit log', async () => {
    const gw = await startGateway({ env: { OLLAMA_BASE_URL: fake.url } })
    try {
      const made = await fetch(`${gw.url}/admin/keys`, {
        method: 'POST',
        headers: { ...gw.auth, 'content-type': 'application/json' },
        body: '{"name":"load"}',
      })
      const { key, id } = await made.json()
      const running = load(() => gw.url, key, 300, 4)
      await Bun.sleep(2500)
      expect(await gw.stop('SIGTERM')).toBe(0)
      const { served } = await running
      // As above, the gateway's own account of what it answered is its request log.
      const answered = gw.logs.filter((l) => l.msg === 'request' && l.path === '/api/chat').length
      const db = new DatabaseSync(join(gw.dataDir, 'neuronetz.db'), { readOnly: true })
      const row = db.prepare(`select count(*) as n from audit_events where key_id = ? and path = '/api/chat'`).get(id) as { n: number }
      db.close()
      process.stderr.write(`audit (embedded, SIGTERM under load): ${answered} answered (${served} seen by the client), ${row.n} rows\n`)
      expect(served).toBeGreaterThan(500)
      expect(row.n).toBe(answered)
      expect(row.n).toBeGreaterThanOrEqual(served)
      expect(gw.logs.some((l) => l.msg === 'audit thread stopped; audit batches are inserted on the event loop from now on')).toBe(false)
    } finally {
      await gw.stop()
    }
  }, 30_000)
})
