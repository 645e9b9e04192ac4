// SPEC §5: one error type with a machine-readable code, one code→status table, and one renderer per
// client dialect. Internal causes are logged by the caller, never rendered.

export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  model_not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  internal: 500,
  upstream_unreachable: 502,
  no_healthy_backend: 503,
  queue_full: 503,
  unavailable: 503,
  upstream_timeout: 504,
} as const

export type ErrorCode = keyof typeof ERROR_STATUS
export type Dialect = 'ollama' | 'openai' | 'anthropic' | 'admin'

export class GatewayError extends Error {
  readonly status: number
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'GatewayError'
    this.status = ERROR_STATUS[code]
  }
}

/** The dialect is a property of the path: clients of each surface parse errors differently. */
export function dialectOf(pathname: string): Dialect {
  if (pathname.startsWith('/v1/') || pathname === '/v1') {
    // UPSTREAM §1: `/v1/messages` is Anthropic-style, and Ollama answers it in Anthropic's shape.
    return pathname === '/v1/messages' || pathname.startsWith('/v1/messages/') ? 'anthropic' : 'openai'
  }
  if (pathname.startsWith('/admin/') || pathname === '/admin') return 'admin'
  return 'ollama'
}

// UPSTREAM §3: the SDKs map `type` to their exception classes. OpenAI's names and Anthropic's (which
// Ollama's `/v1/messages` uses) agree but for a body too large and a server overloaded.
const ERROR_TYPES: Readonly<Record<number, string>> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  415: 'invalid_request_error',
  429: 'rate_limit_error',
}

function errorType(dialect: 'openai' | 'anthropic', status: number): string {
  if (status === 413) return dialect === 'anthropic' ? 'request_too_large' : 'invalid_request_error'
  if (status === 503 && dialect === 'anthropic') return 'overloaded_error'
  return ERROR_TYPES[status] ?? 'api_error'
}

export function errorBody(dialect: Dialect, code: string, status: number, message: string, requestId: string): string {
  switch (dialect) {
    case 'ollama':
      return JSON.stringify({ error: message })
    case 'openai':
      return JSON.stringify({ error: { message, type: errorType('openai', status), param: null, code } })
    case 'anthropic':
      return JSON.stringify({ type: 'error', error: { type: errorType('anthropic', status), message }, request_id: requestId })
    case 'admin':
      return JSON.stringify({ error: { code, message, request_id: requestId } })
  }
}

export function errorResponse(err: GatewayError, dialect: Dialect, requestId: string, retryUnsafe = false): Response {
  const headers: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'x-request-id': requestId,
    ...err.headers,
  }
  // UPSTREAM §3: the OpenAI SDK retries 5xx twice (Anthropic's SDK likewise, honouring the same
  // header); a retry after the request reached a backend could run the same inference again.
  if ((dialect === 'openai' || dialect === 'anthropic') && err.status >= 500 && retryUnsafe) headers['x-should-retry'] = 'false'
  return new Response(errorBody(dialect, err.code, err.status, err.message, requestId), { status: err.status, headers })
}

/** One line appended to a stream whose headers are already sent (SPEC §5, UPSTREAM §3). */
export function midStreamError(contentType: string | null, message: string, dialect: Dialect): string {
  if (contentType?.includes('text/event-stream')) {
    // Anthropic's SDK acts only on named events: a bare `data:` error would be skipped and the stream
    // would seem to end normally. Ollama's `/v1/messages` sends this `error` event.
    if (dialect === 'anthropic')
      return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message } })}\n\n`
    return `data: ${JSON.stringify({ error: { message, type: 'api_error', param: null, code: 'upstream_error' } })}\n\n`
  }
  return `${JSON.stringify({ error: message })}\n`
}
