// The request path of every proxied endpoint (SPEC §4.8): authenticate, read the body once, choose
// backends (§4.7), forward, relay the answer. Framework-free: it takes a Request and returns a Response.

import { type AuditOutcome, newEventId } from '../audit/event.ts'
import type { AuditWriter } from '../audit/writer.ts'
import type { Backend } from '../backends/backend.ts'
import { remembered, shortModel } from '../backends/model-name.ts'
import type { DiscoveryPoller } from '../backends/poller.ts'
import type { BackendRegistry } from '../backends/registry.ts'
import type { Config } from '../config.ts'
import { type Dialect, dialectOf, errorResponse, GatewayError } from '../errors.ts'
import { AuthError, type KeyAuthenticator } from '../keys/authenticator.ts'
import { hasScope, modelAllowed } from '../keys/authz.ts'
import { type Admission, hasLimits, type RateLimiter } from '../limits/limiter.ts'
import type { Logger } from '../log.ts'
import type { Metrics } from '../metrics/metrics.ts'
import { Cancel, headerValue, type RuntimeClient, relayStream, type StreamedResponse, type WholeResponse } from '../runtime/client.ts'
import type { InFlight } from '../runtime/inflight.ts'
import type { KeyRecord } from '../store/store.ts'
import { aggregateListing } from './aggregate.ts'
import { modelOf, modelProblem, readJsonBody, wantsStream } from './body.ts'
import type { Endpoint } from './endpoints.ts'
import { clientResponseHeaders, isStreamingType, upstreamRequestHeaders } from './headers.ts'
import { chainTaps, type MeterKind, MeterTap, type Usage, UsageChunkStripper, withIncludeUsage } from './meter.ts'
import { Relay, type RelayResult } from './relay.ts'
import { createProxySeries } from './series.ts'
import { ClientGone, callStreamed, callUpstream, callWhole, UpstreamFailure } from './upstream.ts'
import { type Deadline, RequestWatch } from './watch.ts'

export interface ProxyDeps {
  readonly config: Config
  readonly backends: BackendRegistry
  readonly discovery: DiscoveryPoller
  readonly log: Logger
  readonly inflight: InFlight
  readonly auth: KeyAuthenticator
  readonly metrics: Metrics
  readonly limiter: RateLimiter
  readonly audit: AuditWriter
  /** The runtime's "client went away" signal, where it means that (see runtime/). */
  readonly clientSignal: (request: Request) => AbortSignal | undefined
  /** The runtime's exemption from the idle timeout for requests in flight, where it has one. */
  readonly holdOpen?: (request: Request, hold: boolean) => void
  /** The runtime's own client for plain-http backends, where it has one (see runtime/client.ts). */
  readonly client?: RuntimeClient
}

export interface RequestMeta {
  readonly requestId: string
  readonly clientIp: string
  /** The URL's path (already normalized by the server) and its query, `?` included or empty. */
  readonly path: string
  readonly search: string
  readonly userAgent: string | null
}

/** What is known about one request as it passes through; logged once at the end. */
interface Exchange {
  readonly meta: RequestMeta
  readonly endpoint: Endpoint
  readonly dialect: Dialect
  readonly startedAt: number
  key?: KeyRecord
  /** A key id presented but refused (for the audit log). */
  keyId?: string
  model?: string
  stream?: boolean
  backend?: string
  status?: number
  ttfbMs?: number
  bytesIn?: number
  admission?: Admission
  meter?: MeterTap
}

/** Management calls after which the backend's model list has changed (SPEC §4.6). */
const CHANGES_MODELS = new Set(['/api/pull', '/api/create', '/api/copy', '/api/delete'])

/** SPEC §4.9: where each endpoint's token counts are. */
function meterKind(path: string): MeterKind {
  if (path === '/api/generate' || path === '/api/chat' || path === '/api/embed') return 'native'
  if (path === '/v1/chat/completions' || path === '/v1/completions' || path === '/v1/embeddings') return 'openai'
  if (path === '/v1/messages') return 'anthropic'
  if (path === '/v1/responses') return 'responses'
  return 'none'
}
const STREAMED_USAGE = new Set(['/v1/chat/completions', '/v1/completions'])
/** Non-streaming answers up to this size are read whole (see below). */
const WHOLE_BODY_MAX = 1024 * 1024
/**
 * SPEC §7: a non-streamed generation is one small JSON answer, sent complete (UPSTREAM §6); the
 * runtime's own client, where it has one, reads these whole (about half fetch's CPU on Bun). Every
 * other answer to a request whose body is in memory streams through that client; uploads use fetch.
 */
const WHOLE_PATHS = new Set(['/api/chat', '/api/generate', '/v1/chat/completions', '/v1/completions'])
/** The largest answer that client reads whole (a generation's text is far smaller). */
export const WHOLE_ANSWER_MAX = 16 * 1024 * 1024

export function createProxy(deps: ProxyDeps) {
  const { config, log, metrics, backends } = deps

  const series = createProxySeries(metrics)
  /**
   * UPSTREAM §5: `llama3.2`, `LLAMA3.2` and `library/llama3.2:latest` are one model. The audit event, the
   * log line and the token series name it one way, as /api/tags does, so usage is not split by spelling.
   */
  const modelName = remembered(shortModel)
  const watch = new RequestWatch(config.readTimeoutMs, deps.clientSignal, deps.holdOpen)

  /** Reports the request; a promise when the answer must wait for the key's limits to be settled (see Admission). */
  const finish = (x: Exchange, result: RelayResult, beforeAnswer = false): Promise<void> | undefined => {
    deps.inflight.leave()
    const usage: Usage | undefined = x.meter?.usage(Boolean(x.stream))
    const tokens = (usage?.prompt ?? 0) + (usage?.completion ?? 0)
    const settled = x.admission?.finish(tokens, beforeAnswer)
    const model = x.model === undefined ? undefined : modelName(x.model)
    if (x.key && tokens > 0) series.tokens(model ?? 'unknown', usage?.prompt ?? null, usage?.completion ?? null)
    const status = x.status ?? 0
    const outcome: AuditOutcome = status === 401 || status === 403 || status === 429 ? 'rejected' : result.outcome
    // SPEC §4.10: one event per proxied or rejected request; never prompts or outputs.
    const now = Date.now()
    deps.audit.record({
      event_id: newEventId(now),
      time: now,
      request_id: x.meta.requestId,
      key_id: x.key?.id ?? x.keyId ?? null,
      client_ip: x.meta.clientIp,
      user_agent: x.meta.userAgent,
      method: x.endpoint.method,
      path: x.meta.path,
      model: model ?? null,
      backend: x.backend ?? null,
      status,
      outcome,
      latency_ms: round(performance.now() - x.startedAt),
      ttfb_ms: x.ttfbMs === undefined ? null : round(x.ttfbMs),
      prompt_tokens: usage?.prompt ?? null,
      completion_tokens: usage?.completion ?? null,
      tokens_partial: Boolean(usage?.partial),
      bytes_in: x.bytesIn ?? null,
      bytes_out: result.bytesOut,
      error: result.error ?? null,
      action: null,
      target: null,
    })
    series.answered(x.endpoint, status, (performance.now() - x.startedAt) / 1000, x.ttfbMs === undefined ? undefined : x.ttfbMs / 1000)
    if (log.enabled('info'))
      log.info('request', {
        request_id: x.meta.requestId,
        method: x.endpoint.method,
        path: x.meta.path,
        status: x.status,
        outcome: result.outcome,
        model,
        backend: x.backend,
        key_id: x.key?.id,
        client_ip: x.meta.clientIp,
        latency_ms: round(performance.now() - x.startedAt),
        ttfb_ms: x.ttfbMs === undefined ? undefined : round(x.ttfbMs),
        bytes_out: result.bytesOut,
        error: result.error,
      })
    return settled
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
    const mayHaveRun =
      err instanceof UpstreamFailure ? err.mayHaveRun : gatewayError.status >= 500 && gatewayError.code !== 'no_healthy_backend'
    finish(x, { outcome: err instanceof ClientGone ? 'aborted' : 'error', bytesOut: 0, error: gatewayError.message })
    return errorResponse(gatewayError, x.dialect, x.meta.requestId, mayHaveRun)
  }

  /**
   * SPEC §4.6, §4.7: who may serve this request, in order. Synchronous when the answer is known (the
   * hot path); an unknown model re-polls once before the 404.
   */
  const chooseBackends = (
    endpoint: Endpoint,
    model: string | undefined,
    request: Request,
    other: string | undefined,
  ): Backend[] | Promise<Backend[]> => {
    if (endpoint.routing === 'manage') return backends.forManagement(endpoint.path, model, request.headers.get('x-backend'), other)
    if (endpoint.routing !== 'model' || model === undefined) return backends.any()
    return backends.forModel(model) ?? unknownModel(model)
  }
  const unknownModel = async (model: string): Promise<Backend[]> => {
    await deps.discovery.repollStale()
    const order = backends.forModel(model)
    if (order) return order
    // A backend that is down may hold the model without our knowing: try it rather than claim a 404.
    const unknown = backends.all.filter((b) => b.health === 'down')
    if (unknown.length > 0) return unknown
    throw new GatewayError('model_not_found', `model '${model}' not found`)
  }

  return async function proxy(endpoint: Endpoint, request: Request, meta: RequestMeta): Promise<Response> {
    const x: Exchange = { meta, endpoint, dialect: dialectOf(meta.path), startedAt: performance.now() }
    deps.inflight.enter()
    let deadline: Deadline | undefined
    try {
      // SPEC §4.3: the key is checked from headers alone, before a body is read.
      let key: KeyRecord
      try {
        const checked = deps.auth.authenticate(request.headers, meta.clientIp)
        key = checked instanceof Promise ? await checked : checked
      } catch (err) {
        if (err instanceof AuthError && err.keyId) x.keyId = err.keyId
        throw err
      }
      x.key = key
      if (!hasScope(key, endpoint.scope))
        throw new GatewayError('forbidden', `API key lacks the '${endpoint.scope}' scope needed for ${endpoint.path}`)
      let body: BodyInit | null = null
      let json: Record<string, unknown> | undefined
      let other: string | undefined
      if (endpoint.body === 'json') {
        const parsed = await readJsonBody(request, config.maxBodyBytes)
        body = parsed.bytes
        json = parsed.json
        x.bytesIn = parsed.bytes.byteLength
        x.model = modelOf(parsed.json, endpoint.modelFields ?? [])
        x.stream = wantsStream(parsed.json, endpoint.streamByDefault)
        if (x.model === undefined && endpoint.modelFields)
          throw new GatewayError('bad_request', modelProblem(parsed.json, endpoint.modelFields))
        if (x.model !== undefined && !modelAllowed(key, x.model))
          throw new GatewayError('forbidden', `model '${x.model}' not allowed for this key`)
        // /api/copy and /api/create name a second model, which the key must also be allowed to use: a
        // copy or a model made from one would otherwise hand a key a model it may not touch.
        if (endpoint.otherModelField) {
          other = modelOf(parsed.json, [endpoint.otherModelField])
          if (other !== undefined && !modelAllowed(key, other))
            throw new GatewayError('forbidden', `model '${other}' not allowed for this key`)
        }
      } else if (endpoint.path === '/v1/models/*') {
        x.model = modelFromPath(meta.path.slice('/v1/models/'.length))
        if (!modelAllowed(key, x.model)) throw new GatewayError('forbidden', `model '${x.model}' not allowed for this key`)
      } else if (endpoint.body === 'stream') {
        // UPSTREAM §1: blobs may be many GB; they stream through without buffering.
        body = request.body
        const length = Number(request.headers.get('content-length'))
        if (Number.isFinite(length)) x.bytesIn = length
      }

      // SPEC §4.4: per-key limits, after the request is known to be valid and allowed.
      if (hasLimits(key.limits)) x.admission = await deps.limiter.admit(key.id, key.limits)

      // SPEC §4.9: streamed /v1 completions ask upstream for usage; the extra chunk is removed
      // again unless the client asked for it.
      const kind = meterKind(endpoint.path)
      let stripUsage = false
      if (kind !== 'none') x.meter = new MeterTap(kind)
      if (STREAMED_USAGE.has(endpoint.path) && x.stream && json && body instanceof Uint8Array) {
        const asking = withIncludeUsage(body as Uint8Array<ArrayBuffer>, json)
        if (asking) {
          body = asking
          stripUsage = true
        }
      }

      const headers = upstreamRequestHeaders(request.headers, meta.requestId)
      if (endpoint.routing === 'aggregate') return await aggregated(x, endpoint, key, headers)

      const chosen = chooseBackends(endpoint, x.model, request, other)
      const candidates = Array.isArray(chosen) ? chosen : await chosen
      const abort = new Cancel()
      // One deadline per request (SPEC §3.2 OLLAMA_READ_TIMEOUT_S), re-armed for the response headers of
      // each attempt, then for the body; the relay takes it over for streams. The watch also aborts the
      // request when its client leaves (SPEC §4.8).
      deadline = watch.watch(request, abort)
      const target = meta.path + meta.search
      const inMemory = body === null || body instanceof Uint8Array
      const readWhole = x.stream === false && WHOLE_PATHS.has(endpoint.path) && inMemory
      const client = inMemory ? deps.client : undefined

      let upstream: Response | WholeResponse | StreamedResponse | undefined
      let served: Backend | undefined
      let release: (() => void) | undefined
      for (let i = 0; i < candidates.length && !upstream; i++) {
        const backend = candidates[i] as Backend
        const last = i === candidates.length - 1
        // SPEC §4.7: a fair per-backend queue; the slot is held until the response is fully relayed.
        release = backend.admission.tryAcquire() ?? (await backend.admission.acquire(key.id, backend.name, abort))
        // The breaker is asked again after any wait in the queue: it may have opened meanwhile, or another
        // request become its half-open trial (SPEC §4.7: one trial at a time).
        const claim = backend.breaker.claim()
        if (claim === 'refused') {
          release()
          if (!last) continue
          throw new GatewayError(
            'no_healthy_backend',
            `backend '${backend.name}' is not taking requests now: its circuit breaker is ${backend.breaker.state === 'open' ? 'open' : 'half-open, its one trial request under way'}; retry shortly`,
            { 'retry-after': String(backend.breaker.retryAfterS()) },
          )
        }
        // Each backend tried gets its own credential, if it has one (the list itself is shared by the attempts).
        const sent = backend.withAuth(headers)
        backend.inFlight++
        deadline.refresh()
        try {
          const call = { backend, method: endpoint.method, target, headers: sent, body, abort }
          const res = !client?.handles(backend.url)
            ? await callUpstream(call)
            : readWhole
              ? await callWhole(client, call)
              : await callStreamed(client, call)
          // Ollama's own 502/503 (busy, overloaded) before any byte: the next candidate may do better.
          if ((res.status === 502 || res.status === 503) && !last && endpoint.body !== 'stream') {
            if (!isWhole(res)) await res.body?.cancel()
            throw new UpstreamFailure(backend.name, 'refused', `backend '${backend.name}' answered ${res.status}`)
          }
          if (res.status === 502 || res.status === 503) backend.breaker.failure()
          else backend.breaker.success()
          upstream = res
          served = backend
        } catch (err) {
          backend.inFlight--
          release()
          // SPEC §4.7: before the first byte a refused or reset connection moves to the next candidate;
          // a timeout does not (the request may be running), nor does a streamed body (already consumed).
          if (err instanceof UpstreamFailure) backend.breaker.failure()
          else backend.breaker.abandon(claim)
          const retry = err instanceof UpstreamFailure && err.reason !== 'timeout' && !err.partial && endpoint.body !== 'stream'
          if (!retry || last) throw err
        }
      }
      if (!upstream || !served || !release) throw new GatewayError('no_healthy_backend', 'no backend is available')
      const backend = served
      const releaseSlot = release
      x.backend = backend.name
      x.status = upstream.status
      x.ttfbMs = performance.now() - x.startedAt

      // The backend's slot is freed exactly once, however the answer ends; `finish` runs in `done` or,
      // on an error thrown from here, in `fail`.
      const releaseBackend = () => {
        backend.inFlight--
        releaseSlot()
      }
      const done = (result: RelayResult, beforeAnswer = false) => {
        releaseBackend()
        // SPEC §4.6: a pull, create, copy or delete through the gateway refreshes that backend at once.
        if (CHANGES_MODELS.has(endpoint.path) && result.outcome === 'ok') void deps.discovery.poll(backend, true)
        return finish(x, result, beforeAnswer)
      }
      // fetch decodes a compressed body but keeps its content-encoding; the runtime's own client removes
      // the header when it decodes, and keeps it (and the bytes) for a coding it cannot decode.
      const viaFetch = !client?.handles(backend.url)
      const responseHeaders = clientResponseHeaders(upstream.headers, meta.requestId, viaFetch)
      responseHeaders.set('x-backend', backend.name)
      if (x.admission) for (const [name, value] of Object.entries(x.admission.headers)) responseHeaders.set(name, value)
      deadline.refresh()
      // An answer in hand whole: metered, reported and sent on in one piece, once the key's limits are
      // settled (the end of a limited request goes to Redis with the others of this turn).
      const status = upstream.status
      const answerWhole = (bytes: Uint8Array<ArrayBuffer>): Response | Promise<Response> => {
        deadline?.clear()
        x.meter?.chunk(bytes)
        const settled = done({ outcome: 'ok', bytesOut: bytes.byteLength }, true)
        const response = new Response(bytes.byteLength > 0 ? bytes : null, { status, headers: responseHeaders })
        return settled ? settled.then(() => response) : response
      }
      if (endpoint.method === 'HEAD') {
        // RFC 9110 §9.3.2: a HEAD answer carries the length the GET's body would have (clients read it
        // as the blob's size), unless it describes a coding the client is not given.
        const length = upstreamHeader(upstream, 'content-length')
        if (length !== null && upstreamHeader(upstream, 'content-encoding') === null) responseHeaders.set('content-length', length)
        return answerWhole(new Uint8Array(0))
      }
      // The runtime's client has read it whole already.
      if (isWhole(upstream)) return answerWhole(upstream.body)
      // fetch's answer, or the runtime's client's with its body still to come.
      const fetched = upstream instanceof Response ? upstream : undefined
      const streamed = upstream instanceof Response ? undefined : upstream
      if (!(streamed ? streamed.hasBody : fetched?.body)) return answerWhole(new Uint8Array(0))
      // A non-streaming answer of known, small size arrives whole right behind its headers (Ollama
      // sends stream:false answers only when complete, UPSTREAM §6): read it at once instead of
      // relaying chunk by chunk. Streams (NDJSON, SSE) and large or unsized bodies always relay.
      const length = Number(upstreamHeader(upstream, 'content-length') ?? Number.NaN)
      if (!stripUsage && length <= WHOLE_BODY_MAX && !isStreamingType(upstreamHeader(upstream, 'content-type'))) {
        let bytes: Uint8Array<ArrayBuffer>
        try {
          bytes = new Uint8Array(await (fetched ?? new Response(streamed?.body)).arrayBuffer())
        } catch {
          deadline.clear()
          releaseBackend()
          throw new UpstreamFailure(backend.name, 'reset', `backend '${backend.name}' broke off its answer`)
        }
        return answerWhole(bytes)
      }
      const relay = new Relay({
        abort,
        deadline,
        contentType: upstreamHeader(upstream, 'content-type'),
        dialect: x.dialect,
        ...(x.meter ? { tap: stripUsage ? chainTaps(x.meter, new UsageChunkStripper()) : x.meter } : {}),
        onDone: done,
      })
      // SPEC §7: the runtime's client passes each chunk through the relay into the stream the server
      // reads; fetch's body is pulled through a second stream. A runtime with an idle timeout to set
      // (holdOpen) closes a let-go client's connection by it; elsewhere the stream must drop it.
      const relayed = streamed
        ? streamed.relay(relay)
        : relayStream(fetched?.body as ReadableStream<Uint8Array>, relay, deps.holdOpen !== undefined)
      return new Response(relayed, { status: upstream.status, headers: responseHeaders })
    } catch (err) {
      deadline?.clear()
      return fail(x, err)
    }
  }

  /** `/api/tags`, `/api/ps`, `/v1/models` (and HEAD /api/tags): every reachable backend, merged. */
  async function aggregated(x: Exchange, endpoint: Endpoint, key: KeyRecord, headers: readonly string[]): Promise<Response> {
    const usable = backends.usable()
    if (usable.length === 0)
      throw new GatewayError('no_healthy_backend', 'no backend is reachable now; retry shortly', { 'retry-after': '5' })
    const responseHeaders = new Headers({ 'content-type': 'application/json; charset=utf-8', 'x-request-id': x.meta.requestId })
    x.status = 200
    const body = await aggregateListing(
      endpoint.path as '/api/tags',
      usable,
      headers,
      (model) => modelAllowed(key, model),
      config.connectTimeoutMs * 2,
    )
    x.ttfbMs = performance.now() - x.startedAt
    if (endpoint.method === 'HEAD') {
      // The GET's headers, its length included (RFC 9110 §9.3.2), without its body.
      responseHeaders.set('content-length', String(body.byteLength))
      finish(x, { outcome: 'ok', bytesOut: 0 })
      return new Response(null, { status: 200, headers: responseHeaders })
    }
    finish(x, { outcome: 'ok', bytesOut: body.byteLength })
    return new Response(body, { status: 200, headers: responseHeaders })
  }
}

export type ProxyHandler = ReturnType<typeof createProxy>

/** A header of the backend's answer, from fetch's Headers or the runtime's client's flat list. */
function upstreamHeader(res: Response | WholeResponse | StreamedResponse, name: string): string | null {
  return res instanceof Response ? res.headers.get(name) : headerValue(res.headers, name)
}

/** An answer the runtime's client read whole (its body in memory), not one still streaming. */
function isWhole(res: Response | WholeResponse | StreamedResponse): res is WholeResponse {
  return !(res instanceof Response) && !('relay' in res)
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100
}

/** The model id of `/v1/models/<id>`, percent-decoded (Swagger UI and SDKs encode `/` and `:`). */
function modelFromPath(encoded: string): string {
  try {
    return decodeURIComponent(encoded)
  } catch {
    throw new GatewayError('bad_request', `the model id in the path is not valid percent-encoding: '${encoded}'`)
  }
}
