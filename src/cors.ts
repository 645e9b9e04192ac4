// SPEC §4.8, UPSTREAM §6: the gateway answers CORS itself for CORS_ORIGINS (Ollama answers 403 to an
// Origin it does not know, and Origin is never forwarded). Nothing runs when no origin is configured.

const ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'user-agent',
  'accept',
  'x-requested-with',
  'openai-beta',
  'x-api-key',
  'x-request-id',
  'x-backend',
]
const EXPOSED =
  'x-request-id, x-backend, retry-after, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens'

export interface Cors {
  /** The answer to a preflight, or undefined when the request is not one. */
  preflight(request: Request): Response | undefined
  /** Adds the CORS headers an allowed origin needs to read the response. */
  decorate(request: Request, response: Response): Response
}

/** The SDKs' own headers: OpenAI's and Anthropic's `x-stainless-*`, Anthropic's `anthropic-version` and kin. */
function headerAllowed(name: string): boolean {
  const n = name.trim().toLowerCase()
  return ALLOWED_HEADERS.includes(n) || n.startsWith('x-stainless-') || n.startsWith('anthropic-')
}

export function createCors(origins: readonly string[]): Cors | undefined {
  if (origins.length === 0) return undefined
  const any = origins.includes('*')
  const allowed = (origin: string | null): origin is string => origin !== null && (any || origins.includes(origin))
  return {
    preflight(request) {
      if (request.method !== 'OPTIONS' || !request.headers.get('access-control-request-method')) return undefined
      const origin = request.headers.get('origin')
      // A preflight from an origin not configured gets no CORS headers: the browser then refuses.
      if (!allowed(origin)) return new Response(null, { status: 204, headers: { vary: 'Origin' } })
      const asked = (request.headers.get('access-control-request-headers') ?? '')
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean)
      const headers = asked.filter(headerAllowed)
      return new Response(null, {
        status: 204,
        headers: {
          'access-control-allow-origin': any ? '*' : origin,
          'access-control-allow-methods': 'GET, HEAD, POST, PATCH, DELETE, OPTIONS',
          'access-control-allow-headers': headers.length > 0 ? headers.join(', ') : ALLOWED_HEADERS.join(', '),
          'access-control-max-age': '600',
          vary: 'Origin',
        },
      })
    },
    decorate(request, response) {
      const origin = request.headers.get('origin')
      if (!allowed(origin)) return response
      response.headers.set('access-control-allow-origin', any ? '*' : origin)
      response.headers.set('access-control-expose-headers', EXPOSED)
      response.headers.append('vary', 'Origin')
      return response
    },
  }
}
