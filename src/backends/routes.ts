// SPEC §4.11: GET /admin/backends (health, models, loaded models, in flight, queue, breaker) and
// POST /admin/backends/refresh (poll every backend now).
import { t } from 'elysia'
import { adminPlugin } from '../keys/guard.ts'
import type { Services } from '../services.ts'

const BackendView = t.Object({
  name: t.String(),
  url: t.String({ description: 'without credentials' }),
  health: t.Union([t.Literal('unknown'), t.Literal('up'), t.Literal('down')]),
  in_flight: t.Number(),
  queued: t.Number(),
  breaker: t.Union([t.Literal('closed'), t.Literal('open'), t.Literal('half_open')]),
  latency_ms: t.Optional(t.Number()),
  last_error: t.Optional(t.String()),
  last_checked_at: t.Optional(t.String()),
  models: t.Array(t.String()),
  loaded_models: t.Array(t.String()),
  disk_bytes: t.Number(),
})
const List = t.Object({ backends: t.Array(BackendView) })

export function adminBackendRoutes(services: Services) {
  const view = () => ({ backends: services.backends.all.map((b) => b.describe()) as Array<typeof BackendView.static> })
  return adminPlugin(services, 'admin-backends')
    .get('/backends', view, { response: List, detail: { tags: ['admin'], summary: 'Backends: health, models, load, queue, breaker' } })
    .post(
      '/backends/refresh',
      async () => {
        await services.discovery.pollAll(true)
        return view()
      },
      { response: List, detail: { tags: ['admin'], summary: 'Poll every backend now' } },
    )
}
