// SPEC §4.8: the upstream body streams to the client chunk by chunk. The relay adds only what a
// gateway must: a deadline between chunks, an error line when the stream breaks after the headers
// (SPEC §5), upstream cancellation when the client leaves or stops reading (SPEC §6: timeouts bound
// what one client can hold), and one completion report. The runtime's own client applies it as each
// chunk arrives, into the one stream the server reads; fetch's body is pulled through it (relayStream).
import { type Dialect, midStreamError } from '../errors.ts'
import type { BodyRelay, Cancel } from '../runtime/client.ts'
import { ClientGone, UpstreamTimeout } from './upstream.ts'
import type { Deadline } from './watch.ts'

export type Outcome = 'ok' | 'error' | 'aborted'

export interface RelayResult {
  readonly outcome: Outcome
  readonly bytesOut: number
  readonly error?: string
}

/** A pass-through observer or rewriter of the byte stream (metering, SPEC §4.9). */
export interface StreamTap {
  /** Returns the bytes to send on; usually `chunk` itself. */
  chunk(chunk: Uint8Array): Uint8Array
  /** Bytes still held back at the end of a good stream. */
  end(): Uint8Array | undefined
}

export interface RelayOptions {
  readonly abort: Cancel
  /**
   * The request's deadline (it aborts with UpstreamTimeout), taken over: re-armed per chunk and while
   * the client does not read, cleared at the end.
   */
  readonly deadline: Deadline
  readonly contentType: string | null
  /** The route's error dialect, for the error line (SPEC §5). */
  readonly dialect: Dialect
  readonly tap?: StreamTap
  readonly onDone: (result: RelayResult) => void
}

const encoder = new TextEncoder()

/** The gateway's side of one relayed body; it reports once, however the body ends. */
export class Relay implements BodyRelay {
  private bytesOut = 0
  private finished = false
  /** How the stream's owner drops a client that stopped reading (see stall). */
  private giveUp: ((line: Uint8Array) => void) | undefined

  constructor(private readonly opts: RelayOptions) {
    opts.deadline.refresh()
  }

  chunk(bytes: Uint8Array): Uint8Array {
    this.opts.deadline.refresh()
    const out = this.opts.tap ? this.opts.tap.chunk(bytes) : bytes
    this.bytesOut += out.byteLength
    return out
  }

  end(): Uint8Array | undefined {
    const rest = this.opts.tap?.end()
    if (rest) this.bytesOut += rest.byteLength
    this.done('ok')
    return rest
  }

  fail(err: unknown): Uint8Array | undefined {
    const reason = this.opts.abort.reason
    if (reason instanceof ClientGone) {
      this.done('aborted', reason.message)
      return undefined
    }
    const message =
      reason instanceof UpstreamTimeout
        ? `upstream stopped sending for ${reason.seconds}s; stream ended by the gateway`
        : 'upstream connection failed mid-stream; the response is incomplete'
    const line = this.errorLine(message)
    this.bytesOut += line.byteLength
    this.done('error', err instanceof Error && !(reason instanceof UpstreamTimeout) ? err.message : message)
    return line
  }

  cancel(gone = new ClientGone()): void {
    // SPEC §4.8: client disconnect aborts the upstream request at once.
    this.opts.abort.abort(gone)
    this.done('aborted', gone.message)
  }

  /**
   * Upstream waits while the client does not read: it is not silent then, so the deadline measures
   * the client instead, from the stall's start, and past it the client counts as gone.
   */
  stall(on: boolean, giveUp: (line: Uint8Array) => void): void {
    if (this.finished) return
    if (on) {
      this.giveUp = giveUp
      this.opts.deadline.stall(this.stalledTooLong)
    } else this.opts.deadline.refresh()
  }

  private readonly stalledTooLong = (seconds: number): void => {
    const why = `client stopped reading for ${seconds}s`
    this.giveUp?.(this.errorLine(`${why}; the response is incomplete`))
    this.cancel(new ClientGone(why))
  }

  /** The stream's error line in the route's dialect (SPEC §5). */
  private errorLine(message: string): Uint8Array {
    return encoder.encode(midStreamError(this.opts.contentType, message, this.opts.dialect))
  }

  private done(outcome: Outcome, error?: string): void {
    if (this.finished) return
    this.finished = true
    this.opts.deadline.clear()
    const bytesOut = this.bytesOut
    this.opts.onDone(error === undefined ? { outcome, bytesOut } : { outcome, bytesOut, error })
  }
}
