// SPEC §4.1: /healthz answers whenever the process runs; /readyz only when the store, Redis (if
// configured) and at least one backend are reachable. Both name each dependency and its state.
import { Elysia, t } from 'elysia'
import type { Services } from '../services.ts'
import { COMMIT, VERSION } from '../version.ts'

const Dependency = t.Object({ state: t.Union([t.Literal('up'), t.Literal('down'), t.Literal('unknown')]), detail: t.Optional(t.String()) })

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
      ({ set }) => {
        const backendStates = backends.all.map((b) => ({
          name: b.name,
          state: b.health,
          ...(b.lastError ? { detail: b.lastError } : {}),
        }))
        const ready = backends.anyUp()
        set.status = ready ? 200 : 503
        return { status: ready ? ('ready' as const) : ('not_ready' as const), backends: backendStates }
      },
      {
        detail: { tags: ['health'], summary: 'Readiness: 200 only when every dependency is reachable', security: [] },
        response: {
          200: t.Object({ status: t.Literal('ready'), backends: t.Array(t.Composite([t.Object({ name: t.String() }), Dependency])) }),
          503: t.Object({ status: t.Literal('not_ready'), backends: t.Array(t.Composite([t.Object({ name: t.String() }), Dependency])) }),
        },
      },
    )
}
