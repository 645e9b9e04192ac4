// The runtime-neutral face of a runtime's own client for whole exchanges (SPEC §7, §8.3): a request whose
// body is in memory, an answer read whole. Bun supplies one (http1.bun.ts); elsewhere fetch serves.

export interface WholeRequest {
  /** The backend's base URL (`http://host:port[/prefix]`). */
  readonly base: string
  readonly method: string
  /** Path and query. */
  readonly target: string
  readonly headers: Headers
  readonly body: Uint8Array | null
  readonly signal: AbortSignal
}

export interface WholeResponse {
  readonly status: number
  readonly headers: Headers
  readonly body: Uint8Array<ArrayBuffer>
}

export interface WholeClient {
  /** Whether this client serves backends at `base`. */
  handles(base: string): boolean
  request(req: WholeRequest): Promise<WholeResponse>
  /** Closes idle connections (shutdown). */
  close(): void
}

/**
 * A transport failure: `refused` when no connection could be made; `reset` when the connection broke
 * (`partial` once some of the answer had arrived); `protocol` for an answer that is not valid HTTP/1.1
 * or too large to read whole.
 */
export class WholeFailure extends Error {
  constructor(
    readonly reason: 'refused' | 'reset' | 'protocol',
    readonly partial: boolean,
    message: string,
  ) {
    super(message)
    this.name = 'WholeFailure'
  }
}
