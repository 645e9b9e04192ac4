// SPEC §4.8, UPSTREAM §6: what crosses the gateway in each direction.
import { type HeaderList, headerValue } from '../runtime/client.ts'

// RFC 9110 §7.6.1: connection-specific fields are not forwarded by a proxy.
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

// Never sent upstream: the client's credentials (SPEC §4.8), Origin (Ollama answers 403 to unknown
// origins, UPSTREAM §6), Host (the backend's own is used), lengths and encodings the runtime recomputes,
// and the gateway's own control headers.
const REQUEST_DROP = new Set([
  ...HOP_BY_HOP,
  'host',
  'authorization',
  'x-api-key',
  'cookie',
  'origin',
  'content-length',
  'accept-encoding',
  'x-request-id',
  'x-backend',
])

// The runtime's fetch decompresses, so the encoding and length of what it hands us no longer match
// the upstream's headers; dropping both keeps bytes and headers consistent.
const RESPONSE_DROP = new Set([...HOP_BY_HOP, 'content-encoding', 'content-length'])

function connectionListed(listed: string | null): Set<string> | undefined {
  if (!listed) return undefined
  return new Set(listed.split(',').map((t) => t.trim().toLowerCase()))
}

/** What goes to the backend: the client's fields less the dropped ones, and the request id (SPEC §4.8). */
export function upstreamRequestHeaders(incoming: Headers, requestId: string): HeaderList {
  const out: HeaderList = []
  const listed = connectionListed(incoming.get('connection'))
  // Headers iterates each name once (values joined; only set-cookie, which no client sends, repeats).
  incoming.forEach((value, name) => {
    if (REQUEST_DROP.has(name) || listed?.has(name)) return
    out.push(name, value)
  })
  out.push('x-request-id', requestId)
  return out
}

/**
 * What goes back to the client: the backend's fields less the hop-by-hop ones and the length (the
 * runtime sets its own). `bodyDecoded`: the runtime's fetch decompressed the body, so its encoding
 * header no longer applies. The backend's fields come as fetch's Headers or as the own client's list.
 */
export function clientResponseHeaders(upstream: Headers | readonly string[], requestId: string, bodyDecoded = true): Headers {
  const out = new Headers()
  const fields = Array.isArray(upstream) ? (upstream as readonly string[]) : undefined
  const get = (name: string) => (fields ? headerValue(fields, name) : (upstream as Headers).get(name))
  const listed = connectionListed(get('connection'))
  const decoded = bodyDecoded && get('content-encoding') !== null
  const add = (value: string, name: string) => {
    if (HOP_BY_HOP.has(name) || listed?.has(name)) return
    if (decoded && RESPONSE_DROP.has(name)) return
    if (name === 'content-length') return
    out.append(name, value)
  }
  if (fields) for (let i = 0; i < fields.length; i += 2) add(fields[i + 1] as string, fields[i] as string)
  else (upstream as Headers).forEach(add)
  out.set('x-request-id', requestId)
  if (isStreamingType(out.get('content-type'))) {
    out.set('cache-control', 'no-cache')
    out.set('x-accel-buffering', 'no')
  }
  return out
}

export function isStreamingType(contentType: string | null): boolean {
  return contentType !== null && (contentType.includes('ndjson') || contentType.includes('event-stream'))
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
const assigned = new WeakMap<Request, string>()

/** The request's id: a well-formed client one is reused (so traces join up), else one is made. Stable per request. */
export function requestIdOf(request: Request): string {
  let id = assigned.get(request)
  if (id === undefined) {
    id = requestIdFrom(request.headers)
    assigned.set(request, id)
  }
  return id
}

/**
 * A request id made once, by a caller that keeps it (the proxy carries it through the exchange and
 * never asks `requestIdOf` again): no entry in the per-request map.
 */
export function requestIdFrom(headers: Headers): string {
  const given = headers.get('x-request-id')
  return given && REQUEST_ID.test(given) ? given : crypto.randomUUID()
}
