// The Ollama and OpenAI surfaces as Elysia routes. Bodies are not parsed by Elysia (`parse: 'none'`):
// a schema would silently drop unknown fields (STACK), and the bytes must reach Ollama unchanged.
import { Elysia } from 'elysia'
import { dialectOf, errorResponse, GatewayError } from '../errors.ts'
import type { Services } from '../services.ts'
import { ENDPOINTS, KNOWN_PATHS } from './endpoints.ts'
import { requestBodyDoc, responsesDoc, tagOf } from './examples.ts'
import { requestIdFrom, requestIdOf } from './headers.ts'

export function proxyRoutes(services: Services) {
  const { proxy, clientIp } = services
  const app = new Elysia({ name: 'proxy' })

  for (const endpoint of ENDPOINTS) {
    app.route(
      endpoint.method,
      endpoint.path,
      ({ request }) => {
        const { url, headers } = request
        // The server hands an absolute URL with its path already normalized (dot segments resolved):
        // path and query are cut from it rather than parsed into a URL object on every request.
        const start = url.indexOf('/', url.indexOf('//') + 2)
        const query = url.indexOf('?', start)
        return proxy(endpoint, request, {
          requestId: requestIdFrom(headers),
          clientIp: clientIp(request),
          path: query === -1 ? url.slice(start) : url.slice(start, query),
          search: query === -1 ? '' : url.slice(query),
          userAgent: headers.get('user-agent'),
        })
      },
      {
        parse: 'none',
        detail: {
          // A `*` path cannot be written in OpenAPI: documented under its templated path (docs/routes.ts).
          ...(endpoint.path.endsWith('/*') ? { hide: true } : {}),
          tags: [tagOf(endpoint)],
          summary: endpoint.summary,
          ...(endpoint.body === 'json' ? { requestBody: requestBodyDoc(endpoint.path) } : {}),
          responses: responsesDoc(endpoint),
        },
      },
    )
  }

  return app
}

/**
 * SPEC §4.8: clients' health checks (the Go client's heartbeat) expect exactly this text. Answered by the
 * gateway itself, after the hooks that give its own routes a request id and a report (app.ts).
 */
export function heartbeatRoutes() {
  const running = () => new Response('Ollama is running', { headers: { 'content-type': 'text/plain; charset=utf-8' } })
  return new Elysia({ name: 'heartbeat' })
    .get('/', running, {
      detail: {
        tags: ['ollama'],
        summary: 'Heartbeat',
        security: [],
        responses: { 200: { description: '`Ollama is running`', content: { 'text/plain': {} } } },
      },
    })
    .head('/', running, { detail: { hide: true } })
}

/**
 * UPSTREAM §3: Ollama answers 405 to a known path with the wrong method. The gateway answers these
 * itself, so they are reported as its own requests are (own-requests.ts), apart from the proxied ones.
 */
export function wrongMethodRoutes() {
  const app = new Elysia({ name: 'wrong-method' })
  const known: Array<[string, string[]]> = KNOWN_PATHS.map((path) => [path, ENDPOINTS.filter((e) => e.path === path).map((e) => e.method)])
  // The heartbeat (heartbeatRoutes) is a known path too.
  known.push(['/', ['GET', 'HEAD']])
  for (const [path, allowed] of known) {
    app.all(
      path,
      ({ request }) =>
        errorResponse(
          new GatewayError('method_not_allowed', `method ${request.method} not allowed on ${path}; use ${allowed.join(' or ')}`, {
            allow: allowed.join(', '),
          }),
          dialectOf(path),
          requestIdOf(request),
        ),
      { parse: 'none', detail: { hide: true } },
    )
  }
  return app
}
