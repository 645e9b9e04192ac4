// SPEC §4.1: /healthz answers whenever the process runs; /readyz only when the store, Redis (if
// configured) and at least one backend are reachable. Both name each dependency and its state.
import { Elysia, t } from 'elysia'
import type { Services } from '../services.ts'
import { COMMIT, VERSION } from '../version.ts'

const State = t.Union([t.Literal('up'), t.Literal('down'), t.Literal('unknown')])
const Dependency = t.Object({ state: State, detail: t.Optional(t.String()) })
const Readiness = t.Object({
  status: t.Union([t.Literal('ready'), t.Literal('not_ready')]),
  store: t.Composite([t.Object({ kind: t.String() }), Dependency]),
  redis: t.Optional(Dependency),
  backends: t.Array(t.Composite([t.Object({ name: t.String() }), Dependency])),
})

async function probeStore(services: Services): Promise<{ state: 'up' | 'down'; detail?: string }> {
  if (!services.storeReady()) return { state: 'down', detail: 'not migrated yet; retrying' }
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 1s')), 1000))
  try {
    await Promise.race([services.store.ping(), timeout])
    return { state: 'up' }
  } catch (err) {
    return { state: 'down', detail: (err as Error).message }
  }
}

export function healthRoutes(services: Services) {
  const { backends } = services
  return new Elysia({ name: 'health' })
    .get(
      '/healthz',
      () => ({ status: 'ok' as const, version: VERSION, commit: COMMIT, uptime_s: Math.round((Date.now() - services.startedAt) / 1000) }),
      {
        detail: { tags: ['health'], summary: 'Liveness: 200 whenever the process runs', security: [] },
        response: t.Object({ status: t.Literal('ok'), version: t.String(), commit: t.String(), uptime_s: t.Number() }),
      },
    )
    .get(
      '/readyz',
      async ({ set }) => {
        const store = { kind: services.store.kind, ...(await probeStore(services)) }
        const redis = services.redis
          ? {
              state: services.redis.status === 'ready' ? ('up' as const) : ('down' as const),
              ...(services.redis.status === 'ready' ? {} : { detail: services.redis.status }),
            }
          : undefined
        const backendStates = backends.all.map((b) => ({ name: b.name, state: b.health, ...(b.lastError ? { detail: b.lastError } : {}) }))
        const ready = store.state === 'up' && (!redis || redis.state === 'up') && backends.anyUp()
        set.status = ready ? 200 : 503
        return { status: ready ? ('ready' as const) : ('not_ready' as const), store, ...(redis ? { redis } : {}), backends: backendStates }
      },
      {
        detail: { tags: ['health'], summary: 'Readiness: 200 only when the store, Redis and a backend are reachable', security: [] },
        response: { 200: Readiness, 503: Readiness },
      },
    )
}
