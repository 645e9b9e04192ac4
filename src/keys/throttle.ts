// SPEC §4.2: failed verifications are throttled per client address. Only the expensive path (store
// lookup, argon2) is refused; a valid cached key from the same address still works.
export class FailureThrottle {
  private readonly windows = new Map<string, { start: number; failures: number }>()

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
  ) {}

  /** Seconds until the address may try again, or 0 when it may try now. */
  blockedFor(ip: string, now = Date.now()): number {
    const w = this.windows.get(ip)
    if (!w || now - w.start >= this.windowMs || w.failures < this.maxFailures) return 0
    return Math.ceil((w.start + this.windowMs - now) / 1000)
  }

  fail(ip: string, now = Date.now()): void {
    const w = this.windows.get(ip)
    if (!w || now - w.start >= this.windowMs) {
      if (this.windows.size > 100_000) this.prune(now)
      this.windows.set(ip, { start: now, failures: 1 })
    } else {
      w.failures++
    }
  }

  private prune(now: number): void {
    for (const [ip, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(ip)
  }
}
