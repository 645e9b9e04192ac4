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
  readonly signal: AbortSignal
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
