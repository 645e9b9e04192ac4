// The Ollama and OpenAI surfaces as Elysia routes. Bodies are not parsed by Elysia (`parse: 'none'`):
// a schema would silently drop unknown fields (STACK), and the bytes must reach Ollama unchanged.
import { Elysia } from 'elysia'
import { errorResponse, GatewayError } from '../errors.ts'
import type { Services } from '../services.ts'
import { ENDPOINTS, KNOWN_PATHS } from './endpoints.ts'
import { requestBodyDoc } from './examples.ts'
import { requestIdOf } from './headers.ts'

export function proxyRoutes(services: Services) {
  const { proxy, runtime } = services
  const app = new Elysia({ name: 'proxy' })

  // SPEC §4.8: clients' health checks (the Go client's heartbeat) expect exactly this text.
  const running = () => new Response('Ollama is running', { headers: { 'content-type': 'text/plain; charset=utf-8' } })
  app.get('/', running, { detail: { tags: ['ollama'], summary: 'Heartbeat', security: [] } })
  app.head('/', running, { detail: { hide: true } })

  for (const endpoint of ENDPOINTS) {
    app.route(
      endpoint.method,
      endpoint.path,
      ({ request }) => {
        const url = new URL(request.url)
        return proxy(endpoint, request, {
          requestId: requestIdOf(request),
          clientIp: runtime.clientIp(request),
          url,
          userAgent: request.headers.get('user-agent'),
        })
      },
      {
        parse: 'none',
        detail: {
          tags: [endpoint.path.startsWith('/v1') ? 'openai' : 'ollama'],
          summary: endpoint.summary,
          ...(endpoint.body === 'json' ? { requestBody: requestBodyDoc(endpoint.path) } : {}),
        },
      },
    )
  }

  // UPSTREAM §3: Ollama answers 405 to a known path with the wrong method.
  for (const path of KNOWN_PATHS) {
    const allowed = ENDPOINTS.filter((e) => e.path === path).map((e) => e.method)
    app.all(
      path,
      ({ request }) =>
        errorResponse(
          new GatewayError('method_not_allowed', `method ${request.method} not allowed on ${path}; use ${allowed.join(' or ')}`, {
            allow: allowed.join(', '),
          }),
          path.startsWith('/v1') ? 'openai' : 'ollama',
          requestIdOf(request),
        ),
      { parse: 'none', detail: { hide: true } },
    )
  }
  return app
}
