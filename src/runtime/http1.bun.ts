// A small HTTP/1.1 client for plain-http backends on Bun (SPEC §7): the request's body is in memory;
// the answer is read whole or streamed with back-pressure. Bun's fetch hands every request, and every
// chunk of a streamed answer, to its HTTP client thread and back: about 51 µs of CPU per small
// exchange in a micro run, against 27 µs for keep-alive sockets on the event loop's own thread
// (bench/RESULTS.md, notes). Uploads of unknown length and https backends stay on fetch.
//
// Framing follows RFC 9112: Content-Length, chunked, or until close; 1xx interim answers are skipped;
// HEAD, 204 and 304 have no body. A connection goes back to its origin's pool only when its answer was
// complete and the server did not ask to close.
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib'
import type { Socket } from 'bun'
import { concatBytes } from '../shared/bytes.ts'
import {
  type BodyRelay,
  type CancelSignal,
  ClientFailure,
  type ClientRequest,
  endRelayed,
  type HeaderList,
  headerValue,
  type RuntimeClient,
  relayStream,
  type StreamedResponse,
  type WholeResponse,
} from './client.ts'

const MAX_HEAD_BYTES = 64 * 1024
/**
 * RFC 9110 §5.1: a field name is a token. Each byte's lower-case form where it may stand in a name,
 * else 0: the head is read in place, byte by byte, and only the strings kept are made.
 */
const TOKEN = new Uint8Array(256)
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") {
  const code = c.charCodeAt(0)
  TOKEN[code] = code
  if (code >= 97) TOKEN[code - 32] = code
}
/** The field names answers carry most, reused instead of made for every answer. */
const COMMON_NAMES = [
  'content-type',
  'content-length',
  'date',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-encoding',
  'server',
  'vary',
].map((name) => ({ name, bytes: Buffer.from(name, 'latin1') }))
const HTTP_1 = Buffer.from('HTTP/1.', 'latin1')
const CRLF2 = Buffer.from('\r\n\r\n')
const CRLF = Buffer.from('\r\n')

interface Origin {
  readonly hostname: string
  readonly port: number
  /** `host` header value. */
  readonly host: string
  /** Path prefix of the base URL, without a trailing slash. */
  readonly prefix: string
  readonly idle: Connection[]
}

export interface Http1ClientOptions {
  /** Largest answer read whole; a longer one fails the exchange. */
  readonly maxBodyBytes: number
  /** Idle keep-alive connections kept per origin. */
  readonly maxIdle: number
}

export class Http1Client implements RuntimeClient {
  private readonly origins = new Map<string, Origin>()
  private closed = false

  constructor(private readonly opts: Http1ClientOptions) {}

  /** Whether `base` is a backend this client serves (plain http). */
  handles(base: string): boolean {
    return base.startsWith('http://')
  }

  request(req: ClientRequest): Promise<WholeResponse> {
    return this.exchange(req, (resolve, reject) => new WholeReceiver(this.opts.maxBodyBytes, resolve, reject))
  }

  stream(req: ClientRequest): Promise<StreamedResponse> {
    return this.exchange(req, (resolve, reject, flow) => new StreamReceiver(resolve, reject, flow))
  }

  /** Closes every idle connection (shutdown). */
  close(): void {
    this.closed = true
    for (const origin of this.origins.values()) for (const conn of origin.idle.splice(0)) conn.close()
  }

  private async exchange<T>(req: ClientRequest, receiver: ReceiverFactory<T>): Promise<T> {
    const origin = this.origin(req.base)
    const head = this.head(origin, req)
    // A pooled connection the server closed while it sat idle fails before any byte of an answer. As
    // with any reset before the first byte (SPEC §4.7), the request is tried again: here on a new
    // connection to the same backend, once the idle ones are used up.
    for (;;) {
      req.signal.throwIfAborted()
      const pooled = origin.idle.pop()
      const conn = pooled && !pooled.closed ? pooled : await this.connect(origin, req.signal)
      try {
        return await new Promise<T>((resolve, reject) => {
          conn.start(head, req, receiver(resolve, reject, conn), () => this.release(origin, conn))
        })
      } catch (err) {
        conn.close()
        if (pooled === conn && err instanceof ClientFailure && err.reason === 'reset' && !err.partial) continue
        throw err
      }
    }
  }

  /** A connection whose answer is complete: back to the pool, or closed. */
  private release(origin: Origin, conn: Connection): void {
    if (conn.reusable && !this.closed && origin.idle.length < this.opts.maxIdle) origin.idle.push(conn)
    else conn.close()
  }

  private origin(base: string): Origin {
    let origin = this.origins.get(base)
    if (!origin) {
      const url = new URL(base)
      const port = Number(url.port || 80)
      origin = {
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port,
        host: url.host,
        prefix: url.pathname.replace(/\/+$/, ''),
        idle: [],
      }
      this.origins.set(base, origin)
    }
    return origin
  }

  private head(origin: Origin, req: ClientRequest): string {
    let head = `${req.method} ${origin.prefix}${req.target} HTTP/1.1\r\nhost: ${origin.host}\r\n`
    const fields = req.headers
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i] as string
      if (name !== 'host' && name !== 'content-length' && name !== 'transfer-encoding' && name !== 'connection')
        head += `${name}: ${fields[i + 1]}\r\n`
    }
    if (req.body) head += `content-length: ${req.body.byteLength}\r\n`
    else if (req.method !== 'GET' && req.method !== 'HEAD') head += 'content-length: 0\r\n'
    return `${head}\r\n`
  }

  /** A new connection; an abort (deadline, departed client) ends the wait for it, as it would fetch's. */
  private connect(origin: Origin, signal: CancelSignal): Promise<Connection> {
    const conn = new Connection()
    return new Promise<Connection>((resolve, reject) => {
      const onAbort = () => {
        // A connection that completes after all is closed at once.
        conn.close()
        reject(signal.reason)
      }
      signal.addEventListener('abort', onAbort)
      Bun.connect<Connection>({ hostname: origin.hostname, port: origin.port, data: conn, socket: SOCKET_HANDLERS }).then(
        (socket) => {
          signal.removeEventListener('abort', onAbort)
          conn.attach(socket)
          if (conn.closed) socket.terminate()
          else resolve(conn)
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort)
          const code = String((err as { code?: unknown }).code ?? '')
          reject(new ClientFailure('refused', false, `connection refused (${code || (err as Error).message})`))
        },
      )
    })
  }
}

const SOCKET_HANDLERS = {
  open(socket: Socket<Connection>) {
    socket.data.attach(socket)
    // Aborted while connecting.
    if (socket.data.closed) socket.terminate()
  },
  data(socket: Socket<Connection>, chunk: Uint8Array) {
    socket.data.onData(chunk)
  },
  drain(socket: Socket<Connection>) {
    socket.data.onDrain()
  },
  close(socket: Socket<Connection>) {
    socket.data.onClose()
  },
  error(socket: Socket<Connection>, err: Error) {
    socket.data.onClose(err)
  },
}

/** Reading from the connection, as a streamed body's consumer steers it. */
interface Flow {
  pause(): void
  resume(): void
  /** The consumer wants no more: the connection is dropped. */
  cancel(): void
}

/** Where an answer goes as it is parsed: read whole, or streamed. */
interface Receiver {
  /** The final head (not a 1xx); a failure refuses the answer. */
  head(status: number, headers: HeaderList, hasBody: boolean): ClientFailure | undefined
  /** Body bytes (a view of the socket's read, which stays valid); a failure ends the answer. */
  body(bytes: Uint8Array): ClientFailure | undefined
  /** The answer is complete. */
  end(): void
  fail(err: Error): void
}
type ReceiverFactory<T> = (resolve: (value: T) => void, reject: (err: Error) => void, flow: Flow) => Receiver

type Framing = { kind: 'none' } | { kind: 'length'; left: number } | { kind: 'chunked' } | { kind: 'close' }

/** One keep-alive connection: one exchange at a time. */
class Connection implements Flow {
  closed = false
  /** Some byte of the current exchange's answer has arrived. */
  answered = false
  /** The last answer was complete and the server keeps the connection open. */
  reusable = false
  private socket?: Socket<Connection>
  private paused = false
  private pendingWrite: Uint8Array[] = []
  private current?: { parser: Parser; receiver: Receiver; signal: CancelSignal; onAbort: () => void; onIdle: () => void }

  attach(socket: Socket<Connection>): void {
    this.socket = socket
  }

  start(head: string, req: ClientRequest, receiver: Receiver, onIdle: () => void): void {
    this.answered = false
    this.reusable = false
    const onAbort = () => this.fail(req.signal.reason as Error)
    // Removed when the exchange ends; an abort fires once (no `{ once: true }`, an options object per
    // exchange on an AbortSignal).
    req.signal.addEventListener('abort', onAbort)
    this.current = { parser: new Parser(req.method, receiver), receiver, signal: req.signal, onAbort, onIdle }
    // Head and body leave in one write: one syscall, and no small segment waiting on another's ACK.
    // The head is Latin-1 (one byte per character) and is written straight into the same buffer.
    const bodyLength = req.body?.byteLength ?? 0
    const bytes = Buffer.allocUnsafe(head.length + bodyLength)
    bytes.write(head, 0, 'latin1')
    if (req.body && bodyLength > 0) bytes.set(req.body, head.length)
    this.write(bytes)
  }

  onData(chunk: Uint8Array): void {
    const x = this.current
    if (!x) {
      // Bytes nobody asked for: the connection is out of step; drop it.
      this.close()
      return
    }
    this.answered = true
    let outcome: ReturnType<Parser['feed']>
    try {
      outcome = x.parser.feed(chunk)
    } catch (err) {
      outcome = new ClientFailure('protocol', true, `malformed answer: ${(err as Error).message}`)
    }
    if (outcome === 'more') return
    if (outcome === 'done') {
      this.reusable = x.parser.keepAlive && !x.parser.leftover
      this.finish()
    } else this.fail(outcome)
  }

  onDrain(): void {
    while (this.pendingWrite.length > 0 && this.socket) {
      const next = this.pendingWrite[0] as Uint8Array
      const n = this.socket.write(next)
      if (n < 0) return
      if (n < next.byteLength) {
        this.pendingWrite[0] = next.subarray(n)
        return
      }
      this.pendingWrite.shift()
    }
  }

  /** The connection ended; when we closed it ourselves, whoever did settled the exchange. */
  onClose(err?: Error): void {
    if (this.closed) return
    this.closed = true
    const x = this.current
    if (!x) return
    // An answer framed by the close is complete now; anything else was cut off.
    if (x.parser.endsAtClose()) this.finish()
    else
      this.fail(
        new ClientFailure(
          'reset',
          this.answered,
          err ? `connection error: ${err.message}` : 'connection closed before the answer was complete',
        ),
      )
  }

  pause(): void {
    if (this.paused || this.closed) return
    this.paused = true
    this.socket?.pause()
  }

  resume(): void {
    if (!this.paused) return
    this.paused = false
    this.socket?.resume()
  }

  cancel(): void {
    this.detach()
    this.close()
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.reusable = false
    this.socket?.terminate()
  }

  /** The answer is complete: the receiver has it, and the connection is free for the next exchange. */
  private finish(): void {
    const x = this.detach()
    if (!x) return
    this.resume()
    x.receiver.end()
    x.onIdle()
  }

  private fail(err: Error): void {
    const x = this.detach()
    this.close()
    x?.receiver.fail(err)
  }

  private detach() {
    const x = this.current
    if (!x) return undefined
    this.current = undefined
    x.signal.removeEventListener('abort', x.onAbort)
    return x
  }

  private write(bytes: Uint8Array): void {
    if (!this.socket || this.closed) {
      this.fail(new ClientFailure('reset', false, 'connection closed before the request was sent'))
      return
    }
    if (this.pendingWrite.length > 0) {
      this.pendingWrite.push(bytes)
      return
    }
    const n = this.socket.write(bytes)
    if (n < 0) this.fail(new ClientFailure('reset', false, 'connection closed before the request was sent'))
    else if (n < bytes.byteLength) this.pendingWrite.push(bytes.subarray(n))
  }
}

/** The parse state of one answer; what it finds goes to the receiver. */
class Parser {
  keepAlive = true
  leftover = false
  /** Unconsumed bytes of the last read (an incomplete head or chunk-size line). */
  private buffered?: Uint8Array
  private headed = false
  private framing: Framing = { kind: 'none' }
  /** Chunked decoding: bytes of the current chunk still to come; -1 while reading a size line, -2 before the CRLF that ends a chunk. */
  private chunkLeft = -1
  private trailers = false

  constructor(
    private readonly method: string,
    private readonly receiver: Receiver,
  ) {}

  /** Takes the next bytes: 'more' to wait, 'done' when the answer is complete, or the failure. */
  feed(chunk: Uint8Array): 'more' | 'done' | ClientFailure {
    let data = asBuffer(chunk)
    if (this.buffered) {
      data = Buffer.concat([this.buffered, data])
      this.buffered = undefined
    }
    let at = 0
    while (!this.headed) {
      const end = data.indexOf(CRLF2, at)
      if (end - at > MAX_HEAD_BYTES || (end === -1 && data.byteLength - at > MAX_HEAD_BYTES))
        return new ClientFailure('protocol', true, 'answer headers too large')
      if (end === -1) {
        this.buffered = bytesOf(data, at, data.byteLength)
        return 'more'
      }
      const failure = this.parseHead(data, at, end)
      if (failure) return failure
      at = end + 4
    }
    return this.body(data, at)
  }

  endsAtClose(): boolean {
    return this.headed && this.framing.kind === 'close'
  }

  /** The head in `data[start..end)` (its final blank line not included). */
  private parseHead(data: Buffer, start: number, end: number): ClientFailure | undefined {
    let eol = data.indexOf(CRLF, start)
    if (eol === -1 || eol > end) eol = end
    const status = statusCode(data, start, eol)
    if (status === -1) return new ClientFailure('protocol', true, 'malformed status line')
    // 1xx interim answers (100 Continue, 103 Early Hints) precede the real one.
    if (status < 200) return undefined
    // Fields go into a flat list (names in lower case), and the three that frame the answer are picked
    // out on the way; a field repeated is read as its values joined, as Headers.get would.
    const headers: HeaderList = []
    let connection = ''
    let encoding: string | null = null
    let length: string | null = null
    for (let at = eol + 2; at < end; at = eol + 2) {
      eol = data.indexOf(CRLF, at)
      if (eol === -1 || eol > end) eol = end
      const colon = data.indexOf(58, at) // ':'
      // RFC 9112 §5.1: a proxy removes whitespace between a response field's name and its colon.
      const name = colon === -1 || colon >= eol ? undefined : fieldName(data, at, colon)
      const value = name === undefined ? undefined : fieldValue(data, colon + 1, eol)
      if (name === undefined || value === undefined) return new ClientFailure('protocol', true, 'malformed header line')
      headers.push(name, value)
      if (name === 'connection') connection = connection ? `${connection}, ${value}` : value
      else if (name === 'transfer-encoding') encoding = encoding === null ? value : `${encoding}, ${value}`
      else if (name === 'content-length') length = length === null ? value : `${length}, ${value}`
    }
    this.headed = true
    connection = connection.toLowerCase()
    this.keepAlive = data[start + 7] === 49 ? !connection.includes('close') : connection.includes('keep-alive')
    if (this.method === 'HEAD' || status === 204 || status === 304) this.framing = { kind: 'none' }
    else if (encoding !== null) {
      if (!/(^|,)\s*chunked\s*$/i.test(encoding)) return new ClientFailure('protocol', true, `unsupported transfer-encoding '${encoding}'`)
      this.framing = { kind: 'chunked' }
    } else if (length !== null) {
      if (!/^\d{1,15}$/.test(length)) return new ClientFailure('protocol', true, `malformed content-length '${length}'`)
      this.framing = { kind: 'length', left: Number(length) }
    } else {
      this.framing = { kind: 'close' }
      this.keepAlive = false
    }
    return this.receiver.head(status, headers, this.framing.kind !== 'none' && !(this.framing.kind === 'length' && this.framing.left === 0))
  }

  /** The body's bytes in `data` from `at`. */
  private body(data: Buffer, at: number): 'more' | 'done' | ClientFailure {
    const framing = this.framing
    const size = data.byteLength
    if (framing.kind === 'none') {
      this.leftover = size > at
      return 'done'
    }
    if (framing.kind === 'length') {
      const take = Math.min(framing.left, size - at)
      if (take > 0) {
        const failure = this.keep(data, at, at + take)
        if (failure) return failure
      }
      framing.left -= take
      if (framing.left > 0) return 'more'
      this.leftover = size > at + take
      return 'done'
    }
    if (framing.kind === 'close') return (size > at && this.keep(data, at, size)) || 'more'
    return this.chunked(data, at)
  }

  private chunked(data: Buffer, from: number): 'more' | 'done' | ClientFailure {
    let at = from
    while (at < data.byteLength) {
      if (this.chunkLeft > 0) {
        const take = Math.min(this.chunkLeft, data.byteLength - at)
        const failure = this.keep(data, at, at + take)
        if (failure) return failure
        this.chunkLeft -= take
        at += take
        if (this.chunkLeft === 0) this.chunkLeft = -2 // the CRLF after the data
        continue
      }
      const eol = data.indexOf(CRLF, at)
      if (eol === -1) {
        if (data.byteLength - at > 4096) return new ClientFailure('protocol', true, 'malformed chunk')
        this.buffered = bytesOf(data, at, data.byteLength)
        return 'more'
      }
      const line = data.toString('latin1', at, eol)
      at = eol + 2
      if (this.chunkLeft === -2) {
        if (line !== '') return new ClientFailure('protocol', true, 'malformed chunk')
        this.chunkLeft = -1
        continue
      }
      if (this.trailers) {
        if (line !== '') continue
        this.leftover = at < data.byteLength
        return 'done'
      }
      const sizeText = line.split(';', 1)[0]?.trim() ?? ''
      const size = Number.parseInt(sizeText, 16)
      if (!/^[0-9a-fA-F]{1,12}$/.test(sizeText)) return new ClientFailure('protocol', true, 'malformed chunk size')
      if (size === 0) this.trailers = true
      else this.chunkLeft = size
    }
    return 'more'
  }

  private keep(data: Buffer, start: number, end: number): ClientFailure | undefined {
    return this.receiver.body(bytesOf(data, start, end))
  }
}

/** What `String.prototype.trim` removes, among Latin-1 characters. */
function isTrimmed(byte: number): boolean {
  return byte === 32 || (byte >= 9 && byte <= 13) || byte === 0xa0
}

/** `HTTP/1.x NNN[ reason]`: the status code (first digit 1-5), or -1 for anything else. */
function statusCode(data: Buffer, start: number, end: number): number {
  if (end - start < 12 || (end - start > 12 && data[start + 12] !== 32)) return -1
  for (let i = 0; i < HTTP_1.length; i++) if (data[start + i] !== HTTP_1[i]) return -1
  const minor = data[start + 7]
  if ((minor !== 48 && minor !== 49) || data[start + 8] !== 32) return -1
  const a = data[start + 9] as number
  const b = data[start + 10] as number
  const c = data[start + 11] as number
  if (a < 49 || a > 53 || b < 48 || b > 57 || c < 48 || c > 57) return -1
  // The reason phrase is anything on the line but a stray CR or LF.
  for (let i = start + 13; i < end; i++) if (data[i] === 10 || data[i] === 13) return -1
  return (a - 48) * 100 + (b - 48) * 10 + (c - 48)
}

/** The field name in `data[start..end)`, trimmed and in lower case; undefined unless a token. */
function fieldName(data: Buffer, start: number, end: number): string | undefined {
  while (start < end && isTrimmed(data[start] as number)) start++
  while (end > start && isTrimmed(data[end - 1] as number)) end--
  if (start === end) return undefined
  for (let i = start; i < end; i++) if (TOKEN[data[i] as number] === 0) return undefined
  for (const known of COMMON_NAMES) {
    if (known.bytes.length !== end - start) continue
    let i = 0
    while (i < known.bytes.length && TOKEN[data[start + i] as number] === known.bytes[i]) i++
    if (i === known.bytes.length) return known.name
  }
  return data.toString('latin1', start, end).toLowerCase()
}

/** The field value in `data[start..end)`, trimmed; undefined when it holds a NUL, CR or LF (RFC 9110 §5.5). */
function fieldValue(data: Buffer, start: number, end: number): string | undefined {
  while (start < end && isTrimmed(data[start] as number)) start++
  while (end > start && isTrimmed(data[end - 1] as number)) end--
  for (let i = start; i < end; i++) {
    const byte = data[i]
    if (byte === 0 || byte === 10 || byte === 13) return undefined
  }
  return data.toString('latin1', start, end)
}

/** Collects the answer and hands it over complete, decoded if the server compressed it unasked. */
class WholeReceiver implements Receiver {
  private status = 0
  private headers: HeaderList = []
  private parts: Uint8Array[] = []
  private size = 0

  constructor(
    private readonly maxBodyBytes: number,
    private readonly resolve: (res: WholeResponse) => void,
    private readonly reject: (err: Error) => void,
  ) {}

  head(status: number, headers: HeaderList, hasBody: boolean): ClientFailure | undefined {
    this.status = status
    this.headers = headers
    // A HEAD, 204 or 304 answer's Content-Length describes a body that is not sent.
    const length = hasBody ? Number(headerValue(headers, 'content-length') ?? 0) : 0
    if (length > this.maxBodyBytes)
      return new ClientFailure('protocol', true, `answer of ${length} bytes is larger than ${this.maxBodyBytes}`)
    return undefined
  }

  body(bytes: Uint8Array): ClientFailure | undefined {
    this.size += bytes.byteLength
    if (this.size > this.maxBodyBytes) return new ClientFailure('protocol', true, `answer is larger than ${this.maxBodyBytes} bytes`)
    this.parts.push(bytes)
    return undefined
  }

  end(): void {
    const headers = this.headers
    let body = this.parts.length === 1 ? (this.parts[0] as Uint8Array<ArrayBuffer>) : concatBytes(this.parts)
    // We never ask for compression; a server that compresses anyway is decoded, as fetch would.
    const encoding = contentEncoding(headers)
    if (encoding && body.byteLength > 0) {
      try {
        body = new Uint8Array((CODINGS[encoding] as Coding).decode(body, { maxOutputLength: this.maxBodyBytes }))
      } catch (err) {
        this.reject(new ClientFailure('protocol', true, `cannot decode the ${encoding} answer: ${(err as Error).message}`))
        return
      }
    }
    this.resolve({ status: this.status, headers, body })
  }

  fail(err: Error): void {
    this.reject(err)
  }
}

/**
 * Hands over the head at once and the body as a stream. Back-pressure: past `HIGH_WATER` bytes queued
 * and unread, the socket stops reading until the consumer pulls, so a slow client slows the backend
 * (through TCP) instead of filling the gateway's memory.
 *
 * The stream is made when the consumer takes the body, with the consumer's relay if it brings one:
 * each chunk then goes through the relay straight into the stream the server reads. Bytes that arrive
 * before that (often in the same read as the head) wait here. A relay hears of the end only once the
 * reader has taken every chunk before it, so it reports an answer complete when its reader has it all.
 *
 * A relayed body is Bun's direct stream, which the server hands its own sink: each chunk is written
 * and flushed to the client's socket as it arrives, with no queue between (by hand, 3–13% less of the
 * gateway's CPU per streamed line). The server answers from the upstream socket's callback, outside
 * the client socket's; with a queued stream it then sent the head and the first chunk in two sends,
 * where the direct stream's first write goes out with the head. Back-pressure there: a write the
 * client's socket cannot take yet pauses the upstream socket until it drains, and the relay bounds how
 * long that may last (BodyRelay.stall).
 */
class StreamReceiver implements Receiver {
  private controller?: ReadableStreamDefaultController<Uint8Array>
  /** The server's sink, once it has started the relayed body. */
  private sink?: ReadableStreamDirectController
  /** A write to the sink waits for the client's socket to drain. */
  private draining = false
  private relay?: BodyRelay
  /** Body bytes that arrived before the consumer took the body; undefined once it has. */
  private early: Uint8Array[] | undefined = []
  private earlyBytes = 0
  /**
   * How the answer ended, complete (true) or cut off: from then on the connection is no longer this
   * answer's (it may serve another exchange), so the stream no longer steers it.
   */
  private outcome: true | Error | undefined
  /** Nothing more goes into the stream: it was closed, errored or cancelled. */
  private ended = false

  constructor(
    private readonly resolve: (res: StreamedResponse) => void,
    private readonly reject: (err: Error) => void,
    private readonly flow: Flow,
  ) {}

  head(status: number, headers: HeaderList, hasBody: boolean): ClientFailure | undefined {
    if (!hasBody) {
      this.ended = true
      this.resolve({ status, headers, hasBody, body: null, relay: () => null })
      return undefined
    }
    // We never ask for compression; a server that compresses anyway is decoded, as fetch would, and
    // a relay then pulls from the decoder's output.
    const encoding = contentEncoding(headers)
    if (encoding) {
      const decoder = new DecompressionStream((CODINGS[encoding] as Coding).format as CompressionFormat)
      const body = this.open().pipeThrough(decoder as unknown as ReadableWritablePair<Uint8Array, Uint8Array>)
      this.resolve({ status, headers, hasBody, body, relay: (relay) => relayStream(body, relay) })
      return undefined
    }
    let taken: ReadableStream<Uint8Array> | undefined
    const receiver = this
    this.resolve({
      status,
      headers,
      hasBody,
      get body() {
        taken ??= receiver.open()
        return taken
      },
      relay(relay) {
        if (taken) throw new Error('the body was taken already')
        taken = receiver.openDirect(relay)
        return taken
      },
    })
    return undefined
  }

  body(bytes: Uint8Array): ClientFailure | undefined {
    if (this.ended) return undefined
    const early = this.early
    if (early) {
      early.push(bytes)
      this.earlyBytes += bytes.byteLength
      if (this.earlyBytes >= HIGH_WATER) this.flow.pause()
      return undefined
    }
    if (this.sink) {
      this.write((this.relay as BodyRelay).chunk(bytes))
      return undefined
    }
    const controller = this.controller as ReadableStreamDefaultController<Uint8Array>
    const out = this.relay ? this.relay.chunk(bytes) : bytes
    if (out.byteLength > 0) controller.enqueue(out)
    if ((controller.desiredSize ?? 1) <= 0) this.flow.pause()
    return undefined
  }

  end(): void {
    this.outcome ??= true
    this.settle()
  }

  fail(err: Error): void {
    this.reject(err)
    this.outcome ??= err
    this.settle()
  }

  /** The body's stream, through `relay` if given, with what arrived before it was asked for. */
  private open(relay?: BodyRelay): ReadableStream<Uint8Array> {
    this.relay = relay
    return new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller
          const early = this.early ?? []
          this.early = undefined
          for (const bytes of early) this.body(bytes)
          this.settle()
        },
        pull: () => {
          if (this.outcome === undefined) this.flow.resume()
          else this.settle()
        },
        cancel: () => this.cancelled(),
      },
      { highWaterMark: HIGH_WATER, size: (chunk) => chunk?.byteLength ?? 0 },
    )
  }

  /** The relayed body as the server's direct stream, with what arrived before the server started it. */
  private openDirect(relay: BodyRelay): ReadableStream<Uint8Array> {
    this.relay = relay
    const source: Bun.DirectUnderlyingSource<Uint8Array> = {
      type: 'direct',
      // The server calls it once and keeps the sink until close(); returning leaves the body open.
      pull: (sink) => {
        this.sink = sink
        const early = this.early ?? []
        this.early = undefined
        for (const bytes of early) this.body(bytes)
        if (this.outcome === undefined && !this.draining) this.flow.resume()
        this.settle()
      },
      cancel: () => this.cancelled(),
    }
    // The DOM library's ReadableStream overloads shadow bun-types' direct one.
    return new ReadableStream<Uint8Array>(source as unknown as UnderlyingDefaultSource<Uint8Array>)
  }

  private cancelled(): void {
    this.giveUp()
    this.relay?.cancel()
  }

  /**
   * Nothing more goes to the client and upstream is dropped. A stalled client's connection is left to
   * the server's idle timeout, which applies again once the request is over: closing the sink with an
   * error would drop it at once, but Bun prints every such error to stderr, outside the log.
   */
  private readonly giveUp = (): void => {
    this.ended = true
    if (this.outcome === undefined) this.flow.cancel()
  }

  /** One chunk to the client's socket now; if the socket cannot take it yet, upstream reading pauses. */
  private write(out: Uint8Array): void {
    if (out.byteLength === 0 || this.ended) return
    const sink = this.sink as ReadableStreamDirectController
    const written = sink.write(out)
    if (written === 0) {
      this.cancelled() // the client has gone
      return
    }
    const flushed = written instanceof Promise ? written : sink.flush()
    if (!(flushed instanceof Promise)) return
    this.draining = true
    this.flow.pause()
    const relay = this.relay as BodyRelay
    relay.stall(true, this.giveUp)
    flushed.then(
      () => {
        this.draining = false
        relay.stall(false, this.giveUp)
        if (this.outcome === undefined) this.flow.resume()
        else this.settle()
      },
      () => this.cancelled(),
    )
  }

  /**
   * Passes the answer's end on to the stream: at once without a relay; with one, once the reader has
   * taken what is queued (the stream's next pull, then), or the client's socket what was written.
   */
  private settle(): void {
    const outcome = this.outcome
    if (outcome === undefined || this.ended) return
    const sink = this.sink
    if (sink) {
      if (this.draining) return
      this.ended = true
      const ends = { enqueue: (bytes: Uint8Array) => sink.write(bytes), close: () => sink.close(), error: (err: Error) => sink.close(err) }
      endRelayed(ends, this.relay, outcome !== true, outcome)
      return
    }
    const controller = this.controller
    if (!controller) return
    const relay = this.relay
    if (relay && (controller.desiredSize ?? HIGH_WATER) < HIGH_WATER) return
    this.ended = true
    endRelayed(controller, relay, outcome !== true, outcome)
  }
}

/** Bytes of a streamed answer queued unread before the socket pauses. */
const HIGH_WATER = 64 * 1024

/** Each content coding the client decodes: whole with zlib, streamed with DecompressionStream (Bun's also takes 'brotli'). */
interface Coding {
  readonly decode: (data: Uint8Array, options: { maxOutputLength: number }) => Uint8Array
  readonly format: string
}
const CODINGS: Record<string, Coding> = {
  gzip: { decode: gunzipSync, format: 'gzip' },
  'x-gzip': { decode: gunzipSync, format: 'gzip' },
  deflate: { decode: inflateSync, format: 'deflate' },
  br: { decode: brotliDecompressSync, format: 'brotli' },
}

/**
 * The content coding the answer must be decoded from, if any; the header goes, since the bytes handed
 * over are decoded (and so does the length, which was the encoded one). An unknown coding is left as is.
 */
function contentEncoding(headers: HeaderList): string | undefined {
  const encoding = headerValue(headers, 'content-encoding')?.trim().toLowerCase()
  if (!encoding || !(encoding in CODINGS)) return undefined
  for (let i = headers.length - 2; i >= 0; i -= 2)
    if (headers[i] === 'content-encoding' || headers[i] === 'content-length') headers.splice(i, 2)
  return encoding
}

/**
 * Bun hands each socket read over as a Buffer of its own, whose bytes are not reused later. The first
 * view of such a Buffer (`.buffer`, `subarray`) costs about 2 µs, more under load: it moves the bytes
 * into an ArrayBuffer of their own. In a profile of the streaming gateway that was a quarter of its
 * CPU. So the parser searches and decodes the Buffer in place, and copies out only the bytes it keeps.
 */
function asBuffer(chunk: Uint8Array): Buffer {
  return chunk instanceof Buffer ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)
}

/** Bytes `start` to `end` of a read: the read itself when that is all of it, else a copy (see asBuffer). */
function bytesOf(data: Buffer, start: number, end: number): Uint8Array {
  if (start === 0 && end === data.byteLength) return data
  const out = new Uint8Array(end - start)
  data.copy(out, 0, start, end)
  return out
}
