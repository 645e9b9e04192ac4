// SPEC §4.12: GET /metrics in Prometheus text format; scope `admin` unless METRICS_PUBLIC=true (§4.3).
import { Elysia } from 'elysia'
import { requireScope } from '../keys/guard.ts'
import { OLLAMA_ERROR } from '../proxy/examples.ts'
import { requestIdOf } from '../proxy/headers.ts'
import type { Services } from '../services.ts'

export function metricsRoutes(services: Services) {
  return new Elysia({ name: 'metrics' }).get(
    '/metrics',
    async ({ request }) => {
      if (!services.config.metricsPublic) await requireScope(services, request, 'admin')
      return new Response(services.metrics.registry.render(), {
        headers: { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'x-request-id': requestIdOf(request) },
      })
    },
    {
      detail: {
        tags: ['operations'],
        summary: 'Prometheus metrics (scope admin unless METRICS_PUBLIC=true)',
        responses: {
          200: { description: 'Prometheus text format 0.0.4', content: { 'text/plain': {} } },
          401: { description: 'No valid key', content: { 'application/json': { schema: OLLAMA_ERROR } } },
          403: { description: 'The key lacks the `admin` scope', content: { 'application/json': { schema: OLLAMA_ERROR } } },
        },
      },
    },
  )
}
