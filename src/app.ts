// createApp(services): composes the features into one Elysia app. No environment reads, no I/O.
import { Elysia } from 'elysia'
import { recordAdminEvent } from './audit/admin-event.ts'
import { adminAuditRoutes } from './audit/routes.ts'
import { adminBackendRoutes } from './backends/routes.ts'
import { createCors } from './cors.ts'
import { docsRoutes } from './docs/routes.ts'
import { dialectOf, errorResponse, GatewayError } from './errors.ts'
import { healthRoutes } from './health/routes.ts'
import { AuthError } from './keys/authenticator.ts'
import { adminKeyRoutes } from './keys/routes.ts'
import { metricsRoutes } from './metrics/routes.ts'
import { ownRequests } from './own-requests.ts'
import { requestIdOf } from './proxy/headers.ts'
import { heartbeatRoutes, proxyRoutes, wrongMethodRoutes } from './proxy/routes.ts'
import type { Services } from './services.ts'
import { validationMessage } from './validation.ts'

export function createApp(services: Services) {
  const { log } = services
  // normalize: false makes schema'd routes reject unknown fields instead of silently dropping them
  // (a misspelt admin field must not be ignored). Proxied routes have no body schema: bytes pass as sent.
  const cors = createCors(services.config.corsOrigins)
  const own = ownRequests(services)
  const app = new Elysia({ name: 'neuronetz-gateway', normalize: false })
  if (cors) {
    app.onRequest(({ request }) => cors.preflight(request))
    app.onAfterHandle({ as: 'global' }, ({ request, response }) => {
      if (response instanceof Response) cors.decorate(request, response)
    })
  }
  return (
    app
      // Only what is named here is made for each request: Elysia builds the context's query, headers,
      // cookies and body for every route when a hook hands its whole context on (9% of throughput).
      .onError(({ code, error, request }) => {
        const url = new URL(request.url)
        const failure = gatewayErrorOf(code, error, request, url)
        own.failed(request, failure.status, failure.message, error instanceof AuthError ? error.keyId : undefined)
        const response = errorResponse(failure, dialectOf(url.pathname), requestIdOf(request))
        return cors ? cors.decorate(request, response) : response
      })
      // Proxied requests report themselves; the hooks below are for the routes registered after them.
      .use(proxyRoutes(services))
      // SPEC §5: every answer names its request id, the gateway's own routes' too.
      .onTransform(({ request, route, set }) => {
        set.headers['x-request-id'] = own.begin(request, route)
      })
      .onAfterResponse(({ request, set, responseValue, error, admin }: Answered) => {
        if (error === undefined) own.answered(request, set.status, responseValue, admin?.id)
      })
      .use(heartbeatRoutes())
      .use(docsRoutes(services))
      .use(healthRoutes(services))
      .use(adminKeyRoutes(services))
      .use(adminBackendRoutes(services))
      .use(adminAuditRoutes(services))
      .use(metricsRoutes(services))
      .use(wrongMethodRoutes())
  )

  /** The error a failed request is answered with, in its route's dialect (SPEC §5). */
  function gatewayErrorOf(code: string | number, error: unknown, request: Request, url: URL): GatewayError {
    if (error instanceof GatewayError) {
      // SPEC §4.10: rejected requests to the gateway's own routes are audited like proxied ones.
      if (
        (error.status === 401 || error.status === 403 || error.status === 429) &&
        (url.pathname.startsWith('/admin') || url.pathname === '/metrics')
      ) {
        recordAdminEvent(services, {
          request,
          status: error.status,
          outcome: 'rejected',
          keyId: error instanceof AuthError ? (error.keyId ?? null) : null,
          error: error.message,
        })
      }
      return error
    }
    switch (code) {
      case 'NOT_FOUND':
        return new GatewayError('not_found', `${request.method} ${url.pathname} not found`)
      case 'PARSE':
        return new GatewayError('bad_request', 'request body could not be parsed; send a JSON object')
      case 'VALIDATION':
        // An answer that fails its own schema is the gateway's fault, not the client's.
        if ((error as { type?: string }).type === 'response') break
        return new GatewayError('bad_request', validationMessage(error, request))
    }
    // SPEC §5: never leak internals; the request id lets an operator find the logged cause.
    const requestId = requestIdOf(request)
    log.error('unhandled error', { request_id: requestId, path: url.pathname, code, err: error })
    return new GatewayError('internal', `internal error; quote request id ${requestId}`)
  }
}

export type App = ReturnType<typeof createApp>

/** What the after-response hook reads: `error` is there when the answer was an error, `admin` on admin routes. */
interface Answered {
  readonly request: Request
  readonly set: { readonly status?: number | string }
  readonly responseValue?: unknown
  readonly error?: unknown
  readonly admin?: { readonly id: string }
}
