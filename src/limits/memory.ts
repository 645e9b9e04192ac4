// The in-process limiter (embedded mode, or cluster mode without Redis: then limits are per replica).
import type { Limits } from '../store/store.ts'
import { type Admission, limitError, limitHeaders, type RateLimiter, windowOf } from './limiter.ts'

interface Window {
  window: number
  requests: number
  tokens: number
}

export class MemoryLimiter implements RateLimiter {
  private readonly windows = new Map<string, Window>()
  private readonly inFlight = new Map<string, number>()

  private current(keyId: string, now: number): Window {
    const w = windowOf(now)
    let entry = this.windows.get(keyId)
    if (!entry || entry.window !== w) {
      entry = { window: w, requests: 0, tokens: 0 }
      this.windows.set(keyId, entry)
    }
    return entry
  }

  async admit(keyId: string, limits: Limits, now = Date.now()): Promise<Admission> {
    const w = this.current(keyId, now)
    const running = this.inFlight.get(keyId) ?? 0
    const headers = () => limitHeaders(limits, w.requests, w.tokens, now)
    if (limits.max_concurrency && running >= limits.max_concurrency) throw limitError('concurrency', limits, headers(), now)
    if (limits.tpm && w.tokens >= limits.tpm) throw limitError('tokens', limits, headers(), now)
    if (limits.rpm && w.requests >= limits.rpm) throw limitError('requests', limits, headers(), now)
    w.requests++
    if (limits.max_concurrency) this.inFlight.set(keyId, running + 1)
    let finished = false
    return {
      headers: headers(),
      finish: (tokens) => {
        if (finished) return
        finished = true
        if (limits.max_concurrency) this.inFlight.set(keyId, (this.inFlight.get(keyId) ?? 1) - 1)
        if (limits.tpm && tokens > 0) this.current(keyId, Date.now()).tokens += tokens
        return undefined
      },
    }
  }
}
