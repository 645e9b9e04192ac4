// SPEC §4.1: health and readiness, graceful shutdown within SHUTDOWN_GRACE_S, no silent port sharing.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { FakeOllama } from './helpers/fake-ollama.ts'
import { startGateway } from './helpers/gateway.ts'

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
