// SPEC §3.1, §4.5, §9: two gateway processes sharing a real Postgres and Redis. Concurrent
// migrations, the shared key cache, revocation across replicas, and a Postgres restart under the
// revocation listener.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { readdirSync } from 'node:fs'
import { FakeOllama } from './helpers/fake-ollama.ts'
import { type GatewayProcess, startGateway } from './helpers/gateway.ts'
import { type FreshDatabase, freshDatabase, freshRedis, metricValue } from './helpers/infra.ts'

const fake = new FakeOllama()
let db: FreshDatabase
let a: GatewayProcess
let b: GatewayProcess
let env: Record<string, string>

beforeAll(async () => {
  fake.start()
  db = await freshDatabase()
  const adminKey = (await import('../src/keys/format.ts')).newKey().token
  // KEY_CACHE_TTL_S is long so that only a notification, never expiry, can explain a refusal.
  env = {
    OLLAMA_BASE_URL: fake.url,
    DATABASE_URL: db.url,
    REDIS_URL: await freshRedis(12),
    KEY_CACHE_TTL_S: '300',
    BOOTSTRAP_ADMIN_KEY: adminKey,
  }
  // Both replicas migrate the same empty database at once.
  ;[a, b] = await Promise.all([startGateway({ env }), startGateway({ env })])
}, 30_000)
afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()])
  await db?.drop()
  await fake.stop()
}, 30_000)

const use = (gw: GatewayProcess, key: string) => fetch(`${gw.url}/api/tags`, { headers: { authorization: `Bearer ${key}` } })
async function create(name: string): Promise<{ key: string; id: string }> {
  const res = await fetch(`${a.url}/admin/keys`, {
    method: 'POST',
    headers: { ...a.auth, 'content-type': 'application/json' },
    body: JSON.stringify({ name }),
  })
  expect(res.status).toBe(201)
  return res.json()
}
async function metrics(gw: GatewayProcess): Promise<string> {
  return (await fetch(`${gw.url}/metrics`, { headers: gw.auth })).text()
}
/** Polls until `gw` refuses `key`; returns how long that took after `since`. */
async function refusedAfter(gw: GatewayProcess, key: string, since: number, limitMs: number): Promise<number> {
  for (;;) {
    const res = await use(gw, key)
    await res.arrayBuffer()
    if (res.status === 401) return performance.now() - since
    if (performance.now() - since > limitMs) return Number.POSITIVE_INFINITY
    await Bun.sleep(5)
  }
}

describe('two replicas on one Postgres and Redis', () => {
  test('both came up on the same empty database, migrated once', async () => {
    for (const gw of [a, b]) {
      const ready = await fetch(`${gw.url}/readyz`)
      expect(ready.status).toBe(200)
      expect(await ready.json()).toMatchObject({ store: { kind: 'postgres', state: 'up' }, redis: { state: 'up' } })
    }
    const postgres = (await import('postgres')).default
    const sql = postgres(db.url, { max: 1 })
    const versions = await sql`select version from schema_migrations`
    await sql.end()
    expect(versions.map((r) => r.version)).toEqual([1, 2, 3])
  })

  test('creating a key notifies no replica, so its first verification stays cached (one argon2)', async () => {
    const receivedBefore = metricValue(await metrics(b), 'nnz_revocations_received_total')
    const argon2Before = metricValue(await metrics(a), 'nnz_argon2_verifications_total')
    const { key } = await create('no-notify')
    // The first use verifies while a notification of the creation, if there were one, would arrive
    // and evict the fill; the uses after it must all be cache hits.
    for (let i = 0; i < 5; i++) expect((await use(a, key)).status).toBe(200)
    await Bun.sleep(200)
    expect((await use(a, key)).status).toBe(200)
    expect(metricValue(await metrics(a), 'nnz_argon2_verifications_total')).toBe(argon2Before + 1)
    expect(metricValue(await metrics(b), 'nnz_revocations_received_total')).toBe(receivedBefore)
  })

  test('a key verified on one replica is a Redis cache hit on the other: no argon2 there', async () => {
    const { key } = await create('shared-cache')
    expect((await use(a, key)).status).toBe(200)
    const before = metricValue(await metrics(b), 'nnz_argon2_verifications_total')
    const redisHitsBefore = metricValue(await metrics(b), 'nnz_key_cache_hits_total', { layer: 'redis' })
    expect((await use(b, key)).status).toBe(200)
    const after = await metrics(b)
    expect(metricValue(after, 'nnz_argon2_verifications_total')).toBe(before)
    expect(metricValue(after, 'nnz_key_cache_hits_total', { layer: 'redis' })).toBe(redisHitsBefore + 1)
  })

  test('a key revoked through replica A is refused by replica B within 1 s, over 20 trials', async () => {
    const latencies: number[] = []
    for (let i = 0; i < 20; i++) {
      const { key, id } = await create(`revoke-${i}`)
      expect((await use(b, key)).status).toBe(200)
      expect((await use(b, key)).status).toBe(200) // now in B's in-process cache
      const since = performance.now()
      const revoked = await fetch(`${a.url}/admin/keys/${id}/revoke`, { method: 'POST', headers: a.auth })
      expect(revoked.status).toBe(200)
      latencies.push(await refusedAfter(b, key, since, 5000))
    }
    latencies.sort((x, y) => x - y)
    process.stderr.write(
      `revocation A→B over ${latencies.length} trials: p50 ${latencies[10]?.toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms\n`,
    )
    // SPEC §4.5 is a behaviour, not a benchmark: every trial refused well inside the cache TTL, and
    // within the specified second. bench/revocation.ts reports the distribution.
    expect(latencies.every((ms) => ms < 1000)).toBe(true)
    expect(metricValue(await metrics(b), 'nnz_revocations_received_total')).toBeGreaterThanOrEqual(20)
  })

  test('a third replica routes from the shared discovery snapshot while its own first poll is slow (SPEC §4.6)', async () => {
    // A and B have polled the fake and written what it holds to Redis. The fake now takes 4 s over its
    // listings: the new replica must not wait for them to serve.
    fake.behaviour = { ...fake.behaviour, listDelayMs: 4000 }
    let c: GatewayProcess | undefined
    try {
      c = await startGateway({ env })
      expect(c.logs.find((l) => l.msg === 'discovery snapshot loaded')).toMatchObject({ backends: ['default'] })
      const chat = await fetch(`${c.url}/api/chat`, {
        method: 'POST',
        headers: { ...c.auth, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: false }),
      })
      expect(chat.status).toBe(200)
      expect(chat.headers.get('x-backend')).toBe('default')
      expect((await chat.json()).done).toBe(true)
      // Its own probe has not answered yet: the models it routed by came from the snapshot.
      const listed = await (await fetch(`${c.url}/admin/backends`, { headers: c.auth })).json()
      expect(listed.backends[0]).toMatchObject({ name: 'default', health: 'unknown' })
      expect(listed.backends[0].models).toContain('registry.ollama.ai/library/llama3.2:latest')
      expect((await fetch(`${c.url}/readyz`)).status).toBe(503)
      // Then the probe answers and takes over.
      await c.waitForLog((l) => l.msg === 'backend up', 10_000)
      expect((await fetch(`${c.url}/readyz`)).status).toBe(200)
    } finally {
      fake.behaviour = { ...fake.behaviour, listDelayMs: 0 }
      await c?.stop()
    }
  }, 30_000)

  test('after Postgres restarts under B, a key revoked through A is still refused by B', async () => {
    const { key, id } = await create('survivor')
    expect((await use(b, key)).status).toBe(200)
    await restartPostgres()
    await b.waitForLog((l) => l.msg === 'revocation listener reconnected; key cache cleared', 20_000)
    // B still answers from its cache meanwhile; A's pool reconnects on its own.
    let revoked: Response | undefined
    for (let i = 0; i < 50 && revoked?.status !== 200; i++) {
      revoked = await fetch(`${a.url}/admin/keys/${id}/revoke`, { method: 'POST', headers: a.auth }).catch(() => undefined)
      if (revoked?.status !== 200) await Bun.sleep(200)
    }
    expect(revoked?.status).toBe(200)
    expect(await refusedAfter(b, key, performance.now(), 5000)).toBeLessThan(5000)
  })
})

/** Restarts the local Postgres the tests use (PG_RESTART_COMMAND overrides, e.g. for a remote one). */
async function restartPostgres(): Promise<void> {
  const command = process.env.PG_RESTART_COMMAND
    ? ['sh', '-c', process.env.PG_RESTART_COMMAND]
    : ['pg_ctlcluster', '--skip-systemctl-redirect', readdirSync('/etc/postgresql')[0] as string, 'main', 'restart']
  const proc = Bun.spawnSync(command)
  if (proc.exitCode !== 0)
    throw new Error(`cannot restart Postgres with '${command.join(' ')}': ${proc.stderr.toString()} (set PG_RESTART_COMMAND)`)
}
