// SPEC §4.1: health and readiness, graceful shutdown within SHUTDOWN_GRACE_S, no silent port sharing.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { connect } from 'node:net'
import { FakeOllama } from './helpers/fake-ollama.ts'
import { startGateway } from './helpers/gateway.ts'
import { freshDatabase, freshRedis } from './helpers/infra.ts'

const fake = new FakeOllama()
beforeAll(() => {
  fake.start()
})
afterAll(() => fake.stop())

describe('health (SPEC §4.1)', () => {
  test('/healthz is 200 and /readyz names each dependency and its state', async () => {
    const gw = await startGateway({ env: { OLLAMA_BASE_URL: fake.url } })
    try {
      const health = await fetch(`${gw.url}/healthz`)
      expect(health.status).toBe(200)
      expect(await health.json()).toMatchObject({ status: 'ok', version: expect.any(String) })
      const ready = await fetch(`${gw.url}/readyz`)
      expect(ready.status).toBe(200)
      expect(await ready.json()).toMatchObject({ status: 'ready', backends: [{ name: 'default', state: 'up' }] })
    } finally {
      await gw.stop()
    }
  })

  test('a backend that goes away makes /readyz 503 on the next poll while /healthz stays 200', async () => {
    const flaky = new FakeOllama().start()
    const gw = await startGateway({ env: { OLLAMA_BASE_URL: flaky.url, DISCOVERY_INTERVAL_S: '0.2', OLLAMA_CONNECT_TIMEOUT_S: '0.5' } })
    try {
      expect((await fetch(`${gw.url}/readyz`)).status).toBe(200)
      await flaky.stop()
      await gw.waitForLog((l) => l.msg === 'backend down', 5000)
      const ready = await fetch(`${gw.url}/readyz`)
      expect(ready.status).toBe(503)
      const body = await ready.json()
      expect(body.backends[0].state).toBe('down')
      expect(body.backends[0].detail).toContain('/api/')
      expect((await fetch(`${gw.url}/healthz`)).status).toBe(200)
    } finally {
      await gw.stop()
    }
  })
})

describe('idle connections (SPEC §6)', () => {
  /** A raw keep-alive connection: sends one request, then reports when the answer is complete and when the gateway closes it. */
  function rawRequest(port: number, request: string, complete: (text: string) => boolean) {
    const started = performance.now()
    let text = ''
    let answeredAt = Number.NaN
    return new Promise<{ text: string; answeredMs: number; closedMs: number }>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write(request))
      socket.setEncoding('utf8')
      socket.on('data', (chunk: string) => {
        text += chunk
        if (Number.isNaN(answeredAt) && complete(text)) answeredAt = performance.now()
      })
      socket.on('error', reject)
      // Still open after 20 s: reported as never closed.
      socket.setTimeout(20_000, () => socket.destroy())
      socket.on('close', () => {
        const closedMs = performance.now() - started
        resolve({ text, answeredMs: answeredAt - started, closedMs: closedMs >= 20_000 ? Number.POSITIVE_INFINITY : closedMs })
      })
    })
  }

  test('an idle keep-alive connection is closed; a request in flight is not cut, however silent', async () => {
    fake.reset()
    // The stream's first line comes at once, its last after 7 s of silence: over three idle timeouts.
    fake.perModel.set('slow-load', { chunks: 1, chunkDelayMs: 7000 })
    fake.models.push({ name: 'slow-load:latest' })
    const gw = await startGateway({ env: { OLLAMA_BASE_URL: fake.url, IDLE_TIMEOUT_S: '2' } })
    try {
      const head = (path: string, body = '') =>
        `${body ? 'POST' : 'GET'} ${path} HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer ${gw.adminKey}\r\nContent-Length: ${body.length}\r\n\r\n${body}`
      const body = JSON.stringify({ model: 'slow-load', messages: [{ role: 'user', content: 'hi' }] })
      const [idle, slow] = await Promise.all([
        rawRequest(gw.port, head('/healthz'), (t) => t.includes('"status":"ok"')),
        rawRequest(gw.port, head('/api/chat', body), (t) => t.includes('"done":true')),
      ])
      // Answered at once, then closed by the gateway after about the idle timeout (uWS ticks in 4 s steps).
      expect(idle.answeredMs).toBeLessThan(1000)
      expect(idle.closedMs).toBeGreaterThan(1500)
      expect(idle.closedMs).toBeLessThan(15_000)
      // The stream's silence did not cut it: it arrived whole; then its connection went idle and was closed too.
      expect(slow.text).toStartWith('HTTP/1.1 200')
      expect(slow.text).toContain('"done":true')
      expect(slow.answeredMs).toBeGreaterThan(6500)
      expect(slow.closedMs).toBeGreaterThan(slow.answeredMs + 1000)
      expect(slow.closedMs).toBeLessThan(slow.answeredMs + 15_000)
    } finally {
      await gw.stop()
    }
  }, 40_000)
})

describe('shutdown (SPEC §4.1)', () => {
  test('SIGTERM lets an in-flight stream finish within the grace period, then exits 0', async () => {
    fake.reset()
    fake.behaviour.chunks = 8
    fake.behaviour.chunkDelayMs = 150
    const gw = await startGateway({ env: { OLLAMA_BASE_URL: fake.url, SHUTDOWN_GRACE_S: '10' } })
    const res = await fetch(`${gw.url}/api/chat`, { method: 'POST', headers: gw.auth, body: '{"model":"llama3.2","messages":[]}' })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    await reader.read()
    gw.proc.kill('SIGTERM')
    let text = ''
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    expect(text.trim().split('\n').at(-1)).toContain('"done":true')
    expect(await gw.proc.exited).toBe(0)
    expect(gw.logs.find((l) => l.msg === 'stopped')).toMatchObject({ drained: true })
    // New connections are refused once shutdown began.
    await expect(fetch(`${gw.url}/healthz`)).rejects.toThrow()
  })

  test('a stream longer than the grace period is cut at the deadline and the process still exits 0', async () => {
    fake.reset()
    fake.behaviour.chunks = 100
    fake.behaviour.chunkDelayMs = 100
    const gw = await startGateway({ env: { OLLAMA_BASE_URL: fake.url, SHUTDOWN_GRACE_S: '0.5' } })
    const res = await fetch(`${gw.url}/api/chat`, { method: 'POST', headers: gw.auth, body: '{"model":"llama3.2","messages":[]}' })
    const started = Date.now()
    gw.proc.kill('SIGTERM')
    await res.text().catch(() => '')
    expect(await gw.proc.exited).toBe(0)
    expect(Date.now() - started).toBeLessThan(5000)
    expect(gw.logs.find((l) => l.msg === 'stopped')).toMatchObject({ drained: false })
  })
})

describe('listening', () => {
  test('a second instance on a taken port fails instead of sharing it', async () => {
    const first = await startGateway({ env: { OLLAMA_BASE_URL: fake.url } })
    try {
      const second = await startGateway({ env: { OLLAMA_BASE_URL: fake.url, PORT: String(first.port) }, waitListening: false })
      expect(await second.proc.exited).toBe(1)
      expect(second.logs.find((l) => l.msg === 'cannot listen')).toBeTruthy()
    } finally {
      await first.stop()
    }
  })
})

describe('startup line (SPEC §3.1)', () => {
  test('it names the store and the shared state, and half a cluster is warned about either way', async () => {
    const db = await freshDatabase()
    const redisUrl = await freshRedis(14)
    const cases = [
      [{}, { mode: 'embedded', store: 'sqlite', shared_state: 'memory' }, null],
      [{ DATABASE_URL: db.url, REDIS_URL: redisUrl }, { mode: 'cluster', store: 'postgres', shared_state: 'redis' }, null],
      [{ DATABASE_URL: db.url }, { mode: 'cluster', store: 'postgres', shared_state: 'memory' }, 'DATABASE_URL without REDIS_URL'],
      [{ REDIS_URL: redisUrl }, { mode: 'embedded', store: 'sqlite', shared_state: 'redis' }, 'REDIS_URL without DATABASE_URL'],
    ] as const
    try {
      for (const [env, line, warning] of cases) {
        const gw = await startGateway({ env: { OLLAMA_BASE_URL: fake.url, ...env } })
        try {
          expect(gw.logs.find((l) => l.msg === 'listening')).toMatchObject(line)
          const warned = gw.logs.filter((l) => l.level === 'warn' && /_URL without /.test(String(l.msg)))
          expect(warned.map((l) => String(l.msg).split(':')[0])).toEqual(warning ? [warning] : [])
          // The gateway serves in every one of them.
          expect((await fetch(`${gw.url}/api/tags`, { headers: gw.auth })).status).toBe(200)
        } finally {
          await gw.stop()
        }
      }
    } finally {
      await db.drop()
    }
  })
})

describe('first start', () => {
  test('an empty store tells the operator, in one short message, how to create the first admin key', async () => {
    const gw = await startGateway({ env: { OLLAMA_BASE_URL: fake.url, BOOTSTRAP_ADMIN_KEY: '' } })
    try {
      const hint = await gw.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('no API keys yet'))
      expect(hint.msg).toContain('neuronetz-gateway keys create --name admin --scopes admin')
      expect(hint.level).toBe('warn')
    } finally {
      await gw.stop()
    }
  })
})
