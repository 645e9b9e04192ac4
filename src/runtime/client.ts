// The runtime-neutral face of a runtime's own HTTP client for plain-http backends (SPEC §7, §8.3): a
// request whose body is in memory, its answer either read whole or streamed. Bun supplies one
// (http1.bun.ts); elsewhere fetch serves.

/**
 * Header fields as a flat list, `[name, value, name, value, ...]`, names in lower case. The request
 * path hands headers from the client's request to the backend and back without building a Headers
 * object at each step (each costs native calls per field, on every request).
 */
export type HeaderList = string[]

/** The first value of `name` (lower case), or null. */
export function headerValue(list: readonly string[], name: string): string | null {
  for (let i = 0; i < list.length; i += 2) if (list[i] === name) return list[i + 1] as string
  return null
}

/** The list with `name` set to `value` (a new list; earlier values of `name` are left out). */
export function withHeader(list: readonly string[], name: string, value: string): HeaderList {
  const out: HeaderList = []
  for (let i = 0; i < list.length; i += 2) if (list[i] !== name) out.push(list[i] as string, list[i + 1] as string)
  out.push(name, value)
  return out
}

/** A Headers object holding the list, for the APIs that take one (fetch, Response). */
export function toHeaders(list: readonly string[]): Headers {
  const headers = new Headers()
  for (let i = 0; i < list.length; i += 2) headers.append(list[i] as string, list[i + 1] as string)
  return headers
}

export interface ClientRequest {
  /** The backend's base URL (`http://host:port[/prefix]`). */
  readonly base: string
  readonly method: string
  /** Path and query. */
  readonly target: string
  readonly headers: readonly string[]
  readonly body: Uint8Array | null
  /** Ends the exchange: before the answer's head, the call fails with the signal's reason; after it, the body does. */
  readonly signal: CancelSignal
}

/** What the runtime's client needs of an abort signal: an AbortSignal has it, and so has Cancel. */
export interface CancelSignal {
  readonly aborted: boolean
  readonly reason: unknown
  throwIfAborted(): void
  addEventListener(type: 'abort', listener: () => void): void
  removeEventListener(type: 'abort', listener: () => void): void
}

/**
 * One request's cancellation (a departed client, a deadline), as an AbortController would do it but
 * without an event target: its listeners are a plain list, usually of one (the exchange in progress).
 * An AbortController with the exchange's listener added and removed cost 0.5 µs per request in a
 * micro run, against 0.02 µs for this. A real AbortSignal, for fetch, is made only when asked for.
 */
export class Cancel implements CancelSignal {
  aborted = false
  reason: unknown = undefined
  private listeners: Array<() => void> | undefined
  private controller: AbortController | undefined

  abort(reason: unknown): void {
    if (this.aborted) return
    this.aborted = true
    this.reason = reason
    this.controller?.abort(reason)
    const listeners = this.listeners
    this.listeners = undefined
    if (listeners) for (const listener of listeners) listener()
  }

  throwIfAborted(): void {
    if (this.aborted) throw this.reason
  }

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return
    if (this.listeners) this.listeners.push(listener)
    else this.listeners = [listener]
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const at = this.listeners?.indexOf(listener) ?? -1
    if (at !== -1) this.listeners?.splice(at, 1)
  }

  /** An AbortSignal that follows this cancellation (for fetch), made on first use. */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController()
      if (this.aborted) this.controller.abort(this.reason)
    }
    return this.controller.signal
  }
}

/** An answer read whole. */
export interface WholeResponse {
  readonly status: number
  readonly headers: HeaderList
  readonly body: Uint8Array<ArrayBuffer>
}

/** An answer whose head has arrived; its body streams, with back-pressure, as the backend sends it. */
export interface StreamedResponse {
  readonly status: number
  readonly headers: HeaderList
  /** False when the answer has no body (HEAD, 204, 304). */
  readonly hasBody: boolean
  /** The body as it arrives; null when there is none. Taking it (or `relay`'s stream) starts the flow. */
  readonly body: ReadableStream<Uint8Array> | null
  /**
   * The body as one stream whose chunks `relay` has seen on their way in, instead of a second stream
   * pulling from `body` (see relayStream); null when there is none. Take either this or `body`, once.
   */
  relay(relay: BodyRelay): ReadableStream<Uint8Array> | null
}

/** What a relay does to a streamed body as it passes (the proxy's metering, deadline and error line). */
export interface BodyRelay {
  /** A chunk as it arrives: the bytes to pass on (usually the chunk itself; maybe none). */
  chunk(bytes: Uint8Array): Uint8Array
  /** The body is complete: bytes still to add at its end, if any. */
  end(): Uint8Array | undefined
  /** The body broke off: bytes that end the stream in its place (an error line), or undefined to error it. */
  fail(err: unknown): Uint8Array | undefined
  /** The stream's reader cancelled it. */
  cancel(): void
  /**
   * The client's socket cannot take more (true) or has taken it (false). A stall longer than the
   * relay allows ends the exchange as the client's departure, and `giveUp` drops its connection; it is
   * handed the error line that ends the stream where the connection is not dropped (see relayStream).
   */
  stall(on: boolean, giveUp: (line: Uint8Array) => void): void
}

/**
 * `relay` applied to a stream someone else made (fetch's body, a decoder's output): a second stream
 * that pulls one chunk at a time, so nothing is queued between the two. Between a chunk handed on and
 * the server's next pull, the client has not taken it: a stall, for the relay to bound.
 */
export function relayStream(
  body: ReadableStream<Uint8Array>,
  relay: BodyRelay,
  /** Whether the server's idle timeout will close a let-go client's connection (see below). */
  idleCloses = true,
): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  // A client let go gets nothing more, not even the stream's end, which would pass a cut answer off as
  // whole. Where the server's idle timeout closes the connection once the request is over (Bun), the
  // stream is left open for it, as the runtime's own client's is (http1.bun.ts): erroring it would
  // close it at once, but Bun prints a stream's error. Elsewhere (Deno) nothing would ever end it, and a
  // client that read again would wait for good; erroring it there is printed too. So there the stream
  // ends with the relay's error line, which every client reads as a failed answer (UPSTREAM §3).
  let gone = false
  let endWith: ((line: Uint8Array) => void) | undefined
  const giveUp = (line: Uint8Array) => {
    gone = true
    reader.cancel().catch(() => {})
    endWith?.(line)
  }
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (idleCloses) return
        endWith = (line) => {
          // Unless the server has cancelled the stream meanwhile (the client left after all).
          try {
            controller.enqueue(line)
            controller.close()
          } catch {}
        }
      },
      async pull(controller) {
        if (gone) return new Promise<void>(() => {})
        relay.stall(false, giveUp)
        try {
          const { done, value } = await reader.read()
          if (done) return endRelayed(controller, relay, false)
          const out = relay.chunk(value)
          if (out.byteLength > 0) controller.enqueue(out)
          relay.stall(true, giveUp)
        } catch (err) {
          endRelayed(controller, relay, true, err)
        }
      },
      cancel() {
        relay.cancel()
        reader.cancel().catch(() => {})
      },
    },
    { highWaterMark: 0 },
  )
}

/**
 * Ends a body's stream: complete, with the relay's last bytes; broken off (`failed`, with `err`), with
 * the relay's error line, or errored when it has none or there is no relay.
 */
export function endRelayed(
  controller: Pick<ReadableStreamDefaultController<Uint8Array>, 'enqueue' | 'close' | 'error'>,
  relay: BodyRelay | undefined,
  failed: boolean,
  err?: unknown,
): void {
  const last = failed ? relay?.fail(err) : relay?.end()
  if (failed && last === undefined) {
    controller.error(err)
    return
  }
  if (last && last.byteLength > 0) controller.enqueue(last)
  controller.close()
}

export interface RuntimeClient {
  /** Whether this client serves backends at `base`. */
  handles(base: string): boolean
  /** The answer read whole (up to the client's size limit). */
  request(req: ClientRequest): Promise<WholeResponse>
  /** The answer's head; its body streams. */
  stream(req: ClientRequest): Promise<StreamedResponse>
  /** Closes idle connections (shutdown). */
  close(): void
}

/**
 * A transport failure: `refused` when no connection could be made; `reset` when the connection broke
 * (`partial` once some of the answer had arrived); `protocol` for an answer that is not valid HTTP/1.1
 * or too large to read whole.
 */
export class ClientFailure extends Error {
  constructor(
    readonly reason: 'refused' | 'reset' | 'protocol',
    readonly partial: boolean,
    message: string,
  ) {
    super(message)
    this.name = 'ClientFailure'
  }
}
