// Micro-benchmarks of hot-path work, in isolation (SPEC §7):
//   - a cached key's authenticate() (no argon2);
//   - the routing decision for a model over three backends (SPEC §4.7);
//   - an audit event's encoding for Postgres's COPY (SPEC §4.10), per event in batches of 500.
// Prints one JSON object with microseconds per call.   bun bench/micro.ts
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BackendRegistry } from '../src/backends/registry.ts'
import { loadConfig } from '../src/config.ts'
import { Authenticator, LastUsed } from '../src/keys/authenticator.ts'
import { KeyCache } from '../src/keys/cache.ts'
import { Hasher } from '../src/keys/hasher.ts'
import { KeyService } from '../src/keys/service.ts'
import { FailureThrottle } from '../src/keys/throttle.ts'
import { createMetrics } from '../src/metrics/metrics.ts'
import { auditCopyBinary } from '../src/store/pg-copy.ts'
import { SqliteStore } from '../src/store/sqlite.ts'
import { sampleAuditEvent } from '../test/helpers/audit-events.ts'

async function perCall(n: number, fn: () => unknown): Promise<number> {
  let best = Number.POSITIVE_INFINITY
  for (let round = 0; round < 3; round++) {
    const t0 = performance.now()
    for (let i = 0; i < n; i++) await fn()
    best = Math.min(best, ((performance.now() - t0) * 1000) / n)
  }
  return best
}

const dataDir = mkdtempSync(join(tmpdir(), 'nnz-micro-'))
const store = new SqliteStore(dataDir)
await store.migrate()
const hasher = new Hasher({ memoryCost: 19456, timeCost: 2, parallelism: 1, concurrency: 2, maxQueue: 10 })
const lastUsed = new LastUsed()
const auth = new Authenticator({
  store,
  cache: new KeyCache(300_000),
  hasher,
  throttle: new FailureThrottle(20, 60_000),
  metrics: createMetrics(),
  onUse: (id, at) => lastUsed.touch(id, at),
  shared: false,
})
const { key } = await new KeyService(store, hasher, async () => {}).create({ name: 'micro' })
const headers = new Headers({ authorization: `Bearer ${key}` })
await auth.authenticate(headers, '127.0.0.1')
const authUs = await perCall(200_000, () => auth.authenticate(headers, '127.0.0.1'))

const registry = new BackendRegistry(loadConfig({ OLLAMA_BACKENDS: 'a=http://h1:1,b=http://h2:1,c=http://h3:1' }))
registry.all.forEach((b, i) => {
  b.markUp(1)
  b.models = new Set(['registry.ollama.ai/library/llama3.2:latest', `registry.ollama.ai/library/m${i}:latest`])
  if (i === 1) b.loaded = new Set(['registry.ollama.ai/library/llama3.2:latest'])
})
const routeUs = await perCall(500_000, () => registry.forModel('llama3.2'))
// Batches as the audit writer sends them at saturation, with the fields a proxied chat fills.
const now = Date.now()
const batches = Array.from({ length: 20 }, (_, b) =>
  Array.from({ length: 500 }, (_, i) =>
    sampleAuditEvent(b * 500 + i, now + i, { request_id: crypto.randomUUID(), key_id: 'iGZO2k4yYxxH', user_agent: null }),
  ),
)
let batch = 0
const encodeUs = (await perCall(2_000, () => auditCopyBinary(batches[batch++ % batches.length] ?? []))) / 500
process.stdout.write(`${JSON.stringify({ auth_cache_hit_us: authUs, route_decision_us: routeUs, audit_encode_us: encodeUs })}\n`)
await store.close()
rmSync(dataDir, { recursive: true, force: true })
