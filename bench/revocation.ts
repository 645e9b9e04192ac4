// SPEC §7: "revocation reaches every replica within 1 s (p99), measured with two replicas".
// Starts two gateways on one fresh Postgres database and Redis, then, per trial: create a key on A,
// warm it into B's cache, revoke it on A, and time until B refuses it. Prints one JSON object.
//   bun bench/revocation.ts [trials]
import { rmSync } from 'node:fs'
import { FakeOllama } from '../test/helpers/fake-ollama.ts'
import { startGateway } from '../test/helpers/gateway.ts'
import { freshDatabase, freshRedis } from '../test/helpers/infra.ts'

const trials = Number(process.argv[2] ?? 100)
const fake = new FakeOllama({ record: false }).start()
const db = await freshDatabase()
const env = { OLLAMA_BASE_URL: fake.url, DATABASE_URL: db.url, REDIS_URL: await freshRedis(14), KEY_CACHE_TTL_S: '300' }
const a = await startGateway({ env })
const b = await startGateway({ env: { ...env, BOOTSTRAP_ADMIN_KEY: a.adminKey } })
const use = (key: string) => fetch(`${b.url}/api/version`, { headers: { authorization: `Bearer ${key}` } })

const latencies: number[] = []
let missed = 0
for (let i = 0; i < trials; i++) {
  const created = await (
    await fetch(`${a.url}/admin/keys`, {
      method: 'POST',
      headers: { ...a.auth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `rev-${i}` }),
    })
  ).json()
  await (await use(created.key)).arrayBuffer()
  await (await use(created.key)).arrayBuffer()
  const since = performance.now()
  await (await fetch(`${a.url}/admin/keys/${created.id}/revoke`, { method: 'POST', headers: a.auth })).arrayBuffer()
  for (;;) {
    const res = await use(created.key)
    await res.arrayBuffer()
    if (res.status === 401) {
      latencies.push(performance.now() - since)
      break
    }
    if (performance.now() - since > 5000) {
      missed++
      break
    }
  }
}
latencies.sort((x, y) => x - y)
const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? Number.NaN
process.stdout.write(`${JSON.stringify({ trials, missed, p50_ms: at(50), p99_ms: at(99), max_ms: latencies.at(-1) })}\n`)
await Promise.all([a.stop(), b.stop()])
// Their data directories were made for this run (audit spill files only): nothing to keep.
for (const gw of [a, b]) rmSync(gw.dataDir, { recursive: true, force: true })
await db.drop()
await fake.stop()
process.exit(0)
