// The request path of every proxied endpoint (SPEC §4.8): read the body once, pick backends, forward,
// relay the answer. Framework-free: it takes a Request and returns a Response.
import type { Backend } from '../backends/backend.ts'
import type { BackendRegistry } from '../backends/registry.ts'
import type { Config } from '../config.ts'
import { type Dialect, dialectOf, errorResponse, GatewayError } from '../errors.ts'
import type { KeyAuthenticator } from '../keys/authenticator.ts'
import { hasScope, modelAllowed } from '../keys/authz.ts'
import type { Logger } from '../log.ts'
import type { Metrics } from '../metrics/metrics.ts'
import type { InFlight } from '../runtime/inflight.ts'
import type { KeyRecord } from '../store/store.ts'
import { modelOf, readJsonBody, wantsStream } from './body.ts'
import type { Endpoint } from './endpoints.ts'
import { clientResponseHeaders, upstreamRequestHeaders } from './headers.ts'
import { filterListing } from './listing.ts'
import { type RelayResult, relayBody } from './relay.ts'
import { ClientGone, callUpstream, UpstreamFailure } from './upstream.ts'

export interface ProxyDeps {
  readonly config: Config
  readonly backends: BackendRegistry
  readonly log: Logger
  readonly inflight: InFlight
  readonly auth: KeyAuthenticator
  readonly metrics: Metrics
  /** The runtime's "client went away" signal, where it means that (see runtime/). */
  readonly clientSignal: (request: Request) => AbortSignal | undefined
}

export interface RequestMeta {
  readonly requestId: string
  readonly clientIp: string
  readonly url: URL
}

/** What is known about one request as it passes through; logged once at the end. */
interface Exchange {
  readonly meta: RequestMeta
  readonly endpoint: Endpoint
  readonly dialect: Dialect
  readonly startedAt: number
  key?: KeyRecord
  model?: string
  stream?: boolean
  backend?: string
  status?: number
  ttfbMs?: number
}

export function createProxy(deps: ProxyDeps) {
  const { config, log } = deps

  const { metrics } = deps
  const finish = (x: Exchange, result: RelayResult) => {
    deps.inflight.leave()
    // Labels are bounded: the route template, never the raw path (SPEC §4.12).
    const elapsed = (performance.now() - x.startedAt) / 1000
    metrics.requests.inc({ route: x.endpoint.path, method: x.endpoint.method, status: String(x.status ?? 0) })
    metrics.latency.observe({ route: x.endpoint.path }, elapsed)
    if (x.ttfbMs !== undefined) metrics.ttfb.observe({ route: x.endpoint.path }, x.ttfbMs / 1000)
    if (!log.enabled('info')) return
    log.info('request', {
      request_id: x.meta.requestId,
      method: x.endpoint.method,
      path: x.meta.url.pathname,
      status: x.status,
      outcome: result.outcome,
      model: x.model,
      backend: x.backend,
      key_id: x.key?.id,
      client_ip: x.meta.clientIp,
      latency_ms: round(performance.now() - x.startedAt),
      ttfb_ms: x.ttfbMs === undefined ? undefined : round(x.ttfbMs),
      bytes_out: result.bytesOut,
      error: result.error,
    })
  }

  const fail = (x: Exchange, err: unknown): Response => {
    const known = err instanceof GatewayError
    if (!known && !(err instanceof ClientGone)) log.error('proxy failure', { request_id: x.meta.requestId, err })
    const gatewayError = known
      ? err
      : err instanceof ClientGone
        ? new GatewayError('bad_request', err.message)
        : new GatewayError('internal', `internal error; quote request id ${x.meta.requestId}`)
    x.status = err instanceof ClientGone ? 499 : gatewayError.status
    const mayHaveRun = err instanceof UpstreamFailure ? err.mayHaveRun : gatewayError.status >= 500
    finish(x, { outcome: err instanceof ClientGone ? 'aborted' : 'error', bytesOut: 0, error: gatewayError.message })
    return errorResponse(gatewayError, x.dialect, x.meta.requestId, mayHaveRun)
  }

  return async function proxy(endpoint: Endpoint, request: Request, meta: RequestMeta): Promise<Response> {
    const x: Exchange = { meta, endpoint, dialect: dialectOf(meta.url.pathname), startedAt: performance.now() }
    deps.inflight.enter()
    try {
      // SPEC §4.3: the key is checked from headers alone, before a body is read.
      const key = await deps.auth.authenticate(request.headers, meta.clientIp)
      x.key = key
      if (!hasScope(key, endpoint.scope))
        throw new GatewayError('forbidden', `API key lacks the '${endpoint.scope}' scope needed for ${endpoint.path}`)
      let body: BodyInit | null = null
      if (endpoint.body === 'json') {
        const parsed = await readJsonBody(request, config.maxBodyBytes)
        body = parsed.bytes
        x.model = modelOf(parsed.json, endpoint.modelFields ?? [])
        x.stream = wantsStream(parsed.json, endpoint.streamByDefault)
        if (x.model === undefined && endpoint.modelFields) {
          throw new GatewayError('bad_request', `${endpoint.modelFields[0]} is required`)
        }
        // /api/copy names a second model, which the key must also be allowed to use.
        const destination = endpoint.path === '/api/copy' ? parsed.json.destination : undefined
        for (const model of [x.model, destination]) {
          if (typeof model === 'string' && !modelAllowed(key, model))
            throw new GatewayError('forbidden', `model '${model}' not allowed for this key`)
        }
      } else if (endpoint.path === '/v1/models/*') {
        x.model = decodeURIComponent(meta.url.pathname.slice('/v1/models/'.length))
        if (!modelAllowed(key, x.model)) throw new GatewayError('forbidden', `model '${x.model}' not allowed for this key`)
      } else if (endpoint.body === 'stream') {
        // UPSTREAM §1: blobs may be many GB; they stream through without buffering.
        body = request.body
      }

      const candidates = endpoint.routing === 'manage' ? deps.backends.target(request.headers.get('x-backend')) : deps.backends.candidates()
      const abort = new AbortController()
      deps.clientSignal(request)?.addEventListener('abort', () => abort.abort(new ClientGone()), { once: true })
      const headers = upstreamRequestHeaders(request.headers, meta.requestId)
      const target = meta.url.pathname + meta.url.search

      let upstream: Response | undefined
      for (let i = 0; i < candidates.length && !upstream; i++) {
        const backend = candidates[i] as Backend
        if (backend.authHeader) headers.set(backend.authHeader[0], backend.authHeader[1])
        backend.inFlight++
        try {
          upstream = await callUpstream({
            backend,
            method: endpoint.method,
            target,
            headers,
            body,
            abort,
            readTimeoutMs: config.readTimeoutMs,
          })
          x.backend = backend.name
        } catch (err) {
          backend.inFlight--
          // SPEC §4.7: before the first byte a refused or reset connection moves to the next candidate;
          // a timeout does not (the request may be running), nor does a streamed body (already consumed).
          const retry = err instanceof UpstreamFailure && err.reason !== 'timeout' && endpoint.body !== 'stream'
          if (err instanceof UpstreamFailure) backend.markDown(err.message)
          if (!retry || i === candidates.length - 1) throw err
        }
      }
      if (!upstream) throw new GatewayError('no_healthy_backend', 'no backend is available')
      const served = deps.backends.get(x.backend as string) as Backend
      x.status = upstream.status
      x.ttfbMs = performance.now() - x.startedAt

      const responseHeaders = clientResponseHeaders(upstream.headers, meta.requestId)
      responseHeaders.set('x-backend', served.name)
      // SPEC §4.3: a key sees only its allowed models in listings.
      if (endpoint.routing === 'aggregate' && endpoint.method === 'GET' && upstream.ok && x.key?.allowedModels.length) {
        const filtered = await filterListing(upstream, (model) => modelAllowed(key, model))
        served.inFlight--
        finish(x, { outcome: 'ok', bytesOut: filtered.byteLength })
        responseHeaders.set('content-type', 'application/json; charset=utf-8')
        return new Response(filtered, { status: upstream.status, headers: responseHeaders })
      }
      if (!upstream.body || endpoint.method === 'HEAD') {
        served.inFlight--
        finish(x, { outcome: 'ok', bytesOut: 0 })
        return new Response(null, { status: upstream.status, headers: responseHeaders })
      }
      const relayed = relayBody(upstream.body, {
        abort,
        readTimeoutMs: config.readTimeoutMs,
        contentType: upstream.headers.get('content-type'),
        onDone: (result) => {
          served.inFlight--
          finish(x, result)
        },
      })
      return new Response(relayed, { status: upstream.status, headers: responseHeaders })
    } catch (err) {
      return fail(x, err)
    }
  }
}

export type ProxyHandler = ReturnType<typeof createProxy>

function round(ms: number): number {
  return Math.round(ms * 100) / 100
}
