// SPEC §4.12: a log line and the request series for every request the gateway answers itself: the
// admin API, health, metrics, docs, and paths nothing serves. Proxied requests report themselves
// (proxy/service.ts), so none of this runs on their path.
//
// Elysia's hooks give the pieces at different times: `transform` (after routing) notes when a request
// began and which route took it; `afterResponse` reports an answer; an error is reported where it is
// rendered (app.ts), because only there is its status known. Bun forgets a request's URL, headers and
// peer once it is answered, so what the line needs of them is noted at the start.
import { requestIdOf } from './proxy/headers.ts'
import type { Services } from './services.ts'

interface Begun {
  readonly at: number
  readonly route: string
  readonly path: string
  /** Both read at the start: once a request is answered, Bun no longer has its headers or its peer. */
  readonly requestId: string
  readonly clientIp: string
}

const begun = new WeakMap<Request, Begun>()

/** Heartbeats (`/`), liveness, readiness, scrapes and the docs are polled: their lines are `debug`, the rest `info`. */
const QUIET = /^\/((healthz|readyz|metrics|docs)(\/|$)|$)/
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

export interface OwnRequests {
  /** From `onTransform`: `request` has been routed to `route`. Answers its request id. */
  begin(request: Request, route: string): string
  /** From `onAfterResponse`, for an answer that was not an error (errors go through `failed`). */
  answered(request: Request, status: number | string | undefined, response: unknown, keyId: string | undefined): void
  /** An error response rendered for `request` (a route's, or a path nothing serves). */
  failed(request: Request, status: number, message: string, keyId: string | undefined): void
}

export function ownRequests(services: Services): OwnRequests {
  const { log, metrics, clientIp } = services

  const report = (request: Request, started: Begun | undefined, status: number, keyId?: string, error?: string) => {
    const route = started?.route ?? 'unmatched'
    const method = METHODS.has(request.method) ? request.method : 'other'
    metrics.requests.inc({ route, method, status: String(status) })
    const seconds = started ? (performance.now() - started.at) / 1000 : undefined
    if (seconds !== undefined) metrics.latency.bind({ route })(seconds)
    const path = started?.path ?? pathOf(request.url)
    const level = QUIET.test(path) ? 'debug' : 'info'
    if (!log.enabled(level)) return
    log[level]('request', {
      request_id: started?.requestId ?? requestIdOf(request),
      method: request.method,
      path,
      status,
      key_id: keyId,
      client_ip: started?.clientIp ?? clientIp(request),
      latency_ms: seconds === undefined ? undefined : Math.round(seconds * 100_000) / 100,
      error,
    })
  }

  return {
    begin(request, route) {
      const requestId = requestIdOf(request)
      begun.set(request, { at: performance.now(), route, path: pathOf(request.url), requestId, clientIp: clientIp(request) })
      return requestId
    },
    answered(request, status, response, keyId) {
      report(request, begun.get(request), response instanceof Response ? response.status : Number(status ?? 200), keyId)
    },
    failed(request, status, message, keyId) {
      report(request, begun.get(request), status, keyId, message)
    },
  }
}

function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2)
  if (start === -1) return '/'
  const query = url.indexOf('?', start)
  return query === -1 ? url.slice(start) : url.slice(start, query)
}
