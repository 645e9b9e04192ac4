// SPEC §4.4: per-key rpm, tpm (charged when metered) and max_concurrency. One interface, two real
// implementations: in process (embedded) and Redis (cluster, exact across replicas).
import { GatewayError } from '../errors.ts'
import type { Limits } from '../store/store.ts'

export type LimitName = 'requests' | 'tokens' | 'concurrency'

export interface Admission {
  /** OpenAI-style x-ratelimit-* headers for the answer. */
  readonly headers: Record<string, string>
  /**
   * Ends the request: gives the concurrency slot back and charges the metered tokens to the key's
   * current window (SPEC §4.4: tpm is charged when metered), in one step. Safe to call more than once.
   *
   * `beforeAnswer`: the caller holds the answer until the returned promise (if any) resolves, and the
   * limiter may use the wait to send this end together with the others of the same event-loop turn.
   * Either way the end is on its way to the shared counters before the client can see the answer, so
   * the client's next request, on any replica, finds its slot free.
   */
  finish(tokens: number, beforeAnswer?: boolean): Promise<void> | undefined
}

export interface RateLimiter {
  /** Admits a request or throws a 429 GatewayError carrying Retry-After and x-ratelimit-* headers. */
  admit(keyId: string, limits: Limits, now?: number): Promise<Admission>
}

export const WINDOW_MS = 60_000

export function hasLimits(limits: Limits): boolean {
  return Boolean(limits.rpm || limits.tpm || limits.max_concurrency)
}

export function windowOf(now: number): number {
  return Math.floor(now / WINDOW_MS)
}

/** The x-ratelimit-* headers OpenAI clients read, for the limits a key has. */
export function limitHeaders(limits: Limits, requestsUsed: number, tokensUsed: number, now: number): Record<string, string> {
  const reset = `${Math.max(1, Math.ceil(((windowOf(now) + 1) * WINDOW_MS - now) / 1000))}s`
  const headers: Record<string, string> = {}
  if (limits.rpm) {
    headers['x-ratelimit-limit-requests'] = String(limits.rpm)
    headers['x-ratelimit-remaining-requests'] = String(Math.max(0, limits.rpm - requestsUsed))
    headers['x-ratelimit-reset-requests'] = reset
  }
  if (limits.tpm) {
    headers['x-ratelimit-limit-tokens'] = String(limits.tpm)
    headers['x-ratelimit-remaining-tokens'] = String(Math.max(0, limits.tpm - tokensUsed))
    headers['x-ratelimit-reset-tokens'] = reset
  }
  return headers
}

const MESSAGES: Record<LimitName, (l: Limits) => string> = {
  requests: (l) => `rate limit reached: ${l.rpm} requests per minute for this key; retry after the reset`,
  tokens: (l) => `token limit reached: ${l.tpm} tokens per minute for this key; retry after the reset`,
  concurrency: (l) => `concurrency limit reached: ${l.max_concurrency} requests in flight for this key; retry when one finishes`,
}

export function limitError(which: LimitName, limits: Limits, headers: Record<string, string>, now: number): GatewayError {
  const retryAfter = which === 'concurrency' ? 1 : Math.max(1, Math.ceil(((windowOf(now) + 1) * WINDOW_MS - now) / 1000))
  return new GatewayError('rate_limited', MESSAGES[which](limits), {
    ...headers,
    'retry-after': String(retryAfter),
    'x-ratelimit-exceeded': which,
  })
}
