// One configured Ollama server: its address, the credentials the gateway presents to it (SPEC §3.2),
// and the live state routing and readiness read (SPEC §4.6, §4.7).

import type { BackendConfig } from '../config.ts'
import { withHeader } from '../runtime/client.ts'
import { FairAdmission } from './admission.ts'
import { CircuitBreaker } from './breaker.ts'

export type Health = 'unknown' | 'up' | 'down'

export interface UpstreamAuth {
  readonly header: string
  readonly scheme: string
  readonly token?: string
}

export interface BackendLimits {
  readonly maxConnections: number
  readonly maxQueue: number
  readonly maxQueueWaitMs: number
  readonly breakerCooldownMs: number
}

export class Backend {
  readonly name: string
  readonly url: string
  readonly weight: number
  /** Header pair added to every upstream request, precomputed once. */
  readonly authHeader?: readonly [string, string]

  health: Health = 'unknown'
  lastError?: string
  lastCheckedAt?: number
  latencyMs?: number
  consecutiveFailures = 0
  inFlight = 0
  /** Normalised model names this backend has (`/api/tags`) and has loaded (`/api/ps`). */
  models: ReadonlySet<string> = new Set()
  loaded: ReadonlySet<string> = new Set()
  /** Bytes of the models it holds (from /api/tags): "most room" for a pull is the smallest. */
  diskBytes = 0
  readonly breaker: CircuitBreaker
  readonly admission: FairAdmission

  constructor(config: BackendConfig, auth: UpstreamAuth, limits: BackendLimits) {
    this.breaker = new CircuitBreaker(3, limits.breakerCooldownMs)
    this.admission = new FairAdmission(limits.maxConnections, limits.maxQueue, limits.maxQueueWaitMs)
    this.name = config.name
    this.url = config.url
    this.weight = config.weight
    const token = config.token ?? auth.token
    if (token) {
      // SPEC §3.2: the scheme prefix applies only to Authorization; other headers carry the raw token.
      const value = auth.header.toLowerCase() === 'authorization' && auth.scheme ? `${auth.scheme} ${token}` : token
      // Lower case, as the request path's header lists hold names (runtime/client.ts).
      this.authHeader = [auth.header.toLowerCase(), value]
    }
  }

  /** `fields` with this backend's credential set, if it has one (a new list; `fields` is left as it is). */
  withAuth(fields: readonly string[]): readonly string[] {
    return this.authHeader ? withHeader(fields, this.authHeader[0], this.authHeader[1]) : fields
  }

  markUp(latencyMs: number): void {
    this.health = 'up'
    this.latencyMs = latencyMs
    this.consecutiveFailures = 0
    this.lastError = undefined
    this.lastCheckedAt = Date.now()
  }

  markDown(reason: string): void {
    this.health = 'down'
    this.consecutiveFailures++
    this.lastError = reason
    this.lastCheckedAt = Date.now()
  }

  /** What /readyz and the admin API show: never the token. */
  describe(): Record<string, unknown> {
    return {
      name: this.name,
      url: redactUrl(this.url),
      health: this.health,
      in_flight: this.inFlight,
      queued: this.admission.waiting,
      breaker: this.breaker.state,
      latency_ms: this.latencyMs,
      last_error: this.lastError,
      last_checked_at: this.lastCheckedAt ? new Date(this.lastCheckedAt).toISOString() : undefined,
      models: [...this.models],
      loaded_models: [...this.loaded],
      disk_bytes: this.diskBytes,
    }
  }
}

/** SPEC §5: upstream URLs are shown without userinfo. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//')
}
