// Counts requests whose responses are still being written, so shutdown can wait for them
// (SPEC §4.1: in-flight requests get up to SHUTDOWN_GRACE_S).
export class InFlight {
  private count = 0
  private waiters: Array<() => void> = []

  get size(): number {
    return this.count
  }

  enter(): void {
    this.count++
  }

  leave(): void {
    this.count--
    if (this.count === 0) {
      const waiters = this.waiters
      this.waiters = []
      for (const wake of waiters) wake()
    }
  }

  /** Resolves true once nothing is in flight, or false when the deadline passes first. */
  drain(deadlineMs: number): Promise<boolean> {
    if (this.count === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), deadlineMs)
      this.waiters.push(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
  }
}
