// Micro-benchmark of the key cache hit path (SPEC §7: "key cache hit path does no argon2"):
// the cost of one authenticate() call for a cached key, in isolation.   bun bench/auth-micro.ts
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Authenticator, LastUsed } from '../src/keys/authenticator.ts'
import { KeyCache } from '../src/keys/cache.ts'
import { Hasher } from '../src/keys/hasher.ts'
import { KeyService } from '../src/keys/service.ts'
import { FailureThrottle } from '../src/keys/throttle.ts'
import { createMetrics } from '../src/metrics/metrics.ts'
import { SqliteStore } from '../src/store/sqlite.ts'

const store = new SqliteStore(mkdtempSync(join(tmpdir(), 'nnz-micro-')))
await store.migrate()
const hasher = new Hasher({ memoryCost: 19456, timeCost: 2, parallelism: 1, concurrency: 2, maxQueue: 10 })
const cache = new KeyCache(300_000)
const lastUsed = new LastUsed()
const auth = new Authenticator({
  store,
  cache,
  hasher,
  throttle: new FailureThrottle(20, 60_000),
  metrics: createMetrics(),
  onUse: (id, at) => lastUsed.touch(id, at),
  shared: false,
})
const { key } = await new KeyService(store, hasher, async () => {}).create({ name: 'micro' })
const headers = new Headers({ authorization: `Bearer ${key}` })
await auth.authenticate(headers, '127.0.0.1')
const N = 200_000
for (let round = 0; round < 3; round++) {
  const t0 = performance.now()
  for (let i = 0; i < N; i++) await auth.authenticate(headers, '127.0.0.1')
  process.stdout.write(`cache hit: ${(((performance.now() - t0) * 1000) / N).toFixed(2)} µs per authenticate()\n`)
}
