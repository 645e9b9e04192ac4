// SPEC §4.7: consecutive failures open a per-backend circuit breaker for a cooldown; after it one trial
// request is let through, and its success closes the breaker again (its failure reopens it).
export type BreakerState = 'closed' | 'open' | 'half_open'
/** What `claim()` granted: a plain send (closed), the half-open trial, or nothing now. */
export type BreakerClaim = 'send' | 'trial' | 'refused'

export class CircuitBreaker {
  private failures = 0
  private openedAt = 0
  private trialInFlight = false
  state: BreakerState = 'closed'

  constructor(
    private readonly threshold = 3,
    private readonly cooldownMs = 10_000,
  ) {}

  /** Whether a request may go to this backend now; in half-open state only one trial at a time. */
  allows(now = Date.now()): boolean {
    if (this.state === 'closed') return true
    if (this.state === 'open' && now - this.openedAt >= this.cooldownMs) this.state = 'half_open'
    return this.state === 'half_open' && !this.trialInFlight
  }

  /**
   * Call when a request is about to be sent. The breaker is asked again here because a request chosen
   * by `allows()` may since have waited in the backend's queue: meanwhile the breaker may have opened,
   * or another request become the half-open trial. In half-open state the first claim is the trial.
   */
  claim(now = Date.now()): BreakerClaim {
    if (this.state === 'closed') return 'send'
    if (!this.allows(now)) return 'refused'
    this.trialInFlight = true
    return 'trial'
  }

  success(): void {
    this.failures = 0
    this.trialInFlight = false
    this.state = 'closed'
  }

  /**
   * A request was sent but ended with no verdict on the backend (its client left before the answer):
   * if it was the trial, the next request becomes the trial. Without this, a trial whose client left held
   * the only slot for good, and the backend never took a request again. A plain send sent before the
   * breaker opened frees nothing: the trial under way, if any, is another request's.
   */
  abandon(claim: BreakerClaim): void {
    if (claim === 'trial') this.trialInFlight = false
  }

  failure(now = Date.now()): void {
    this.trialInFlight = false
    this.failures++
    if (this.state === 'half_open' || this.failures >= this.threshold) {
      this.state = 'open'
      this.openedAt = now
    }
  }

  /** Seconds until an open breaker lets a trial through (for Retry-After). */
  retryAfterS(now = Date.now()): number {
    return this.state === 'open' ? Math.max(1, Math.ceil((this.openedAt + this.cooldownMs - now) / 1000)) : 1
  }
}
