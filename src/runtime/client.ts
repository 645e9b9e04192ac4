// The runtime-neutral face of a runtime's own HTTP client for plain-http backends (SPEC §7, §8.3): a
// request whose body is in memory, its answer either read whole or streamed. Bun supplies one
// (http1.bun.ts); elsewhere fetch serves.

export interface ClientRequest {
  /** The backend's base URL (`http://host:port[/prefix]`). */
  readonly base: string
  readonly method: string
  /** Path and query. */
  readonly target: string
  readonly headers: Headers
  readonly body: Uint8Array | null
  /** Ends the exchange: before the answer's head, the call fails with the signal's reason; after it, the body does. */
  readonly signal: AbortSignal
}

/** An answer read whole. */
export interface WholeResponse {
  readonly status: number
  readonly headers: Headers
  readonly body: Uint8Array<ArrayBuffer>
}

/** An answer whose head has arrived; its body streams, with back-pressure, as the backend sends it. */
export interface StreamedResponse {
  readonly status: number
  readonly headers: Headers
  /** Null when the answer has no body (HEAD, 204, 304). */
  readonly body: ReadableStream<Uint8Array> | null
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
