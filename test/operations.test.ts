// SPEC §4.12, §4.13, CORS and TLS (§3.2, §4.8): what an operator sees and a browser needs.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
// @ts-expect-error: the package ships no types; it returns an array of metric families.
import parsePrometheusTextFormat from 'parse-prometheus-text-format'
import pkg from '../package.json' with { type: 'json' }
import { FakeOllama } from './helpers/fake-ollama.ts'
import { type GatewayProcess, startGateway } from './helpers/gateway.ts'

interface Family {
  name: string
  type: string
  metrics: Array<{ labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string }>
}
const parse = parsePrometheusTextFormat as (text: string) => Family[]

const fake = new FakeOllama()
let gw: GatewayProcess
beforeAll(async () => {
  fake.start()
  gw = await startGateway({ env: { OLLAMA_BASE_URL: fake.url, CORS_ORIGINS: 'https://app.example, https://other.example' } })
}, 30_000)
afterAll(async () => {
  await gw.stop()
  await fake.stop()
}, 30_000)

describe('metrics (SPEC §4.12)', () => {
  test('Prometheus text format, with values that match the traffic sent', async () => {
    // One model spelt three ways (UPSTREAM §5) is one series, named as /api/tags names it.
    for (const model of ['llama3.2', 'llama3.2', 'LLAMA3.2', 'library/llama3.2:latest', 'llama3.2:latest'])
      await (await fetch(`${gw.url}/api/chat`, { method: 'POST', headers: gw.auth, body: JSON.stringify({ model, messages: [] }) })).text()
    await (await fetch(`${gw.url}/api/chat`, { method: 'POST', body: '{"model":"llama3.2"}' })).text()
    const res = await fetch(`${gw.url}/metrics`, { headers: gw.auth })
    expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4')
    const families = parse(await res.text())
    const family = (name: string) => families.find((f) => f.name === name) as Family
    const value = (name: string, labels: Record<string, string>) =>
      Number(family(name).metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ?? 0)
    expect(family('nnz_requests_total').type).toBe('COUNTER')
    expect(value('nnz_requests_total', { route: '/api/chat', method: 'POST', status: '200' })).toBe(5)
    expect(value('nnz_requests_total', { route: '/api/chat', status: '401' })).toBe(1)
    expect(value('nnz_tokens_total', { model: 'llama3.2:latest', kind: 'prompt' })).toBe(35)
    expect(value('nnz_tokens_total', { model: 'llama3.2:latest', kind: 'completion' })).toBe(15)
    expect(family('nnz_tokens_total').metrics.map((m) => m.labels?.model)).toEqual(['llama3.2:latest', 'llama3.2:latest'])
    expect(family('nnz_request_duration_seconds').type).toBe('HISTOGRAM')
    // This parser keeps only the buckets of a histogram series: the +Inf buckets add up to every request proxied.
    const observed = family('nnz_request_duration_seconds').metrics.reduce((n, m) => n + Number(m.buckets?.['+Inf'] ?? 0), 0)
    expect(observed).toBe(6)
    expect(family('nnz_time_to_first_byte_seconds').type).toBe('HISTOGRAM')
    expect(value('nnz_backend_up', { backend: 'default' })).toBe(1)
    expect(family('nnz_backend_in_flight').type).toBe('GAUGE')
    expect(value('nnz_key_cache_hits_total', { layer: 'memory' })).toBeGreaterThanOrEqual(5)
    expect(value('nnz_auth_failures_total', { reason: 'malformed' }) + value('nnz_auth_failures_total', { reason: 'missing' })).toBe(1)
    for (const name of ['nnz_argon2_verifications_total', 'nnz_audit_buffered', 'nnz_backend_queued', 'nnz_backend_breaker_open'])
      expect(family(name)).toBeDefined()
    // Label hygiene: route templates only, no raw paths, no secrets.
    const labels = families.flatMap((f) => f.metrics.flatMap((m) => Object.values(m.labels ?? {})))
    expect(labels.some((l) => l.includes(gw.adminKey.split('_')[2] as string))).toBe(false)
  })

  test("the process's own series under Prometheus's standard names, the build, and the requests in flight", async () => {
    const scrape = async () => {
      const families = parse(await (await fetch(`${gw.url}/metrics`, { headers: gw.auth })).text())
      return (name: string) => families.find((f) => f.name === name) as Family
    }
    const pid = gw.proc.pid
    // A stream held open by the fake: one request in flight, and its two sockets among the open descriptors.
    fake.behaviour.chunks = 3
    fake.behaviour.chunkDelayMs = 400
    const streaming = await fetch(`${gw.url}/api/chat`, {
      method: 'POST',
      headers: gw.auth,
      body: JSON.stringify({ model: 'llama3.2', messages: [] }),
    })
    const during = await scrape()
    expect(during('nnz_requests_in_flight').type).toBe('GAUGE')
    expect(Number(during('nnz_requests_in_flight').metrics[0]?.value)).toBe(1)
    await streaming.text()
    fake.reset()
    const family = await scrape()
    expect(Number(family('nnz_requests_in_flight').metrics[0]?.value)).toBe(0)

    const info = family('nnz_build_info').metrics[0]
    expect(info?.labels).toEqual({ version: pkg.version, commit: 'dev', runtime: 'bun' })
    expect(info?.value).toBe('1')

    // Read against the kernel's own figures for the gateway's process.
    const status = readFileSync(`/proc/${pid}/status`, 'utf8')
    const rssKb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1])
    const rss = Number(family('process_resident_memory_bytes').metrics[0]?.value)
    expect(rss).toBeGreaterThan(rssKb * 1024 * 0.5)
    expect(rss).toBeLessThan(rssKb * 1024 * 1.5)
    const [utime, stime] = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ').slice(11, 13).map(Number) ?? []
    const cpu = Number(family('process_cpu_seconds_total').metrics[0]?.value)
    expect(family('process_cpu_seconds_total').type).toBe('COUNTER')
    expect(cpu).toBeGreaterThan(0)
    expect(Math.abs(cpu - ((utime ?? 0) + (stime ?? 0)) / 100)).toBeLessThan(1)
    const started = Number(family('process_start_time_seconds').metrics[0]?.value)
    expect(started).toBeLessThanOrEqual(Date.now() / 1000)
    expect(started).toBeGreaterThan(Date.now() / 1000 - 600)
    const open = Number(family('process_open_fds').metrics[0]?.value)
    expect(Math.abs(open - readdirSync(`/proc/${pid}/fd`).length)).toBeLessThanOrEqual(3)
    expect(Number(family('process_max_fds').metrics[0]?.value)).toBeGreaterThanOrEqual(open)
  })

  test('/metrics needs the admin scope unless METRICS_PUBLIC=true', async () => {
    expect((await fetch(`${gw.url}/metrics`)).status).toBe(401)
    const open = await startGateway({ env: { OLLAMA_BASE_URL: fake.url, METRICS_PUBLIC: 'true' } })
    try {
      expect((await fetch(`${open.url}/metrics`)).status).toBe(200)
    } finally {
      await open.stop()
    }
  })
})

describe('request log and series (SPEC §4.12)', () => {
  test("one log line and one count per request, the gateway's own routes and unknown paths included", async () => {
    const quiet = await startGateway({ env: { OLLAMA_BASE_URL: fake.url, LOG_LEVEL: 'debug' } })
    try {
      const created = await fetch(`${quiet.url}/admin/keys`, {
        method: 'POST',
        headers: { ...quiet.auth, 'x-request-id': 'req-admin-create' },
        body: JSON.stringify({ name: 'logged' }),
      })
      expect(created.status).toBe(201)
      const sent: Array<[string, RequestInit, number]> = [
        ['/admin/keys', { headers: { 'x-request-id': 'req-admin-nokey' } }, 401],
        ['/admin/keys/zz', { headers: { ...quiet.auth, 'x-request-id': 'req-admin-bad' } }, 400],
        ['/healthz', { headers: { 'x-request-id': 'req-health' } }, 200],
        ['/no/such/path?secret=1', { headers: { 'x-request-id': 'req-unknown' } }, 404],
        ['/api/chat', { headers: { ...quiet.auth, 'x-request-id': 'req-wrong-method' } }, 405],
        [
          '/api/chat',
          { method: 'POST', headers: { ...quiet.auth, 'x-request-id': 'req-chat' }, body: '{"model":"llama3.2","stream":false}' },
          200,
        ],
      ]
      for (const [path, init, status] of sent) {
        const res = await fetch(`${quiet.url}${path}`, init)
        await res.arrayBuffer()
        expect({ path, status: res.status }).toEqual({ path, status })
      }
      // An answer without an id from the client names the one the gateway made, as its log line does.
      const ready = await fetch(`${quiet.url}/readyz`)
      await ready.arrayBuffer()
      const madeId = ready.headers.get('x-request-id') as string
      expect(madeId).toMatch(/^[0-9a-f-]{36}$/)
      await quiet.waitForLog((l) => l.msg === 'request' && l.request_id === madeId && l.path === '/readyz')
      await quiet.waitForLog((l) => l.msg === 'request' && l.request_id === 'req-chat')
      const lines = (id: string) => quiet.logs.filter((l) => l.msg === 'request' && l.request_id === id)
      expect(lines('req-admin-create')).toEqual([
        expect.objectContaining({
          level: 'info',
          method: 'POST',
          path: '/admin/keys',
          status: 201,
          key_id: quiet.adminKey.slice(4, 16),
          client_ip: '127.0.0.1',
        }),
      ])
      expect(lines('req-admin-nokey')).toEqual([
        expect.objectContaining({ status: 401, error: expect.stringContaining('API key required') }),
      ])
      expect(lines('req-admin-bad')).toEqual([
        expect.objectContaining({ status: 400, error: expect.stringContaining("path parameter 'id'") }),
      ])
      // Polled routes log at debug, so the default level does not fill the log with probes.
      expect(lines('req-health')).toEqual([expect.objectContaining({ level: 'debug', path: '/healthz', status: 200 })])
      // The query string is not logged.
      expect(lines('req-unknown')).toEqual([expect.objectContaining({ path: '/no/such/path', status: 404 })])
      expect(lines('req-wrong-method')).toEqual([expect.objectContaining({ path: '/api/chat', status: 405 })])
      // A proxied request still has exactly one line, its own.
      expect(lines('req-chat')).toEqual([expect.objectContaining({ status: 200, outcome: 'ok', backend: 'default' })])
      const families = parse(await (await fetch(`${quiet.url}/metrics`, { headers: quiet.auth })).text())
      const requests = families.find((f) => f.name === 'nnz_requests_total') as Family
      const count = (route: string, method: string, status: string) =>
        Number(
          requests.metrics.find((m) => m.labels?.route === route && m.labels?.method === method && m.labels?.status === status)?.value ?? 0,
        )
      expect(count('/admin/keys', 'POST', '201')).toBe(1)
      expect(count('/admin/keys', 'GET', '401')).toBe(1)
      expect(count('/admin/keys/:id', 'GET', '400')).toBe(1)
      expect(count('/healthz', 'GET', '200')).toBe(1)
      expect(count('unmatched', 'GET', '404')).toBe(1)
      expect(count('/api/chat', 'GET', '405')).toBe(1)
      expect(count('/api/chat', 'POST', '200')).toBe(1)
    } finally {
      await quiet.stop()
    }
  })
})

describe('OpenAPI (SPEC §4.13)', () => {
  test('/docs/json documents admin, health and proxied routes, with the bearer scheme', async () => {
    const doc = await (await fetch(`${gw.url}/docs/json`)).json()
    for (const path of [
      '/admin/keys',
      '/admin/keys/{id}/revoke',
      '/admin/audit',
      '/admin/usage',
      '/admin/backends',
      '/healthz',
      '/readyz',
      '/api/chat',
      '/v1/chat/completions',
    ]) {
      expect(Object.keys(doc.paths)).toContain(path)
    }
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' })
    expect(doc.paths['/api/chat'].post.requestBody.content['application/json'].example.model).toBe('llama3.2')
    expect(doc.paths['/admin/keys'].post.requestBody.content['application/json'].schema.properties.name).toBeDefined()
  })

  test('every documented operation says what it answers; paths are templated so "Try it out" can fill them', async () => {
    const doc = await (await fetch(`${gw.url}/docs/json`)).json()
    const operations = Object.entries(doc.paths as Record<string, Record<string, { responses?: Record<string, unknown> }>>).flatMap(
      ([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })),
    )
    for (const { path, method, op } of operations) {
      expect(path).toMatch(/^\/[A-Za-z0-9/{}_.-]*$/)
      expect({ path, method, statuses: Object.keys(op.responses ?? {}) }).toMatchObject({
        statuses: expect.arrayContaining([expect.stringMatching(/^2/)]),
      })
    }
    // The model id path, documented with its parameter; errors in each surface's dialect.
    const model = doc.paths['/v1/models/{model}'].get
    expect(model.parameters).toEqual([expect.objectContaining({ name: 'model', in: 'path', required: true })])
    expect(model.responses['404'].content['application/json'].schema.properties.error.properties.type).toEqual({ type: 'string' })
    expect(doc.paths['/api/chat'].post.responses['200'].content).toHaveProperty('application/x-ndjson')
    expect(doc.paths['/api/chat'].post.responses['401'].content['application/json'].schema.properties.error).toEqual({ type: 'string' })
    expect(doc.paths['/v1/chat/completions'].post.responses['200'].content).toHaveProperty('text/event-stream')
    expect(doc.paths['/v1/messages'].post.responses['429'].content['application/json'].schema.properties.type).toEqual({ const: 'error' })
    expect(
      doc.paths['/admin/audit'].get.responses['200'].content['application/json'].schema.properties.items.items.properties.outcome,
    ).toBeDefined()
    expect(doc.paths['/admin/usage'].get.responses['200'].content['application/json'].schema.properties.rows).toBeDefined()
    // Each error example is what the gateway sends: the same shape, type and code as a real answer.
    const example = doc.paths['/v1/chat/completions'].post.responses['404'].content['application/json'].example
    const real = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: gw.auth,
      body: JSON.stringify({ model: 'llama3.2-missing', messages: [] }),
    })
    expect(real.status).toBe(404)
    const body = await real.json()
    expect({ ...body.error, message: '' }).toEqual({ ...example.error, message: '' })
    // What the document says is what a call answers: the model path as Swagger UI sends it.
    const tried = await fetch(`${gw.url}/v1/models/${encodeURIComponent('llama3.2:latest')}`, { headers: gw.auth })
    expect(tried.status).toBe(200)
    expect((await tried.json()).id).toBe('llama3.2:latest')
  })

  test('/docs is Swagger UI with every asset served by the gateway itself', async () => {
    const page = await (await fetch(`${gw.url}/docs`)).text()
    expect(page).toContain('SwaggerUIBundle')
    expect(page).not.toMatch(/https?:\/\//)
    for (const asset of ['swagger-ui-bundle.js', 'swagger-ui.css']) {
      const res = await fetch(`${gw.url}/docs/assets/${asset}`)
      expect(res.status).toBe(200)
      expect((await res.arrayBuffer()).byteLength).toBeGreaterThan(10_000)
    }
  })
})

describe('CORS (SPEC §4.8)', () => {
  test('preflights from configured origins are answered by the gateway; others get no CORS headers', async () => {
    const ok = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type, x-stainless-os',
      },
    })
    expect(ok.status).toBe(204)
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(ok.headers.get('access-control-allow-headers')).toBe('authorization, content-type, x-stainless-os')
    // Anthropic's SDK in a browser (UPSTREAM §4) sends its key as x-api-key and its own version headers.
    const anthropicAsks = 'anthropic-dangerous-direct-browser-access, anthropic-version, content-type, x-api-key, x-stainless-lang'
    const messages = await fetch(`${gw.url}/v1/messages`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': anthropicAsks },
    })
    expect(messages.headers.get('access-control-allow-headers')).toBe(anthropicAsks)
    const other = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    })
    expect(other.headers.get('access-control-allow-origin')).toBeNull()
    expect(fake.received.filter((r) => r.method === 'OPTIONS')).toHaveLength(0)
  })

  test('responses, errors included, carry the CORS headers; Origin never reaches Ollama', async () => {
    const res = await fetch(`${gw.url}/api/chat`, {
      method: 'POST',
      headers: { ...gw.auth, origin: 'https://app.example' },
      body: '{"model":"llama3.2","stream":false}',
    })
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example')
    expect(res.headers.get('access-control-expose-headers')).toContain('x-request-id')
    expect(fake.last('/api/chat').headers.origin).toBeUndefined()
    const denied = await fetch(`${gw.url}/api/chat`, { method: 'POST', headers: { origin: 'https://app.example' }, body: '{}' })
    expect(denied.status).toBe(401)
    expect(denied.headers.get('access-control-allow-origin')).toBe('https://app.example')
  })
})

describe('TLS (SPEC §3.2)', () => {
  test('serves HTTPS directly with TLS_CERT_FILE and TLS_KEY_FILE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nnz-tls-'))
    const made = Bun.spawnSync([
      'openssl',
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      `${dir}/key.pem`,
      '-out',
      `${dir}/cert.pem`,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
    ])
    expect(made.exitCode).toBe(0)
    const tls = await startGateway({ env: { OLLAMA_BASE_URL: fake.url, TLS_CERT_FILE: `${dir}/cert.pem`, TLS_KEY_FILE: `${dir}/key.pem` } })
    try {
      expect(tls.logs.find((l) => l.msg === 'listening')?.url).toStartWith('https://')
      const res = await fetch(`https://127.0.0.1:${tls.port}/api/tags`, {
        headers: tls.auth,
        tls: { rejectUnauthorized: false },
      } as RequestInit)
      expect(res.status).toBe(200)
      await expect(fetch(`http://127.0.0.1:${tls.port}/healthz`)).rejects.toThrow()
    } finally {
      await tls.stop()
    }
  })

  test('a missing certificate file stops startup with one clear message', async () => {
    const bad = await startGateway({
      env: { OLLAMA_BASE_URL: fake.url, TLS_CERT_FILE: '/nonexistent/cert.pem', TLS_KEY_FILE: '/nonexistent/key.pem' },
      waitListening: false,
    })
    expect(await bad.proc.exited).not.toBe(0)
    expect(bad.output()).toContain('/nonexistent/cert.pem')
    expect(bad.output()).not.toContain('    at ')
  })
})
