// The requests in flight are watched together, on one timer: each one's read deadline (SPEC §3.2
// OLLAMA_READ_TIMEOUT_S; while a stream's client does not read, the client's), whether its client is
// still there (SPEC §4.8), and its connection's exemption from the idle timeout (SPEC §6) while it
// lasts. A timer per request and a listener on every request's `signal` cost each request a native
// timer and an AbortSignal, and on Bun they lengthened every young-generation collection
// (bench/RESULTS.md). Most requests are answered long before either matters: here a request costs one
// entry in a list, and its client's signal is asked for only if the request is still in flight at the
// next check.
import type { Cancel } from '../runtime/client.ts'
import { ClientGone, UpstreamTimeout } from './upstream.ts'

/** A request's deadline, as the proxy and the relay see it. */
export interface Deadline {
  /** Re-armed: the full timeout from now (before each attempt, for the body, on each streamed chunk). */
  refresh(): void
  /**
   * The gateway holds upstream back for a client that does not read: the full timeout from now, unless
   * already stalled, and past it `expired` runs instead of the upstream timeout. A refresh ends the stall.
   */
  stall(expired: (seconds: number) => void): void
  /** The request is over: nothing more is checked for it. */
  clear(): void
}

/** The longest gap between two checks; shorter for short timeouts (a tenth of the timeout, at least 10 ms). */
const MAX_TICK_MS = 100

export class RequestWatch {
  /**
   * An array with swap-removal, not a Set: a Set keeps a deleted entry (and its request) reachable
   * until it next rehashes, so under load entries outlived young-generation collections and piled up
   * in the old generation (2.4 MB more after each collection, until a full one).
   */
  private readonly watched: Watched[] = []
  private timer: ReturnType<typeof setInterval> | undefined
  private readonly tickMs: number

  constructor(
    private readonly timeoutMs: number,
    /** The runtime's "client went away" signal, where it has one (see runtime/). */
    private readonly clientSignal: (request: Request) => AbortSignal | undefined,
    /** The runtime's idle-timeout exemption, where it has one (see runtime/). */
    private readonly holdOpen?: (request: Request, hold: boolean) => void,
  ) {
    this.tickMs = Math.max(10, Math.min(MAX_TICK_MS, Math.floor(timeoutMs / 10)))
  }

  /**
   * Watches `request` until the deadline is cleared: past the timeout, `abort` fires with
   * UpstreamTimeout; when its client leaves, with ClientGone. The timeout is late by at most a tick;
   * a client that leaves is noticed at the first check after the request began, or at once if it
   * leaves after that check.
   */
  watch(request: Request, abort: Cancel): Deadline {
    const entry = new Watched(this, request, abort, performance.now() + this.timeoutMs, this.watched.length)
    this.watched.push(entry)
    if (this.timer === undefined) {
      this.timer = setInterval(() => this.check(), this.tickMs)
      ;(this.timer as { unref?: () => void }).unref?.()
    }
    return entry
  }

  /** Requests watched now (tests). */
  get size(): number {
    return this.watched.length
  }

  /** @internal */
  rearm(entry: Watched): void {
    entry.at = performance.now() + this.timeoutMs
  }

  /** @internal The request is over: its connection is subject to the idle timeout again. */
  release(entry: Watched): void {
    this.holdOpen?.(entry.request, false)
  }

  /** @internal */
  forget(entry: Watched): void {
    const at = entry.index
    if (at < 0) return
    entry.index = -1
    const last = this.watched.pop() as Watched
    if (last !== entry) {
      this.watched[at] = last
      last.index = at
    }
  }

  private check(): void {
    if (this.watched.length === 0) {
      clearInterval(this.timer)
      this.timer = undefined
      return
    }
    const now = performance.now()
    // Backwards: an entry removed here is replaced by one already checked. An abort may end other
    // requests at once (and remove their entries), so the index is checked against the length.
    for (let i = this.watched.length - 1; i >= 0; i--) {
      if (i >= this.watched.length) continue
      const entry = this.watched[i] as Watched
      if (now >= entry.at) {
        this.forget(entry)
        if (entry.stalled) entry.stalled(this.timeoutMs / 1000)
        else entry.abort.abort(new UpstreamTimeout(this.timeoutMs / 1000))
      } else if (!entry.listening) {
        // Still in flight at a check: from now on its client's departure aborts it at once. A signal
        // first asked for after the client left is aborted already (Bun). And its connection may now
        // be silent longer than the idle timeout (a model loading): the deadline bounds that instead.
        entry.listening = true
        if (this.holdOpen) {
          this.holdOpen(entry.request, true)
          entry.held = true
        }
        const signal = this.clientSignal(entry.request)
        if (!signal) continue
        if (signal.aborted) entry.abort.abort(new ClientGone())
        else signal.addEventListener('abort', () => entry.abort.abort(new ClientGone()))
      }
    }
  }
}

class Watched implements Deadline {
  listening = false
  /** Exempted from the idle timeout (released when cleared). */
  held = false
  /** Set while its client does not read (see Deadline.stall). */
  stalled: ((seconds: number) => void) | undefined

  constructor(
    private readonly watch: RequestWatch,
    readonly request: Request,
    readonly abort: Cancel,
    public at: number,
    /** Where it is in the watch's list; -1 once forgotten. */
    public index: number,
  ) {}

  refresh(): void {
    this.stalled = undefined
    this.watch.rearm(this)
  }

  stall(expired: (seconds: number) => void): void {
    if (this.stalled) return
    this.stalled = expired
    this.watch.rearm(this)
  }

  clear(): void {
    this.watch.forget(this)
    if (this.held) {
      this.held = false
      this.watch.release(this)
    }
  }
}
