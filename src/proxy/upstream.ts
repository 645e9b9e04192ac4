// One request to one backend: native fetch or the runtime's own client (SPEC §7), no redirects followed
// (SPEC §6), and transport failures mapped to gateway errors. The caller's deadline (SPEC §3.2
// OLLAMA_READ_TIMEOUT_S) aborts it.
import type { Backend } from '../backends/backend.ts'
import { GatewayError } from '../errors.ts'
import {
  type Cancel,
  ClientFailure,
  type ClientRequest,
  type RuntimeClient,
  type StreamedResponse,
  toHeaders,
  type WholeResponse,
} from '../runtime/client.ts'

export interface UpstreamCall {
  readonly backend: Backend
  readonly method: string
  /** Path and query, e.g. `/api/chat?x=1`. */
  readonly target: string
  /** The fields to send (see HeaderList): the own client writes them as they are, fetch gets a Headers. */
  readonly headers: readonly string[]
  readonly body?: BodyInit | null
  /** Aborts the upstream request: client disconnects and read timeouts (the caller's deadline) both end here. */
  readonly abort: Cancel
}

/** Why an upstream call was aborted, so the catch can tell a timeout from a departed client. */
export class UpstreamTimeout extends Error {
  constructor(readonly seconds: number) {
    super(`no answer within ${seconds}s`)
    this.name = 'UpstreamTimeout'
  }
}
export class ClientGone extends Error {
  constructor(message = 'client closed the connection') {
    super(message)
    this.name = 'ClientGone'
  }
}

/** A transport failure before any response byte: another backend may be tried (SPEC §4.7). */
export class UpstreamFailure extends GatewayError {
  constructor(
    readonly backendName: string,
    readonly reason: 'refused' | 'reset' | 'timeout' | 'other',
    message: string,
    /** Part of an answer had arrived: the request ran, and is not tried elsewhere. */
    readonly partial = false,
  ) {
    super(reason === 'timeout' ? 'upstream_timeout' : 'upstream_unreachable', message)
  }
  /** True when the request may have reached Ollama, so a retry could run the inference again. */
  get mayHaveRun(): boolean {
    return this.reason !== 'refused'
  }
}

export async function callUpstream(call: UpstreamCall): Promise<Response> {
  const { backend, abort } = call
  const init: RequestInit & { decompress?: boolean; duplex?: 'half' } = {
    method: call.method,
    headers: toHeaders(call.headers),
    body: call.body ?? null,
    signal: abort.signal,
    redirect: 'manual',
  }
  if (call.body instanceof ReadableStream) init.duplex = 'half'
  try {
    return await fetch(backend.url + call.target, init)
  } catch (err) {
    throw classify(err, abort, backend.name)
  }
}

/** The same call through the runtime's own client, the answer read whole (the body is in memory). */
export async function callWhole(client: RuntimeClient, call: UpstreamCall): Promise<WholeResponse> {
  try {
    return await client.request(clientRequest(call))
  } catch (err) {
    throw clientError(err, call)
  }
}

/** The same call through the runtime's own client, the answer's body streamed. */
export async function callStreamed(client: RuntimeClient, call: UpstreamCall): Promise<StreamedResponse> {
  try {
    return await client.stream(clientRequest(call))
  } catch (err) {
    throw clientError(err, call)
  }
}

function clientRequest(call: UpstreamCall): ClientRequest {
  return {
    base: call.backend.url,
    method: call.method,
    target: call.target,
    headers: call.headers,
    body: (call.body as Uint8Array | null | undefined) ?? null,
    signal: call.abort,
  }
}

function clientError(err: unknown, call: UpstreamCall): Error {
  const name = call.backend.name
  if (!(err instanceof ClientFailure) || call.abort.aborted) return classify(err, call.abort, name)
  if (err.reason === 'refused') return new UpstreamFailure(name, 'refused', `cannot reach backend '${name}': connection refused`)
  if (!err.partial) return new UpstreamFailure(name, 'reset', `backend '${name}' closed the connection before answering`)
  const what = err.reason === 'reset' ? 'broke off its answer' : `sent an answer the gateway cannot read (${err.message})`
  return new UpstreamFailure(name, err.reason === 'reset' ? 'reset' : 'other', `backend '${name}' ${what}`, true)
}

function classify(err: unknown, cancel: Cancel, name: string): Error {
  if (cancel.aborted) {
    const reason = cancel.reason
    if (reason instanceof UpstreamTimeout) {
      return new UpstreamFailure(name, 'timeout', `backend '${name}' did not answer within ${reason.seconds}s`)
    }
    return reason instanceof ClientGone ? reason : new ClientGone()
  }
  const code = String((err as { code?: unknown })?.code ?? '')
  if (code === 'ECONNREFUSED' || code === 'ConnectionRefused' || /refused/i.test(String(err))) {
    return new UpstreamFailure(name, 'refused', `cannot reach backend '${name}': connection refused`)
  }
  if (code === 'ECONNRESET' || code === 'ConnectionClosed' || /reset|closed/i.test(String(err))) {
    return new UpstreamFailure(name, 'reset', `backend '${name}' closed the connection before answering`)
  }
  return new UpstreamFailure(name, 'other', `cannot reach backend '${name}': ${code || 'network error'}`)
}
