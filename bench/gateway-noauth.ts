// Benchmark only: the gateway with authentication replaced by an allow-all stand-in, to measure what
// the key check costs (issue: "auth on vs the gateway without auth, in the same run"). Not shipped:
// there is deliberately no configuration switch that turns authentication off.
import { run } from '../src/cli.ts'
import { bunRuntime } from '../src/runtime/bun.ts'
import type { KeyRecord } from '../src/store/store.ts'

const open: KeyRecord = {
  id: 'benchnoauth0',
  hash: '',
  name: 'bench: no auth',
  scopes: ['admin'],
  allowedModels: [],
  limits: {},
  metadata: {},
  expiresAt: null,
  createdAt: 0,
  updatedAt: 0,
  revokedAt: null,
  lastUsedAt: null,
}

await run(Bun.argv.slice(2), process.env, bunRuntime, false, { auth: { authenticate: async () => open } })
