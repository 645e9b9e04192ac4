// SPEC §4.7: each backend admits OLLAMA_MAX_CONNECTIONS requests at once. Further requests wait in a
// queue served round-robin across keys, so one key flooding a backend cannot starve the others; the
// queue is bounded in length and in wait, after which the request gets a 503.
import { GatewayError } from '../errors.ts'
import type { CancelSignal } from '../runtime/client.ts'

interface Waiter {
  readonly grant: () => void
  readonly timer: ReturnType<typeof setTimeout>
}

export class FairAdmission {
  private active = 0
  private queued = 0
  /** Per-key FIFO queues; Map order is the round-robin order. */
  private readonly queues = new Map<string, Waiter[]>()

  constructor(
    private readonly limit: number,
    private readonly maxQueue: number,
    private readonly maxWaitMs: number,
  ) {}

  get inUse(): number {
    return this.active
  }
  get waiting(): number {
    return this.queued
  }

  /** A slot now, without waiting, or undefined when the caller must queue (`acquire`). */
  tryAcquire(): (() => void) | undefined {
    if (this.active >= this.limit || this.queued > 0) return undefined
    this.active++
    return this.releaser()
  }

  /**
   * Resolves with a release function once a slot is held. A request whose `cancel` fires while it waits
   * (its client left, its deadline passed) leaves the queue at once, rejected with the signal's reason:
   * departed clients neither fill the bounded queue nor wait for a slot only to give it back.
   */
  acquire(key: string, backend: string, cancel?: CancelSignal): Promise<() => void> {
    const now = this.tryAcquire()
    if (now) return Promise.resolve(now)
    if (cancel?.aborted) return Promise.reject(cancel.reason)
    if (this.queued >= this.maxQueue) {
      return Promise.reject(
        new GatewayError('queue_full', `backend '${backend}' is busy and its queue is full; retry shortly`, { 'retry-after': '2' }),
      )
    }
    return new Promise((resolve, reject) => {
      const leave = () => {
        clearTimeout(waiter.timer)
        this.remove(key, waiter)
        reject(cancel?.reason)
      }
      const waiter: Waiter = {
        grant: () => {
          cancel?.removeEventListener('abort', leave)
          resolve(this.releaser())
        },
        timer: setTimeout(() => {
          cancel?.removeEventListener('abort', leave)
          this.remove(key, waiter)
          reject(
            new GatewayError('queue_full', `backend '${backend}' stayed busy for ${this.maxWaitMs / 1000}s; retry shortly`, {
              'retry-after': '5',
            }),
          )
        }, this.maxWaitMs),
      }
      const queue = this.queues.get(key)
      if (queue) queue.push(waiter)
      else this.queues.set(key, [waiter])
      this.queued++
      cancel?.addEventListener('abort', leave)
    })
  }

  private releaser(): () => void {
    let released = false
    return () => {
      if (released) return
      released = true
      this.active--
      this.next()
    }
  }

  /** Hands the free slot to the head of the next key's queue; that key moves to the back. */
  private next(): void {
    while (this.active < this.limit && this.queued > 0) {
      const [key, queue] = this.queues.entries().next().value as [string, Waiter[]]
      const waiter = queue.shift() as Waiter
      this.queues.delete(key)
      if (queue.length > 0) this.queues.set(key, queue)
      this.queued--
      clearTimeout(waiter.timer)
      this.active++
      waiter.grant()
    }
  }

  private remove(key: string, waiter: Waiter): void {
    const queue = this.queues.get(key)
    const i = queue?.indexOf(waiter) ?? -1
    if (!queue || i === -1) return
    queue.splice(i, 1)
    this.queued--
    if (queue.length === 0) this.queues.delete(key)
  }
}
