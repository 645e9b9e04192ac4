// SPEC §4.8: the upstream body streams to the client chunk by chunk. This wrapper adds only what a
// gateway must: a deadline between chunks, an error line when the stream breaks after the headers
// (SPEC §5), upstream cancellation when the client leaves, and one completion report.
import { midStreamError } from '../errors.ts'
import type { Cancel } from '../runtime/client.ts'
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
  /** The request's deadline (it aborts with UpstreamTimeout), taken over: re-armed per chunk, cleared at the end. */
  readonly deadline: Deadline
  readonly contentType: string | null
  readonly tap?: StreamTap
  readonly onDone: (result: RelayResult) => void
}

const encoder = new TextEncoder()

export function relayBody(body: ReadableStream<Uint8Array>, opts: RelayOptions): ReadableStream<Uint8Array> {
  const { abort, tap } = opts
  const reader = body.getReader()
  let bytesOut = 0
  let finished = false
  const done = (outcome: Outcome, error?: string) => {
    if (finished) return
    finished = true
    deadline.clear()
    opts.onDone(error === undefined ? { outcome, bytesOut } : { outcome, bytesOut, error })
  }
  // Re-armed on each chunk.
  const deadline = opts.deadline
  deadline.refresh()

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done: ended, value } = await reader.read()
          if (ended) {
            const rest = tap?.end()
            if (rest && rest.byteLength > 0) {
              bytesOut += rest.byteLength
              controller.enqueue(rest)
            }
            controller.close()
            done('ok')
            return
          }
          deadline.refresh()
          const out = tap ? tap.chunk(value) : value
          if (out.byteLength > 0) {
            bytesOut += out.byteLength
            controller.enqueue(out)
          }
        } catch (err) {
          const reason = abort.reason
          if (reason instanceof ClientGone) {
            done('aborted', reason.message)
            return
          }
          const message =
            reason instanceof UpstreamTimeout
              ? `upstream stopped sending for ${reason.seconds}s; stream ended by the gateway`
              : 'upstream connection failed mid-stream; the response is incomplete'
          const line = encoder.encode(midStreamError(opts.contentType, message))
          bytesOut += line.byteLength
          controller.enqueue(line)
          controller.close()
          done('error', err instanceof Error && !(reason instanceof UpstreamTimeout) ? err.message : message)
        }
      },
      cancel() {
        // SPEC §4.8: client disconnect aborts the upstream request at once.
        abort.abort(new ClientGone())
        reader.cancel().catch(() => {})
        done('aborted', 'client closed the connection')
      },
    },
    { highWaterMark: 0 },
  )
}
