// SPEC §4.8 and §5 through the front door: a real gateway process in front of a real fake Ollama.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { FakeOllama } from './helpers/fake-ollama.ts'
import { type GatewayProcess, startGateway } from './helpers/gateway.ts'

const fake = new FakeOllama()
let gw: GatewayProcess

beforeAll(async () => {
  fake.start()
  gw = await startGateway({
    env: { OLLAMA_BASE_URL: fake.url, OLLAMA_AUTH_TOKEN: 'upstream-secret', OLLAMA_READ_TIMEOUT_S: '1', MAX_BODY_MB: '1' },
  })
}, 30_000)
afterAll(async () => {
  await gw.stop()
  await fake.stop()
}, 30_000)
beforeEach(() => fake.reset())

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(gw.url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...gw.auth, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
const call = (path: string, init: RequestInit = {}) =>
  fetch(gw.url + path, { ...init, headers: { ...gw.auth, ...(init.headers as Record<string, string>) } })

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const until = Date.now() + ms
  while (!cond()) {
    if (Date.now() > until) throw new Error('condition not met in time')
    await Bun.sleep(10)
  }
}

/** A process's resident set, KiB (Linux's /proc, as operations.test.ts reads it). */
function rssKb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
}

/** A streamed /api/generate from a raw client that does not read its answer yet; its upstream record. */
async function generateUnread() {
  const body = JSON.stringify({ model: 'llama3.2', prompt: 'x' })
  const socket = connect(gw.port, '127.0.0.1')
  socket.pause()
  socket.on('error', () => {})
  socket.write(
    `POST /api/generate HTTP/1.1\r\nHost: gw\r\nAuthorization: ${gw.auth.authorization}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
  )
  await waitFor(() => fake.received.some((r) => r.path === '/api/generate'))
  return { socket, record: fake.last('/api/generate') }
}

describe('forwarding (SPEC §4.8)', () => {
  test('a streamed chat arrives byte for byte as the upstream sent it', async () => {
    const res = await post('/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('application/x-ndjson')
    expect(res.headers.get('cache-control')).toBe('no-cache')
    expect(res.headers.get('x-accel-buffering')).toBe('no')
    const text = await res.text()
    expect(text).toBe(fake.sentText(fake.last('/api/chat')))
    expect(text.trim().split('\n')).toHaveLength(4)
    expect(JSON.parse(text.trim().split('\n').at(-1) as string).done).toBe(true)
  })

  test('the request body reaches upstream byte for byte, unknown and future fields included', async () => {
    const raw =
      '{"model":"llama3.2","prompt":"x","think":true,"tools":[1],"format":{"type":"object"},"options":{"num_ctx":8192},"a_future_field":  [1, {"b":null}]}'
    const res = await post('/api/generate', raw)
    expect(res.status).toBe(200)
    await res.text()
    expect(new TextDecoder().decode(fake.last('/api/generate').body)).toBe(raw)
  })

  test('bodies in UTF-8 reach upstream byte for byte: multibyte text, a literal U+FFFD, a byte order mark', async () => {
    const bodies = [
      '{"model":"llama3.2","prompt":"Grüße, 日本語, 🦙 and \\u00e9","stream":false}',
      '{"model":"llama3.2","prompt":"a model once wrote \uFFFD here","stream":false}',
    ].map((text) => new TextEncoder().encode(text))
    bodies.push(new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('{"model":"llama3.2","prompt":"x","stream":false}')]))
    for (const body of bodies) {
      const res = await fetch(`${gw.url}/api/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...gw.auth },
        body,
      })
      await res.text()
      expect(Buffer.from(fake.last('/api/generate').body).equals(Buffer.from(body))).toBe(true)
    }
  })

  test("a JSON body that is not UTF-8 is refused in the route's dialect, and nothing is forwarded", async () => {
    // 0xff never occurs in UTF-8; 0xe2 0x82 is a sequence cut short.
    const body = new Uint8Array([
      ...new TextEncoder().encode('{"model":"llama3.2","prompt":"'),
      0xff,
      0xe2,
      0x82,
      ...new TextEncoder().encode('"}'),
    ])
    const native = await fetch(`${gw.url}/api/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...gw.auth },
      body,
    })
    expect(native.status).toBe(400)
    expect(((await native.json()) as { error: string }).error).toContain('not valid UTF-8')
    const openai = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...gw.auth },
      body,
    })
    expect(openai.status).toBe(400)
    const err = ((await openai.json()) as { error: { message: string; type: string } }).error
    expect(err.message).toContain('not valid UTF-8')
    expect(err.type).toBe('invalid_request_error')
    expect(fake.received).toHaveLength(0)
  })

  test("a compressed JSON body is refused with 415 naming its coding, in the route's dialect; nothing is forwarded", async () => {
    const body = Bun.gzipSync(new TextEncoder().encode('{"model":"llama3.2","messages":[],"stream":false}'))
    const send = (path: string, coding: string) =>
      fetch(`${gw.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-encoding': coding, ...gw.auth },
        body,
      })
    const native = await send('/api/chat', 'gzip')
    expect(native.status).toBe(415)
    expect(await native.json()).toEqual({
      error: "request bodies with Content-Encoding 'gzip' are not accepted; send the JSON uncompressed",
    })
    const openai = await send('/v1/chat/completions', 'br')
    expect(openai.status).toBe(415)
    const err = ((await openai.json()) as { error: { message: string; type: string; code: string } }).error
    expect(err.message).toContain("Content-Encoding 'br'")
    expect(err.type).toBe('invalid_request_error')
    expect(err.code).toBe('unsupported_media_type')
    const anthropic = await send('/v1/messages', 'deflate')
    expect(anthropic.status).toBe(415)
    expect(((await anthropic.json()) as { type: string; error: { type: string } }).error.type).toBe('invalid_request_error')
    // Sent chunked, with no declared length: the same refusal.
    const chunked = await fetch(`${gw.url}/api/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'gzip', ...gw.auth },
      body: new Blob([body]).stream(),
    })
    expect(chunked.status).toBe(415)
    expect(((await chunked.json()) as { error: string }).error).toContain("Content-Encoding 'gzip'")
    expect(fake.received).toHaveLength(0)
    // `identity` is no coding at all.
    const plain = await fetch(`${gw.url}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-encoding': 'identity', ...gw.auth },
      body: '{"model":"llama3.2","messages":[],"stream":false}',
    })
    expect(plain.status).toBe(200)
    expect(((await plain.json()) as { done: boolean }).done).toBe(true)
  })

  test('header hygiene: credentials, Origin, hop-by-hop dropped; Host, token, request id set; User-Agent kept', async () => {
    const res = await post(
      '/api/chat',
      { model: 'llama3.2', messages: [], stream: false },
      {
        'x-api-key': 'client-key-2',
        origin: 'http://evil.example',
        cookie: 'session=1',
        connection: 'keep-alive, x-drop-me',
        'x-drop-me': '1',
        'proxy-authorization': 'Basic abc',
        'user-agent': 'ollama-js/0.6.4 (x64 linux Node.js/v20)',
        'x-custom': 'kept',
      },
    )
    await res.text()
    const h = fake.last('/api/chat').headers
    expect(h.authorization).toBe('Bearer upstream-secret')
    expect(h['x-api-key']).toBeUndefined()
    expect(h.origin).toBeUndefined()
    expect(h.cookie).toBeUndefined()
    expect(h['x-drop-me']).toBeUndefined()
    expect(h['proxy-authorization']).toBeUndefined()
    expect(h.host).toBe(`127.0.0.1:${fake.port}`)
    expect(h['user-agent']).toBe('ollama-js/0.6.4 (x64 linux Node.js/v20)')
    expect(h['x-custom']).toBe('kept')
    expect(h['x-request-id']).toBe(res.headers.get('x-request-id') as string)
  })

  test('a well-formed client X-Request-Id is kept end to end; a malformed one is replaced', async () => {
    const kept = await post('/api/show', { model: 'llama3.2' }, { 'x-request-id': 'trace-123.abc' })
    await kept.text()
    expect(kept.headers.get('x-request-id')).toBe('trace-123.abc')
    expect(fake.last('/api/show').headers['x-request-id']).toBe('trace-123.abc')
    const replaced = await post('/api/show', { model: 'llama3.2' }, { 'x-request-id': 'bad id with spaces' })
    await replaced.text()
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
  })

  test('each chunk reaches the client before upstream emits the next (no buffering)', async () => {
    fake.behaviour.chunks = 4
    fake.behaviour.chunkDelayMs = 250
    const res = await post('/api/generate', { model: 'llama3.2', prompt: 'x' })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const record = fake.last('/api/generate')
    let text = ''
    let seen = 0
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
      const lines = text.split('\n').filter(Boolean).length
      // When the client holds line k, the upstream has not yet sent line k+1.
      for (; seen < lines; seen++) expect(record.sent.length).toBe(seen + 1)
    }
    expect(seen).toBe(5)
    expect(text).toBe(fake.sentText(record))
  })

  test("a client that stops reading holds the upstream back, not the gateway's memory; then gets every line", async () => {
    // About 95 MB of NDJSON. What the gateway must not do is hold it: its resident set may grow by its
    // socket's buffers, not by the answer. (Where the rest waits is not the gateway's: the kernel's
    // socket buffers, which Linux grows up to net.ipv4.tcp_rmem's maximum, 32 MB on some machines, and
    // the fake's own server, which may pull its stream ahead of a full socket; so the fake's count of
    // lines produced says nothing here.)
    const lines = 1_000_000
    fake.behaviour.chunks = lines
    const before = rssKb(gw.proc.pid)
    const { socket, record } = await generateUnread()
    const chunks: Buffer[] = []
    try {
      // Well inside this gateway's 1 s read timeout, past which a client that stops reading is let go.
      await Bun.sleep(400)
      expect(rssKb(gw.proc.pid) - before).toBeLessThan(40_000)
      // The reader keeps up cheaply: the fake runs in this process, and a reader that held it up for a
      // second (a growing string checked at its end on every read) would look to the gateway like an
      // upstream gone silent.
      let tail = ''
      const done = new Promise<void>((resolve) =>
        socket.on('data', (d: Buffer) => {
          chunks.push(d)
          tail = (tail + d.toString('latin1')).slice(-5)
          if (tail === '0\r\n\r\n') resolve()
        }),
      )
      socket.resume()
      await done
    } finally {
      socket.destroy()
    }
    const received = Buffer.concat(chunks).toString('latin1')
    // The body, out of its chunked framing, is what the fake sent.
    let at = received.indexOf('\r\n\r\n') + 4
    let bodyText = ''
    for (let size = Number.parseInt(received.slice(at), 16); size > 0; size = Number.parseInt(received.slice(at), 16)) {
      at = received.indexOf('\r\n', at) + 2
      bodyText += received.slice(at, at + size)
      at += size + 2
    }
    expect(bodyText.split('\n').filter(Boolean).length).toBe(lines + 1)
    expect(bodyText).toBe(fake.sentText(record))
    expect(record.completed).toBe(true)
  }, 60_000)

  test('a client that stops reading for longer than the read timeout is let go: upstream aborted, the request reported', async () => {
    // SPEC §6: timeouts bound what one client can hold. The paused upstream is not silent (the gateway
    // stopped reading it), so the stall is the client's, and it ends as the client's departure.
    fake.behaviour.chunks = 300_000
    const { socket, record } = await generateUnread()
    const requestId = record.headers['x-request-id']
    // OLLAMA_READ_TIMEOUT_S is 1 here: let go after about a second, checked at once.
    const line = await gw.waitForLog((l) => l.msg === 'request' && l.request_id === requestId, 5000)
    expect(line).toMatchObject({ outcome: 'aborted', error: 'client stopped reading for 1s', status: 200 })
    await waitFor(() => record.aborted, 2000)
    expect(record.completed).toBe(false)
    // What the client reads afterwards never ends as a complete answer: no terminating chunk follows.
    let received = ''
    socket.on('data', (d) => {
      received += d.toString('latin1')
    })
    socket.resume()
    await Bun.sleep(500)
    socket.destroy()
    expect(received.length).toBeGreaterThan(0)
    expect(received.endsWith('0\r\n\r\n')).toBe(false)
    // Nothing is held: the backend serves the next request.
    fake.behaviour.chunks = 3
    const next = await post('/api/generate', { model: 'llama3.2', prompt: 'x' })
    expect(next.status).toBe(200)
    expect(await next.text()).toBe(fake.sentText(fake.last('/api/generate')))
  }, 20_000)

  test('a gzip-compressed upstream answer arrives readable, with consistent headers', async () => {
    fake.behaviour.gzip = true
    const res = await post('/api/chat', { model: 'llama3.2', messages: [], stream: false })
    expect(res.headers.get('content-encoding')).toBeNull()
    const body = await res.json()
    expect(body.done).toBe(true)
    expect(body.message.content).toBe('w0 w1 w2 ')
  })

  test('a stream in a coding the gateway cannot decode keeps its content-encoding, bytes unchanged', async () => {
    fake.behaviour.encoding = 'x-unknown'
    const res = await post('/api/chat', { model: 'llama3.2', messages: [] })
    expect(res.headers.get('content-encoding')).toBe('x-unknown')
    expect(await res.text()).toBe(fake.sentText(fake.last('/api/chat')))
  })

  test('GET and HEAD / answer "Ollama is running" without touching a backend, with a request id (SPEC §5)', async () => {
    const res = await fetch(`${gw.url}/`, { headers: { 'x-request-id': 'heartbeat-1' } })
    expect(await res.text()).toBe('Ollama is running')
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8')
    expect(res.headers.get('x-request-id')).toBe('heartbeat-1')
    // No key needed: clients' heartbeats carry none.
    const head = await fetch(`${gw.url}/`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(head.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/)
    expect(fake.received).toHaveLength(0)
    // UPSTREAM §3: a known path with the wrong method is a 405 naming the methods it takes.
    const post = await fetch(`${gw.url}/`, { method: 'POST', body: '{}' })
    expect(post.status).toBe(405)
    expect(post.headers.get('allow')).toBe('GET, HEAD')
    expect(post.headers.get('x-request-id')).toBeTruthy()
    expect(await post.json()).toEqual({ error: 'method POST not allowed on /; use GET or HEAD' })
  })

  test('HEAD /api/version is forwarded as HEAD; HEAD /api/tags is answered from the merged listing', async () => {
    const version = await call('/api/version', { method: 'HEAD' })
    expect(version.status).toBe(200)
    expect(fake.last('/api/version').method).toBe('HEAD')
    const tags = await call('/api/tags', { method: 'HEAD' })
    expect(tags.status).toBe(200)
    expect(await tags.text()).toBe('')
    // RFC 9110 §9.3.2: each carries the GET's headers, the length of its body included (it said 0).
    for (const [path, head] of [
      ['/api/version', version],
      ['/api/tags', tags],
    ] as const) {
      const get = await call(path)
      const body = new Uint8Array(await get.arrayBuffer())
      expect(body.byteLength).toBeGreaterThan(0)
      expect(head.headers.get('content-length')).toBe(String(body.byteLength))
      expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'))
    }
  })

  test('DELETE /api/delete carries its JSON body upstream', async () => {
    fake.models.push({ name: 'gone:latest' })
    const res = await call('/api/delete', { method: 'DELETE', body: '{"model":"gone:latest"}' })
    expect(res.status).toBe(200)
    const r = fake.last('/api/delete')
    expect(r.method).toBe('DELETE')
    expect(new TextDecoder().decode(r.body)).toBe('{"model":"gone:latest"}')
    expect(fake.models.some((m) => m.name === 'gone:latest')).toBe(false)
  })

  test('blob uploads stream through (larger than MAX_BODY_MB) and keep Ollama statuses', async () => {
    const blob = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251)
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
    const created = await call(`/api/blobs/${digest}`, { method: 'POST', body: blob })
    expect(created.status).toBe(201)
    expect(fake.blobs.get(digest)).toBe(blob.byteLength)
    const exists = await call(`/api/blobs/${digest}`, { method: 'HEAD' })
    expect(exists.status).toBe(200)
    const mismatch = await call(`/api/blobs/sha256:${'0'.repeat(64)}`, { method: 'POST', body: blob })
    expect(mismatch.status).toBe(400)
    expect(await mismatch.json()).toEqual({ error: 'digest mismatch' })
  })

  test('pull progress streams every line through to success', async () => {
    const res = await post('/api/pull', { model: 'qwen3:0.6b' })
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines[0].status).toBe('pulling manifest')
    expect(lines.at(-1)).toEqual({ status: 'success' })
    expect(res.headers.get('x-backend')).toBe('default')
  })

  test('OpenAI SSE streams pass through unchanged, less only the usage chunk the gateway asked for', async () => {
    const res = await post('/v1/chat/completions', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true })
    expect(res.headers.get('content-type')).toBe('text/event-stream')
    const text = await res.text()
    const sent = fake.sentText(fake.last('/v1/chat/completions'))
    const usageEvent = sent.split(/(?<=\n\n)/).find((e) => e.includes('"choices":[]')) as string
    expect(usageEvent).toContain('"usage"')
    expect(text).toBe(sent.replace(usageEvent, ''))
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true)
  })
})

describe('client disconnect (SPEC §4.8)', () => {
  test('aborting mid-stream aborts the upstream request at once', async () => {
    fake.behaviour.chunks = 50
    fake.behaviour.chunkDelayMs = 100
    const controller = new AbortController()
    const res = await call('/api/chat', {
      method: 'POST',
      body: JSON.stringify({ model: 'llama3.2', messages: [] }),
      signal: controller.signal,
    })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    await reader.read()
    controller.abort()
    const record = fake.last('/api/chat')
    await waitFor(() => record.aborted, 2000)
    expect(record.sent.length).toBeLessThan(50)
  })

  test('aborting before the upstream answers (slow first byte) aborts the upstream request', async () => {
    fake.behaviour.firstByteDelayMs = 800
    const controller = new AbortController()
    const pending = call('/api/generate', {
      method: 'POST',
      body: JSON.stringify({ model: 'llama3.2', prompt: 'x' }),
      signal: controller.signal,
    }).catch((e) => e)
    await waitFor(() => fake.received.some((r) => r.path === '/api/generate'))
    controller.abort()
    await pending
    const record = fake.last('/api/generate')
    await waitFor(() => record.aborted, 2000)
    expect(record.sent).toHaveLength(0)
  })
})

describe('errors in the route dialect (SPEC §5)', () => {
  test('a slow backend is a 504 in both dialects; /v1 says not to retry', async () => {
    fake.behaviour.firstByteDelayMs = 1500
    const native = await post('/api/generate', { model: 'llama3.2', prompt: 'x' })
    expect(native.status).toBe(504)
    expect(await native.json()).toEqual({ error: "backend 'default' did not answer within 1s" })
    const openai = await post('/v1/chat/completions', { model: 'llama3.2', messages: [] })
    expect(openai.status).toBe(504)
    expect(openai.headers.get('x-should-retry')).toBe('false')
    const body = await openai.json()
    expect(body.error).toMatchObject({ type: 'api_error', code: 'upstream_timeout', param: null })
    expect(openai.headers.get('x-request-id')).toBeTruthy()
  })

  test('a stream that stalls longer than the read timeout ends with an error line', async () => {
    fake.behaviour.chunks = 3
    fake.behaviour.chunkDelayMs = 1500
    const res = await post('/api/chat', { model: 'llama3.2', messages: [] })
    expect(res.status).toBe(200)
    const lines = (await res.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines[0].done).toBe(false)
    expect(lines.at(-1).error).toContain('upstream stopped sending for 1s')
  })

  test('a connection that breaks mid-stream ends NDJSON with an error line and SSE with an error event', async () => {
    fake.behaviour.breakAfter = 2
    const native = await post('/api/chat', { model: 'llama3.2', messages: [] })
    const lines = (await native.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines).toHaveLength(3)
    expect(typeof lines[2].error).toBe('string')
    expect(lines.some((l) => l.done === true)).toBe(false)

    const sse = await post('/v1/chat/completions', { model: 'llama3.2', messages: [], stream: true })
    const text = await sse.text()
    const last = text.trim().split('\n\n').at(-1) as string
    expect(last.startsWith('data: ')).toBe(true)
    expect(JSON.parse(last.slice(6)).error.message).toContain('mid-stream')
  })

  test("/v1/messages answers in Anthropic's shape, as Ollama does there: every gateway error and the stream's error event", async () => {
    const anthropicError = async (res: Response, status: number, type: string, message: string) => {
      expect(res.status).toBe(status)
      const body = await res.json()
      expect(body).toEqual({ type: 'error', error: { type, message: expect.stringContaining(message) }, request_id: expect.any(String) })
      expect(body.request_id).toBe(res.headers.get('x-request-id'))
    }
    const ask = { model: 'llama3.2', max_tokens: 9, messages: [] }
    await anthropicError(await post('/v1/messages', '{'), 400, 'invalid_request_error', 'request body is not valid JSON')
    await anthropicError(
      await fetch(`${gw.url}/v1/messages`, { method: 'POST', body: JSON.stringify(ask) }),
      401,
      'authentication_error',
      'API key required',
    )
    await anthropicError(await post('/v1/messages', { ...ask, model: 'missing' }), 404, 'not_found_error', "model 'missing' not found")
    await anthropicError(await call('/v1/messages'), 405, 'api_error', 'method GET not allowed on /v1/messages')
    await anthropicError(await call('/v1/messages/nope'), 404, 'not_found_error', 'GET /v1/messages/nope not found')
    fake.behaviour.firstByteDelayMs = 1500
    const slow = await post('/v1/messages', ask)
    expect(slow.headers.get('x-should-retry')).toBe('false')
    await anthropicError(slow, 504, 'api_error', "backend 'default' did not answer within 1s")
    fake.behaviour.firstByteDelayMs = 0
    // An error Ollama itself sends passes through as it came.
    fake.behaviour.failStatus = 400
    const upstream = await post('/v1/messages', ask)
    expect(upstream.status).toBe(400)
    expect(await upstream.json()).toEqual({
      type: 'error',
      error: { type: 'invalid_request_error', message: 'fake failure' },
      request_id: 'req_fake',
    })
    fake.behaviour.failStatus = undefined

    fake.behaviour.breakAfter = 2
    const text = await (await post('/v1/messages', { ...ask, stream: true })).text()
    const last = text.trim().split('\n\n').at(-1) as string
    expect(last.split('\n')[0]).toBe('event: error')
    expect(JSON.parse(last.slice(last.indexOf('data: ') + 6))).toEqual({
      type: 'error',
      error: { type: 'api_error', message: 'upstream connection failed mid-stream; the response is incomplete' },
    })
    // The OpenAI routes keep OpenAI's shape.
    const openai = await post('/v1/chat/completions', '{')
    expect((await openai.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'bad_request', param: null })
  })

  test('Ollama errors pass through with their status and body', async () => {
    const res = await post('/api/chat', { model: 'missing-model', messages: [] })
    expect(res.status).toBe(404)
    expect(await res.json()).toEqual({ error: "model 'missing-model' not found" })
  })

  test('bad input: empty body, invalid JSON, non-object, missing model, oversized body', async () => {
    const cases: Array<[string, string, number, string]> = [
      ['/api/chat', '', 400, 'request body is empty; send a JSON object'],
      ['/api/chat', '{"model":', 400, 'request body is not valid JSON'],
      ['/api/chat', '[1,2]', 400, 'request body must be a JSON object'],
      ['/api/chat', '{"messages":[]}', 400, 'model is required'],
      ['/api/copy', '{"destination":"x"}', 400, 'source is required'],
      ['/api/chat', '{"model":42}', 400, 'model must be a model name such as "llama3.2"; got 42'],
      ['/api/show', '{"name":""}', 400, 'name must be a model name such as "llama3.2"; got ""'],
    ]
    for (const [path, body, status, message] of cases) {
      const res = await post(path, body)
      expect(res.status).toBe(status)
      expect((await res.json()).error).toContain(message)
    }
    const big = await post('/api/chat', JSON.stringify({ model: 'llama3.2', pad: 'x'.repeat(1.5 * 1024 * 1024) }))
    expect(big.status).toBe(413)
    expect((await big.json()).error).toContain('MAX_BODY_MB')
    const v1 = await post('/v1/chat/completions', '{')
    expect(v1.status).toBe(400)
    expect((await v1.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'bad_request', param: null })
    // A model id in the path that is not valid percent-encoding: a 400 naming it, not a 500.
    const badId = await call('/v1/models/llama3.2%E0%A4%A')
    expect(badId.status).toBe(400)
    expect((await badId.json()).error).toMatchObject({
      type: 'invalid_request_error',
      message: "the model id in the path is not valid percent-encoding: 'llama3.2%E0%A4%A'",
    })
    // Encoded slashes and colons, as Swagger UI and the SDKs send them, name the model.
    const encoded = await call('/v1/models/library%2Fllama3.2%3Alatest')
    expect(encoded.status).toBe(200)
    expect(
      fake.received.filter((r) => r.path === '/api/chat' || r.path === '/api/copy' || r.path.startsWith('/v1/models/llama3.2%')),
    ).toHaveLength(0)
  })

  test('unknown paths are 404 and wrong methods 405, in the Ollama dialect', async () => {
    const unknown = await call('/api/nope')
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toEqual({ error: 'GET /api/nope not found' })
    const wrong = await call('/api/chat')
    expect(wrong.status).toBe(405)
    expect(wrong.headers.get('allow')).toBe('POST')
    expect((await wrong.json()).error).toContain('method GET not allowed')
  })
})

describe('dead backend (SPEC §5)', () => {
  test('connection refused is a 502 in both dialects, naming the backend but not its URL', async () => {
    const dead = await startGateway({ env: { OLLAMA_BASE_URL: 'http://user:pw@127.0.0.1:1' } })
    try {
      const native = await fetch(`${dead.url}/api/chat`, { method: 'POST', headers: dead.auth, body: '{"model":"m"}' })
      expect(native.status).toBe(502)
      expect(await native.json()).toEqual({ error: "cannot reach backend 'default': connection refused" })
      const openai = await fetch(`${dead.url}/v1/chat/completions`, {
        method: 'POST',
        headers: dead.auth,
        body: '{"model":"m","messages":[]}',
      })
      expect(openai.status).toBe(502)
      const text = await openai.text()
      expect(JSON.parse(text).error).toMatchObject({ code: 'upstream_unreachable', type: 'api_error' })
      expect(text).not.toContain('pw')
      // Nothing ran upstream, so a retry is safe: no x-should-retry: false.
      expect(openai.headers.get('x-should-retry')).toBeNull()
      const ready = await fetch(`${dead.url}/readyz`)
      expect(ready.status).toBe(503)
      expect((await ready.json()).status).toBe('not_ready')
    } finally {
      await dead.stop()
    }
  })
})
