// SPEC §7: the Bun client for whole exchanges (src/runtime/http1.bun.ts) against a real TCP server that
// answers exactly the bytes each test scripts: framing (length, chunked, close), interim answers,
// keep-alive reuse and its limits, broken and malformed answers, aborts and compression.
import { afterAll, afterEach, describe, expect, test } from 'bun:test'
import { gzipSync } from 'node:zlib'
import type { Socket, TCPSocketListener } from 'bun'
import { type BodyRelay, Cancel, ClientFailure, type ClientRequest, headerValue } from '../../src/runtime/client.ts'
import { Http1Client } from '../../src/runtime/http1.bun.ts'

type Reply = (socket: Socket<Peer>, request: string, peer: Peer) => void | Promise<void>
interface Peer {
  id: number
  received: string
  /** Bytes the socket did not take yet (sent on drain). */
  unsent: Uint8Array[]
}

/** Writes all of `data`, the rest on drain when the socket takes only part of it now. */
function send(socket: Socket<Peer>, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data
  if (socket.data.unsent.length > 0) {
    socket.data.unsent.push(bytes)
    return
  }
  const n = socket.write(bytes)
  if (n >= 0 && n < bytes.byteLength) socket.data.unsent.push(bytes.subarray(n))
}

/** A TCP server that hands each complete request (head and Content-Length body) to `reply`. */
class ScriptedServer {
  readonly requests: Array<{ connection: number; text: string }> = []
  connections = 0
  reply: Reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
  private readonly listener: TCPSocketListener<Peer>

  constructor() {
    this.listener = Bun.listen<Peer>({
      hostname: '127.0.0.1',
      port: 0,
      socket: {
        open: (socket) => {
          socket.data = { id: ++this.connections, received: '', unsent: [] }
        },
        drain: (socket) => {
          const unsent = socket.data.unsent
          while (unsent.length > 0) {
            const next = unsent[0] as Uint8Array
            const n = socket.write(next)
            if (n < next.byteLength) {
              if (n > 0) unsent[0] = next.subarray(n)
              return
            }
            unsent.shift()
          }
        },
        data: (socket, chunk) => {
          const peer = socket.data
          peer.received += Buffer.from(chunk).toString('latin1')
          for (;;) {
            const end = peer.received.indexOf('\r\n\r\n')
            if (end === -1) return
            const length = Number(/content-length: (\d+)/i.exec(peer.received.slice(0, end))?.[1] ?? 0)
            if (peer.received.length < end + 4 + length) return
            const text = peer.received.slice(0, end + 4 + length)
            peer.received = peer.received.slice(end + 4 + length)
            this.requests.push({ connection: peer.id, text })
            void this.reply(socket, text, peer)
          }
        },
      },
    })
  }

  get base(): string {
    return `http://127.0.0.1:${this.listener.port}`
  }

  stop(): void {
    this.listener.stop(true)
  }
}

const server = new ScriptedServer()
const client = new Http1Client({ maxBodyBytes: 1024, maxIdle: 8 })
afterAll(() => {
  client.close()
  server.stop()
})
afterEach(() => {
  server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
})

function request(fields: Partial<ClientRequest> = {}): ClientRequest {
  const headers = ['content-type', 'application/json', 'x-request-id', 'r-1']
  return {
    base: server.base,
    method: 'POST',
    target: '/api/chat',
    headers,
    body: new TextEncoder().encode('{"model":"m"}'),
    signal: new AbortController().signal,
    ...fields,
  }
}
const text = (body: Uint8Array) => new TextDecoder().decode(body)
/** Writes `parts` one after another with a pause between, so the client sees them in separate reads. */
async function dribble(socket: Socket<Peer>, parts: Array<string | Uint8Array>): Promise<void> {
  for (const part of parts) {
    send(socket, part)
    socket.flush()
    await Bun.sleep(2)
  }
}
/** The next answer is `size` bytes of body, written as fast as the client reads; returns how many still wait at the server. */
function serveLarge(size: number): () => number {
  let peer: Peer | undefined
  server.reply = (socket, _request, p) => {
    peer = p
    send(socket, `HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`)
    send(socket, new Uint8Array(size).fill(120))
  }
  return () => (peer?.unsent ?? []).reduce((n, b) => n + b.byteLength, 0)
}
async function failure(promise: Promise<unknown>): Promise<ClientFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(ClientFailure)
  return err as ClientFailure
}

describe('HTTP/1.1 client for whole answers (SPEC §7)', () => {
  test('sends the request line, host, headers and body once, under the base URL prefix', async () => {
    const res = await client.request(request({ base: `${server.base}/ollama/`, target: '/api/chat?x=1' }))
    expect(res.status).toBe(200)
    const sent = server.requests.at(-1)?.text ?? ''
    expect(sent.startsWith('POST /ollama/api/chat?x=1 HTTP/1.1\r\n')).toBe(true)
    expect(sent).toContain(`host: 127.0.0.1:${new URL(server.base).port}\r\n`)
    expect(sent).toContain('content-type: application/json\r\n')
    expect(sent).toContain('x-request-id: r-1\r\n')
    expect(sent).toContain('content-length: 13\r\n')
    expect(sent.endsWith('\r\n\r\n{"model":"m"}')).toBe(true)
  })

  test('answer fields arrive in order with names in lower case and trimmed; a repeated field is kept twice', async () => {
    server.reply = (socket) =>
      void send(socket, 'HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-Thing :  spaced  \r\nset-cookie: b=2\r\nContent-Length: 2\r\n\r\nok')
    const res = await client.request(request())
    expect(res.headers).toEqual(['set-cookie', 'a=1', 'x-thing', 'spaced', 'set-cookie', 'b=2', 'content-length', '2'])
    expect(headerValue(res.headers, 'set-cookie')).toBe('a=1')
  })

  test('status and field lines are checked byte by byte: what RFC 9112 allows passes, anything else is refused', async () => {
    const answer = (head: string) => {
      server.reply = (socket) => void send(socket, Buffer.from(`${head}\r\ncontent-length: 0\r\n\r\n`, 'latin1'))
      return client.request(request())
    }
    // A reason phrase is optional; the code has three digits, the first 1 to 5.
    expect((await answer('HTTP/1.1 200')).status).toBe(200)
    expect((await answer('HTTP/1.0 404 Not Found')).status).toBe(404)
    for (const line of ['HTTP/1.1 200OK', 'HTTP/1.2 200 OK', 'HTTP/2 200 OK', 'HTTP/1.1 600 Odd', 'HTTP/1.1 20 OK', 'HTTP/1.1 200 O\rK'])
      expect((await failure(answer(line))).message).toContain('malformed status line')
    // Tabs round a value go; names in any case come out in lower case, common or not.
    const res = await answer('HTTP/1.1 200 OK\r\nCONTENT-TYPE:\ttext/plain\t\r\nX-Odd-Name: \t v \t')
    expect(res.headers).toEqual(['content-type', 'text/plain', 'x-odd-name', 'v', 'content-length', '0'])
    // A CR inside a value, or a name with a space in it, refuses the answer.
    for (const line of ['x-cr: a\rb', 'two words: x'])
      expect((await failure(answer(`HTTP/1.1 200 OK\r\n${line}`))).message).toContain('malformed header line')
  })

  test('a Content-Length answer split into many reads arrives whole', async () => {
    const body = '{"message":{"content":"ünïcödé"},"done":true}'
    const bytes = Buffer.from(
      `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    )
    server.reply = (socket) =>
      dribble(
        socket,
        Array.from({ length: Math.ceil(bytes.length / 7) }, (_, i) => bytes.subarray(i * 7, i * 7 + 7)),
      )
    const res = await client.request(request())
    expect(headerValue(res.headers, 'content-type')).toBe('application/json')
    expect(text(res.body)).toBe(body)
  })

  test('a chunked answer with extensions and trailers, split at awkward places, is decoded', async () => {
    server.reply = (socket) =>
      dribble(socket, [
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel',
        'lo\r',
        '\n6\r\n wor',
        'ld\r\n0\r\nX-Trailer: t\r\n',
        '\r\n',
      ])
    const res = await client.request(request())
    expect(text(res.body)).toBe('hello world')
  })

  test('a 100 Continue before the answer is skipped', async () => {
    server.reply = (socket) => void send(socket, 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 3\r\n\r\nyes')
    const res = await client.request(request())
    expect(res.status).toBe(201)
    expect(text(res.body)).toBe('yes')
  })

  test('keep-alive: sequential exchanges share one connection; "connection: close" ends it', async () => {
    const before = server.connections
    await client.request(request())
    await client.request(request())
    await client.request(request())
    expect(server.connections - before).toBeLessThanOrEqual(1)
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok')
    await client.request(request())
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
    const used = server.connections
    await client.request(request())
    expect(server.connections).toBe(used + 1)
  })

  test('an answer without a length ends when the connection does', async () => {
    server.reply = async (socket) => {
      await dribble(socket, ['HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil ', 'the end'])
      socket.end()
    }
    expect(text((await client.request(request())).body)).toBe('until the end')
  })

  test('HEAD and 204 answers have no body, whatever their Content-Length says', async () => {
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 99\r\n\r\n')
    const head = await client.request(request({ method: 'HEAD', body: null }))
    expect(head.body.byteLength).toBe(0)
    // Larger than the client reads whole (1024 here), but never sent.
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n')
    expect((await client.request(request({ method: 'HEAD', body: null }))).status).toBe(200)
    server.reply = (socket) => void send(socket, 'HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n')
    expect((await client.request(request())).body.byteLength).toBe(0)
  })

  test('a pooled connection the server closed while idle is replaced without failing the request', async () => {
    server.reply = (socket) => {
      send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok')
      socket.end()
    }
    await client.request(request())
    await Bun.sleep(20)
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfresh')
    expect(text((await client.request(request())).body)).toBe('fresh')
  })

  test('an answer cut off in its body fails as a partial reset; one never begun, as a plain reset', async () => {
    server.reply = (socket) => {
      send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\nonly part')
      socket.end()
    }
    const cut = await failure(client.request(request()))
    expect([cut.reason, cut.partial]).toEqual(['reset', true])
    server.reply = (socket) => void socket.end()
    const none = await failure(client.request(request()))
    expect([none.reason, none.partial]).toEqual(['reset', false])
  })

  test('malformed and oversized answers fail as protocol errors', async () => {
    server.reply = (socket) => void send(socket, 'HTTP/1.1 OK\r\n\r\n')
    expect((await failure(client.request(request()))).reason).toBe('protocol')
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 4096\r\n\r\n')
    expect((await failure(client.request(request()))).message).toContain('larger than 1024')
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n')
    expect((await failure(client.request(request()))).message).toContain('chunk size')
    server.reply = (socket) => void send(socket, `HTTP/1.1 200 OK\r\n${'x-big: y\r\n'.repeat(8000)}\r\n`)
    expect((await failure(client.request(request()))).message).toContain('headers too large')
    // A field line without a name, a name that is not a token, a value with a NUL.
    for (const line of ['no colon here', ': empty name', 'bad name: x', 'x-nul: a\0b']) {
      server.reply = (socket) => void send(socket, `HTTP/1.1 200 OK\r\n${line}\r\ncontent-length: 0\r\n\r\n`)
      expect((await failure(client.request(request()))).message).toContain('malformed header line')
    }
  })

  test('an abort ends the exchange with the signal reason and drops the connection', async () => {
    server.reply = () => {}
    const abort = new AbortController()
    const pending = client.request(request({ signal: abort.signal }))
    await Bun.sleep(20)
    const reason = new Error('deadline')
    abort.abort(reason)
    expect(
      await pending.then(
        () => undefined,
        (e: unknown) => e,
      ),
    ).toBe(reason)
  })

  test('a closed port is refused', async () => {
    const closed = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
    const port = closed.port
    closed.stop(true)
    const refused = await failure(client.request(request({ base: `http://127.0.0.1:${port}` })))
    expect(refused.reason).toBe('refused')
  })

  test('a gzip answer the server compressed unasked is decoded, as fetch would', async () => {
    const packed = gzipSync('{"done":true}')
    server.reply = (socket) => {
      send(socket, `HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: ${packed.length}\r\n\r\n`)
      send(socket, packed)
    }
    const res = await client.request(request())
    expect(text(res.body)).toBe('{"done":true}')
    expect(headerValue(res.headers, 'content-encoding')).toBeNull()
  })
})

describe('HTTP/1.1 client for streamed answers (SPEC §4.8, §7)', () => {
  /** Reads a stream to its end as text. */
  async function readAll(body: ReadableStream<Uint8Array> | null): Promise<string> {
    return body ? await new Response(body).text() : ''
  }

  test('the head arrives before the body is complete, and each chunk as it is sent; then the connection is reused', async () => {
    let sendRest = () => {}
    server.reply = (socket) => {
      send(socket, 'HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n')
      send(socket, '8\r\n{"n":1}\n\r\n')
      sendRest = () => send(socket, '8\r\n{"n":2}\n\r\n0\r\n\r\n')
    }
    const before = server.connections
    const res = await client.stream(request())
    expect(res.status).toBe(200)
    expect(headerValue(res.headers, 'content-type')).toBe('application/x-ndjson')
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    expect(text((await reader.read()).value as Uint8Array)).toBe('{"n":1}\n')
    sendRest()
    expect(text((await reader.read()).value as Uint8Array)).toBe('{"n":2}\n')
    expect((await reader.read()).done).toBe(true)
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext')
    expect(await readAll((await client.stream(request())).body)).toBe('next')
    expect(server.connections - before).toBeLessThanOrEqual(1)
  })

  test('back-pressure: an unread body stops the client reading, so the server cannot send it all; reading resumes it', async () => {
    const size = 48 * 1024 * 1024
    const waiting = serveLarge(size)
    const res = await client.stream(request())
    await Bun.sleep(300)
    // Kernel buffers on both sides hold a few MiB; the rest must still wait at the server.
    expect(waiting()).toBeGreaterThan(size / 2)
    let received = 0
    for await (const chunk of res.body as ReadableStream<Uint8Array>) received += chunk.byteLength
    expect(received).toBe(size)
    expect(waiting()).toBe(0)
  })

  test('a body cut off midway errors the stream with a partial reset', async () => {
    server.reply = (socket) => {
      send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nthe beginning')
      socket.end()
    }
    const cut = await failure(readAll((await client.stream(request())).body))
    expect([cut.reason, cut.partial]).toEqual(['reset', true])
  })

  test('a consumer that cancels drops the connection; an abort after the head errors the body with its reason', async () => {
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n')
    const before = server.connections
    const cancelled = await client.stream(request())
    await cancelled.body?.cancel()
    const abort = new AbortController()
    const aborted = await client.stream(request({ signal: abort.signal }))
    // The cancelled stream's connection was not reused.
    expect(server.connections).toBe(before + 2)
    const reason = new Error('deadline')
    abort.abort(reason)
    expect(
      await readAll(aborted.body).then(
        () => undefined,
        (e: unknown) => e,
      ),
    ).toBe(reason)
  })

  test('no body for 204 and HEAD; a gzip body is decoded as it streams', async () => {
    server.reply = (socket) => void send(socket, 'HTTP/1.1 204 No Content\r\n\r\n')
    expect((await client.stream(request())).body).toBeNull()
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n')
    expect((await client.stream(request({ method: 'HEAD', body: null }))).body).toBeNull()
    const packed = gzipSync('{"n":1}\n{"n":2}\n')
    server.reply = (socket) =>
      dribble(socket, [
        `HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: ${packed.length}\r\n\r\n`,
        packed.subarray(0, 10),
        packed.subarray(10),
      ])
    const res = await client.stream(request())
    expect(headerValue(res.headers, 'content-encoding')).toBeNull()
    expect(await readAll(res.body)).toBe('{"n":1}\n{"n":2}\n')
  })
})

describe('HTTP/1.1 client relaying a streamed answer through one stream (SPEC §4.8, §7)', () => {
  /** A relay that upper-cases each chunk and notes what happened to the body. */
  function recording(failWith?: string) {
    const seen: string[] = []
    const relay: BodyRelay = {
      chunk: (bytes) => {
        seen.push(`chunk ${text(bytes)}`)
        return new TextEncoder().encode(text(bytes).toUpperCase())
      },
      end: () => {
        seen.push('end')
        return new TextEncoder().encode('[end]')
      },
      fail: (err) => {
        seen.push(`fail ${(err as Error).name}`)
        return failWith === undefined ? undefined : new TextEncoder().encode(failWith)
      },
      cancel: () => void seen.push('cancel'),
      stall: () => {},
    }
    return { seen, relay }
  }

  test('chunks that came with the head and those after pass the relay in order into the stream; its end bytes close it', async () => {
    let sendRest = () => {}
    server.reply = (socket) => {
      // Head and first chunk in one write: they arrive before the body is taken.
      send(socket, 'HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n')
      sendRest = () => send(socket, '3\r\ntwo\r\n0\r\n\r\n')
    }
    const res = await client.stream(request())
    await Bun.sleep(5)
    const { seen, relay } = recording()
    const reader = (res.relay(relay) as ReadableStream<Uint8Array>).getReader()
    expect(text((await reader.read()).value as Uint8Array)).toBe('ONE')
    sendRest()
    expect(text((await reader.read()).value as Uint8Array)).toBe('TWO')
    expect(text((await reader.read()).value as Uint8Array)).toBe('[end]')
    expect((await reader.read()).done).toBe(true)
    expect(seen).toEqual(['chunk one', 'chunk two', 'end'])
    expect(() => res.body).not.toThrow()
    expect(() => res.relay(relay)).toThrow('taken already')
  })

  test("a body cut off midway ends with the relay's bytes, or errors when it has none", async () => {
    server.reply = (socket) => {
      send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nthe beginning')
      socket.end()
    }
    const lined = recording('{"error":"cut"}\n')
    expect(await new Response((await client.stream(request())).relay(lined.relay)).text()).toBe('THE BEGINNING{"error":"cut"}\n')
    expect(lined.seen).toEqual(['chunk the beginning', 'fail ClientFailure'])
    const bare = recording()
    const cut = await failure(new Response((await client.stream(request())).relay(bare.relay)).text())
    expect([cut.reason, cut.partial]).toEqual(['reset', true])
    expect(bare.seen).toEqual(['chunk the beginning', 'fail ClientFailure'])
  })

  test('a reader that cancels reaches the relay and drops the connection; an unread relayed body holds the server back', async () => {
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n')
    const before = server.connections
    const { seen, relay } = recording()
    const reader = ((await client.stream(request())).relay(relay) as ReadableStream<Uint8Array>).getReader()
    expect(text((await reader.read()).value as Uint8Array)).toBe('ONE')
    await reader.cancel()
    expect(seen).toEqual(['chunk one', 'cancel'])
    await client.stream(request()).then((res) => res.body?.cancel())
    expect(server.connections).toBe(before + 2)

    const size = 48 * 1024 * 1024
    const waiting = serveLarge(size)
    let passed = 0
    const counting: BodyRelay = {
      chunk: (bytes) => {
        passed += bytes.byteLength
        return bytes
      },
      end: () => undefined,
      fail: () => undefined,
      cancel: () => {},
      stall: () => {},
    }
    const body = (await client.stream(request())).relay(counting) as ReadableStream<Uint8Array>
    await Bun.sleep(300)
    expect(waiting()).toBeGreaterThan(size / 2)
    expect(passed).toBeLessThan(size / 2)
    let received = 0
    for await (const chunk of body) received += chunk.byteLength
    expect([received, passed, waiting()]).toEqual([size, size, 0])
  })

  test('a reader that cancels after the answer is complete leaves the connection, back in the pool, alone', async () => {
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\none\r\n3\r\ntwo\r\n0\r\n\r\n')
    const before = server.connections
    for (const relay of [undefined, recording().relay]) {
      const res = await client.stream(request())
      const reader = ((relay ? res.relay(relay) : res.body) as ReadableStream<Uint8Array>).getReader()
      await reader.read()
      // The whole answer has arrived; "two" still waits in the stream when the reader leaves.
      await reader.cancel()
    }
    server.reply = (socket) => void send(socket, 'HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\nnext')
    expect(text((await client.request(request())).body)).toBe('next')
    expect(server.connections - before).toBeLessThanOrEqual(1)
  })

  test('a gzip body reaches the relay decoded; an answer without a body has nothing to relay', async () => {
    const packed = gzipSync('{"n":1}\n{"n":2}\n')
    server.reply = (socket) =>
      dribble(socket, [`HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: ${packed.length}\r\n\r\n`, packed])
    const { seen, relay } = recording()
    expect(await new Response((await client.stream(request())).relay(relay)).text()).toBe('{"N":1}\n{"N":2}\n[end]')
    expect(seen.join('').replaceAll('chunk ', '')).toBe('{"n":1}\n{"n":2}\nend')
    server.reply = (socket) => void send(socket, 'HTTP/1.1 204 No Content\r\n\r\n')
    const empty = await client.stream(request())
    expect([empty.hasBody, empty.relay(relay)]).toEqual([false, null])
  })
})

describe("a request's cancellation (Cancel, SPEC §4.8)", () => {
  test('an abort reaches each listener once with its reason; a removed listener, or one added after, is not called', () => {
    const cancel = new Cancel()
    const heard: string[] = []
    const first = () => heard.push(`first: ${String(cancel.reason)}`)
    const removed = () => heard.push('removed')
    cancel.addEventListener('abort', first)
    cancel.addEventListener('abort', removed)
    cancel.removeEventListener('abort', removed)
    cancel.abort('deadline')
    cancel.abort('again')
    cancel.addEventListener('abort', () => heard.push('late'))
    expect(heard).toEqual(['first: deadline'])
    expect(cancel.aborted).toBe(true)
    expect(() => cancel.throwIfAborted()).toThrow('deadline')
  })

  test('the AbortSignal made for fetch follows the cancellation, whether asked for before or after it', () => {
    const before = new Cancel()
    const signal = before.signal
    expect(signal.aborted).toBe(false)
    before.abort(new Error('client gone'))
    expect(signal.aborted).toBe(true)
    expect((signal.reason as Error).message).toBe('client gone')
    const after = new Cancel()
    after.abort(new Error('timeout'))
    expect(after.signal.aborted).toBe(true)
    expect((after.signal.reason as Error).message).toBe('timeout')
  })

  test('an exchange in flight ends with the cancellation reason', async () => {
    server.reply = () => {}
    const cancel = new Cancel()
    const pending = client.request(request({ signal: cancel }))
    await Bun.sleep(20)
    cancel.abort(new Error('client closed the connection'))
    const err = await pending.then(
      () => undefined,
      (e: unknown) => e as Error,
    )
    expect(err?.message).toBe('client closed the connection')
  })
})
