// SPEC §4.4, §4.9, §4.10, §4.11: metering from streams, per-key limits, the audit log and its queries.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Redis } from 'ioredis'
import { FakeOllama, ndjsonLines, sseEvents } from './helpers/fake-ollama.ts'
import { type GatewayProcess, startGateway } from './helpers/gateway.ts'
import { type FreshDatabase, freshDatabase, freshRedis, metricValue } from './helpers/infra.ts'

const fake = new FakeOllama()
let db: FreshDatabase
let redisUrl: string
beforeAll(async () => {
  fake.start()
  db = await freshDatabase()
  redisUrl = await freshRedis(10)
}, 30_000)
afterAll(async () => {
  await fake.stop()
  await db.drop()
}, 30_000)

interface AuditRow {
  request_id: string
  key_id: string | null
  status: number
  outcome: string
  prompt_tokens: number | null
  completion_tokens: number | null
  tokens_partial: boolean
  model: string | null
  bytes_out: number | null
  action: string | null
  target: string | null
  path: string
}

async function auditOf(gw: GatewayProcess, filter = ''): Promise<AuditRow[]> {
  const rows: AuditRow[] = []
  let cursor = ''
  for (;;) {
    const page = await (
      await fetch(`${gw.url}/admin/audit?limit=1000${filter}${cursor ? `&cursor=${cursor}` : ''}`, { headers: gw.auth })
    ).json()
    rows.push(...page.items)
    if (!page.next_cursor) return rows
    cursor = page.next_cursor
  }
}
async function eventually<T>(probe: () => Promise<T>, ok: (v: T) => boolean, ms = 5000): Promise<T> {
  const until = Date.now() + ms
  for (;;) {
    const v = await probe()
    if (ok(v) || Date.now() > until) return v
    await Bun.sleep(100)
  }
}
/** Limits count in fixed one-minute windows: a test that must stay inside one starts early enough in it. */
async function insideOneWindow(latestSecond = 45): Promise<void> {
  while (new Date().getSeconds() > latestSecond) await Bun.sleep(500)
}

async function newKey(gw: GatewayProcess, body: Record<string, unknown>): Promise<{ key: string; id: string }> {
  const res = await fetch(`${gw.url}/admin/keys`, {
    method: 'POST',
    headers: { ...gw.auth, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  return res.json()
}

describe('metering (SPEC §4.9), embedded', () => {
  let gw: GatewayProcess
  beforeAll(async () => {
    gw = await startGateway({ env: { OLLAMA_BASE_URL: fake.url } })
  }, 30_000)
  afterAll(() => gw.stop(), 30_000)

  test('NDJSON: byte-identical with the final line split at every offset; counts equal upstream', async () => {
    const final = (ndjsonLines('/api/chat', 'llama3.2', { ...fake.behaviour }).at(-1) as string).length
    for (let at = 1; at < final; at += 1) {
      fake.perModel.set('llama3.2', { splitFinalAt: at })
      const res = await fetch(`${gw.url}/api/chat`, {
        method: 'POST',
        headers: { ...gw.auth, 'x-request-id': `split-${at}` },
        body: '{"model":"llama3.2","messages":[]}',
      })
      expect(await res.text()).toBe(fake.sentText(fake.last('/api/chat')))
    }
    fake.perModel.clear()
    const rows = await eventually(
      () => auditOf(gw, '&model=llama3.2'),
      (r) => r.filter((e) => e.request_id.startsWith('split-')).length >= final - 1,
    )
    const split = rows.filter((e) => e.request_id.startsWith('split-'))
    expect(split).toHaveLength(final - 1)
    for (const e of split) expect(e).toMatchObject({ outcome: 'ok', prompt_tokens: 7, completion_tokens: 3, tokens_partial: false })
  })

  test('SSE: byte-identical when the client asked for usage, at every split of the usage event', async () => {
    const events = sseEvents(true, 'llama3.2', { ...fake.behaviour }, true)
    const usageLength = (events.at(-2) as string).length
    const body = JSON.stringify({ model: 'llama3.2', messages: [], stream: true, stream_options: { include_usage: true } })
    // The fake splits its last write ("data: [DONE]"); the usage event is split by making it the last one.
    fake.perModel.set('llama3.2', { splitFinalAt: 7 })
    for (let at = 1; at < usageLength; at += 7) {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { ...gw.auth, 'x-request-id': `sse-${at}` },
        body,
      })
      const text = await res.text()
      expect(text).toBe(fake.sentText(fake.last('/v1/chat/completions')))
      expect(text).toContain('"usage"')
    }
    fake.perModel.clear()
    const rows = await eventually(
      () => auditOf(gw, '&model=llama3.2'),
      (r) => r.some((e) => e.request_id.startsWith('sse-')),
    )
    for (const e of rows.filter((x) => x.request_id.startsWith('sse-'))) expect(e).toMatchObject({ prompt_tokens: 7, completion_tokens: 3 })
  })

  test('the include_usage chunk reaches the client only when asked; the upstream was asked either way', async () => {
    const plain = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { ...gw.auth, 'x-request-id': 'no-usage-asked' },
      body: '{"model":"llama3.2","messages":[],"stream":true}',
    })
    const text = await plain.text()
    expect(text).not.toContain('"usage"')
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true)
    const upstreamBody = new TextDecoder().decode(fake.last('/v1/chat/completions').body)
    expect(upstreamBody).toBe('{"stream_options":{"include_usage":true},"model":"llama3.2","messages":[],"stream":true}')
    const row = (
      await eventually(
        () => auditOf(gw),
        (r) => r.some((e) => e.request_id === 'no-usage-asked'),
      )
    ).find((e) => e.request_id === 'no-usage-asked')
    expect(row).toMatchObject({ prompt_tokens: 7, completion_tokens: 3 })
  })

  test('a stream_options that is not an object is forwarded as sent, for upstream to refuse, not rewritten', async () => {
    for (const [options, type] of [
      ['5', 'number'],
      ['"yes"', 'string'],
      ['[1]', 'array'],
    ]) {
      const body = `{"model":"llama3.2","messages":[],"stream":true,"stream_options":${options}}`
      const res = await fetch(`${gw.url}/v1/chat/completions`, { method: 'POST', headers: gw.auth, body })
      expect(res.status).toBe(400)
      expect((await res.json()).error).toMatchObject({
        type: 'invalid_request_error',
        message: `json: cannot unmarshal ${type} into Go struct field stream_options of type openai.StreamOptions`,
      })
      expect(new TextDecoder().decode(fake.last('/v1/chat/completions').body)).toBe(body)
    }
    // null is no options at all: usage is asked for, and its chunk removed again.
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: gw.auth,
      body: '{"model":"llama3.2","messages":[],"stream":true,"stream_options":null}',
    })
    const text = await res.text()
    expect(text).not.toContain('"usage"')
    expect(JSON.parse(new TextDecoder().decode(fake.last('/v1/chat/completions').body)).stream_options).toEqual({ include_usage: true })
  })

  test('every surface is metered: generate stream, chat, embed, embeddings, v1 chat and embeddings', async () => {
    const calls: Array<[string, string, number | null, number | null]> = [
      ['/api/generate', '{"model":"llama3.2","prompt":"x"}', 7, 3],
      ['/api/chat', '{"model":"llama3.2","messages":[],"stream":false}', 7, 3],
      ['/api/embed', '{"model":"nomic-embed-text","input":"x"}', 7, 0],
      ['/api/embeddings', '{"model":"nomic-embed-text","prompt":"x"}', null, null],
      ['/v1/chat/completions', '{"model":"llama3.2","messages":[]}', 7, 3],
      ['/v1/embeddings', '{"model":"nomic-embed-text","input":"x"}', 7, 0],
    ]
    const idOf = (path: string) => `surface${path.replaceAll('/', '.')}`
    for (const [path, body] of calls)
      await (await fetch(gw.url + path, { method: 'POST', headers: { ...gw.auth, 'x-request-id': idOf(path) }, body })).text()
    const rows = await eventually(
      () => auditOf(gw),
      (r) => r.filter((e) => e.request_id.startsWith('surface')).length === calls.length,
    )
    for (const [path, , prompt, completion] of calls) {
      expect(rows.find((e) => e.request_id === idOf(path))).toMatchObject({ prompt_tokens: prompt, completion_tokens: completion })
    }
  })

  test('a client that leaves mid-stream: aborted, with the partial count seen so far', async () => {
    fake.perModel.set('llama3.2', { chunks: 40, chunkDelayMs: 30 })
    const controller = new AbortController()
    const res = await fetch(`${gw.url}/api/chat`, {
      method: 'POST',
      headers: { ...gw.auth, 'x-request-id': 'walked-away' },
      body: '{"model":"llama3.2"}',
      signal: controller.signal,
    })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    for (let i = 0; i < 5; i++) await reader.read()
    controller.abort()
    const row = (
      await eventually(
        () => auditOf(gw),
        (r) => r.some((e) => e.request_id === 'walked-away'),
      )
    ).find((e) => e.request_id === 'walked-away')
    fake.perModel.clear()
    expect(row?.outcome).toBe('aborted')
    expect(row?.tokens_partial).toBe(true)
    expect(row?.completion_tokens).toBeGreaterThanOrEqual(4)
    expect(row?.completion_tokens).toBeLessThan(40)
  })

  test('event streams (/v1/messages, /v1/responses): counted from their closing event; left early, partial with the input count', async () => {
    const calls: Array<[string, string, string]> = [
      ['events-messages-whole', '/v1/messages', '{"model":"llama3.2","max_tokens":9,"messages":[]}'],
      ['events-messages-stream', '/v1/messages', '{"model":"llama3.2","max_tokens":9,"messages":[],"stream":true}'],
      ['events-responses-stream', '/v1/responses', '{"model":"llama3.2","input":"x","stream":true}'],
    ]
    for (const [id, path, body] of calls)
      await (await fetch(gw.url + path, { method: 'POST', headers: { ...gw.auth, 'x-request-id': id }, body })).text()
    // Anthropic's stream names the input count in its first event, before any output: a client that
    // leaves then must not be billed as a finished answer of no output.
    fake.perModel.set('llama3.2', { chunks: 40, chunkDelayMs: 30 })
    const controller = new AbortController()
    const res = await fetch(`${gw.url}/v1/messages`, {
      method: 'POST',
      headers: { ...gw.auth, 'x-request-id': 'events-messages-left' },
      body: '{"model":"llama3.2","max_tokens":99,"messages":[],"stream":true}',
      signal: controller.signal,
    })
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    let text = ''
    while ((text.match(/text_delta/g) ?? []).length < 4) {
      const { done, value } = await reader.read()
      if (done) throw new Error(`the stream ended before four deltas: ${text}`)
      text += new TextDecoder().decode(value)
    }
    controller.abort()
    const rows = await eventually(
      () => auditOf(gw),
      (r) => r.filter((e) => e.request_id.startsWith('events-')).length === calls.length + 1,
    )
    fake.perModel.clear()
    for (const [id] of calls)
      expect(rows.find((e) => e.request_id === id)).toMatchObject({ prompt_tokens: 7, completion_tokens: 3, tokens_partial: false })
    const left = rows.find((e) => e.request_id === 'events-messages-left')
    expect(left).toMatchObject({ outcome: 'aborted', prompt_tokens: 7, tokens_partial: true })
    // One event is counted as one token: the start events and the deltas read so far.
    expect(left?.completion_tokens).toBeGreaterThanOrEqual(4)
    expect(left?.completion_tokens).toBeLessThan(40)
  })

  test('rejections, admin actions and usage are in the log; no secrets, no prompts', async () => {
    await fetch(`${gw.url}/api/chat`, {
      method: 'POST',
      headers: { authorization: 'Bearer nnz_nope', 'x-request-id': 'bad-key' },
      body: '{"model":"llama3.2","prompt":"SECRET PROMPT"}',
    })
    const created = await newKey(gw, { name: 'audited' })
    await fetch(`${gw.url}/admin/keys/${created.id}/revoke`, { method: 'POST', headers: gw.auth })
    const rows = await eventually(
      () => auditOf(gw),
      (r) => r.some((e) => e.action === 'key.revoke'),
    )
    expect(rows.find((e) => e.request_id === 'bad-key')).toMatchObject({ status: 401, outcome: 'rejected', key_id: null })
    expect(rows.find((e) => e.action === 'key.create')).toMatchObject({ target: created.id, outcome: 'ok' })
    const text = JSON.stringify(rows)
    expect(text).not.toContain('SECRET PROMPT')
    expect(text).not.toContain(created.key.split('_')[2])
    const usage = await (await fetch(`${gw.url}/admin/usage`, { headers: gw.auth })).json()
    const llama = usage.rows.filter((r: { model: string }) => r.model === 'llama3.2:latest')
    expect(llama.reduce((n: number, r: { requests: number }) => n + r.requests, 0)).toBeGreaterThan(10)
    expect(llama.reduce((n: number, r: { prompt_tokens: number }) => n + r.prompt_tokens, 0)).toBeGreaterThan(70)
    const bad = await fetch(`${gw.url}/admin/audit?from=yesterday`, { headers: gw.auth })
    expect(bad.status).toBe(400)
    // A cursor this gateway did not issue is refused, not silently read as "from the start".
    const badCursor = await fetch(`${gw.url}/admin/audit?cursor=MTc5NTY5NDQwMDAwMDoxNw`, { headers: gw.auth })
    expect(badCursor.status).toBe(400)
    expect((await badCursor.json()).error.message).toContain('is not one this gateway issued')
    for (const path of ['/admin/audit', '/admin/usage']) {
      const backwards = await fetch(`${gw.url}${path}?from=2026-12-08T00:00:00Z&to=2026-12-01T00:00:00Z`, { headers: gw.auth })
      expect(backwards.status).toBe(400)
      expect((await backwards.json()).error.message).toBe('from (2026-12-08T00:00:00.000Z) must be before to (2026-12-01T00:00:00.000Z)')
    }
  })

  test('one model spelt several ways is one model in the audit log, its filter and usage (UPSTREAM §5)', async () => {
    const { key, id } = await newKey(gw, { name: 'spellings' })
    for (const model of ['llama3.2', 'LLAMA3.2:latest', 'registry.ollama.ai/library/llama3.2'])
      await (
        await fetch(`${gw.url}/api/chat`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}` },
          body: JSON.stringify({ model, messages: [] }),
        })
      ).text()
    const rows = await eventually(
      () => auditOf(gw, `&key_id=${id}`),
      (r) => r.length === 3,
    )
    expect(rows.map((e) => e.model)).toEqual(['llama3.2:latest', 'llama3.2:latest', 'llama3.2:latest'])
    for (const spelling of ['llama3.2', 'Library/Llama3.2:latest'])
      expect(await auditOf(gw, `&key_id=${id}&model=${encodeURIComponent(spelling)}`)).toHaveLength(3)
    const usage = await (await fetch(`${gw.url}/admin/usage?key_id=${id}`, { headers: gw.auth })).json()
    expect(usage.rows).toEqual([expect.objectContaining({ key_id: id, model: 'llama3.2:latest', requests: 3, prompt_tokens: 21 })])
  })
})

describe('limits across two replicas sharing Redis (SPEC §4.4)', () => {
  let a: GatewayProcess
  let b: GatewayProcess
  let env: Record<string, string>
  beforeAll(async () => {
    const adminKey = (await import('../src/keys/format.ts')).newKey().token
    env = { OLLAMA_BASE_URL: fake.url, DATABASE_URL: db.url, REDIS_URL: redisUrl, BOOTSTRAP_ADMIN_KEY: adminKey }
    ;[a, b] = await Promise.all([startGateway({ env }), startGateway({ env })])
  }, 30_000)
  afterAll(() => Promise.all([a.stop(), b.stop()]), 30_000)

  const call = (gw: GatewayProcess, key: string, path = '/api/chat') =>
    fetch(gw.url + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}` },
      body: '{"model":"llama3.2","messages":[],"stream":false}',
    })

  test('rpm=60 hit by both replicas at once admits exactly 60 in the window', async () => {
    await insideOneWindow()
    const { key } = await newKey(a, { name: 'rpm', limits: { rpm: 60 } })
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        call(i % 2 ? a : b, key).then(async (r) => ({ status: r.status, headers: r.headers, body: await r.text() })),
      ),
    )
    expect(results.filter((r) => r.status === 200)).toHaveLength(60)
    const refused = results.filter((r) => r.status === 429)
    expect(refused).toHaveLength(40)
    const one = refused[0] as { headers: Headers; body: string }
    expect(Number(one.headers.get('retry-after'))).toBeGreaterThan(0)
    expect(one.headers.get('x-ratelimit-limit-requests')).toBe('60')
    expect(one.headers.get('x-ratelimit-remaining-requests')).toBe('0')
    expect(one.headers.get('x-ratelimit-reset-requests')).toMatch(/^\d+s$/)
    expect(JSON.parse(one.body)).toEqual({ error: 'rate limit reached: 60 requests per minute for this key; retry after the reset' })
    const v1 = await call(a, key, '/v1/chat/completions')
    expect(v1.status).toBe(429)
    expect((await v1.json()).error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limited' })
  }, 40_000)

  test("each replica reports its clock's offset from Redis's, which windows and leases follow", async () => {
    for (const gw of [a, b]) {
      const text = await (await fetch(`${gw.url}/metrics`, { headers: gw.auth })).text()
      expect(text).toContain('# TYPE nnz_rate_limit_clock_offset_seconds gauge')
      // Redis runs on this machine: the same clock, read over a round trip.
      expect(Math.abs(metricValue(text, 'nnz_rate_limit_clock_offset_seconds'))).toBeLessThan(0.5)
    }
  })

  test('two keys at once, 300 requests: each admits exactly its own rpm', async () => {
    // The admits of one event-loop turn go to Redis in one script call, whatever their keys, in calls of
    // at most 128: each key's count must still come out exact.
    await insideOneWindow()
    const [one, two] = await Promise.all([
      newKey(a, { name: 'rpm-100', limits: { rpm: 100 } }),
      newKey(a, { name: 'rpm-50', limits: { rpm: 50, max_concurrency: 1000 } }),
    ])
    const statuses = await Promise.all(
      Array.from({ length: 300 }, (_, i) => call(i % 4 < 2 ? a : b, i % 2 ? one.key : two.key).then((r) => r.status)),
    )
    const admitted = (parity: number) => statuses.filter((s, i) => i % 2 === parity && s === 200).length
    expect(admitted(1)).toBe(100)
    expect(admitted(0)).toBe(50)
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([])
  }, 40_000)

  test('max_concurrency=2 holds across replicas', async () => {
    const { key } = await newKey(a, { name: 'conc', limits: { max_concurrency: 2 } })
    fake.perModel.set('llama3.2', { firstByteDelayMs: 600 })
    try {
      const statuses = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          call(i % 2 ? a : b, key).then(async (r) => {
            await r.text()
            return r.status
          }),
        ),
      )
      expect(statuses.filter((s) => s === 200)).toHaveLength(2)
      expect(statuses.filter((s) => s === 429)).toHaveLength(4)
    } finally {
      fake.perModel.clear()
    }
    expect((await call(b, key)).status).toBe(200)
  })

  test('max_concurrency=1: requests one after another through alternating replicas are all admitted', async () => {
    // SPEC §4.4: a request's slot is free again before its answer reaches the client, so the client's
    // next request finds it free on either replica: non-streamed answers, streamed ones and both dialects.
    const { key } = await newKey(a, { name: 'serial', limits: { max_concurrency: 1 } })
    const paths = ['/api/chat', '/v1/chat/completions']
    const refused: string[] = []
    for (let i = 0; i < 120; i++) {
      const gw = i % 2 ? a : b
      const path = paths[(i >> 1) % 2] as string
      const stream = i % 8 >= 4
      const res = await fetch(gw.url + path, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}` },
        body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream }),
      })
      await res.text()
      if (res.status !== 200) refused.push(`${i} ${path} stream=${stream}: ${res.status}`)
    }
    expect(refused).toEqual([])
  })

  test('tpm stops a key once its metered tokens reach the limit', async () => {
    const { key } = await newKey(a, { name: 'tpm', limits: { tpm: 20 } })
    // Each answer is 7 prompt + 3 completion tokens.
    expect((await call(a, key)).status).toBe(200)
    await Bun.sleep(100)
    expect((await call(b, key)).status).toBe(200)
    await Bun.sleep(100)
    const refused = await call(a, key)
    expect(refused.status).toBe(429)
    expect(refused.headers.get('x-ratelimit-remaining-tokens')).toBe('0')
    expect((await refused.json()).error).toContain('token limit reached: 20 tokens per minute')
  })

  test("a key's counters in Redis: exact counts, and each expires (set once per window)", async () => {
    // SPEC §4.4: the admit sets a window counter's expiry only when it creates the counter, and the
    // finish likewise for the tokens counter; every key the limiter writes must still expire.
    const { key, id } = await newKey(a, { name: 'ttl', limits: { rpm: 1000, tpm: 1_000_000, max_concurrency: 5 } })
    await insideOneWindow(50)
    const redis = new Redis(redisUrl)
    try {
      for (let i = 0; i < 10; i++) expect((await call(i % 2 ? a : b, key)).status).toBe(200)
      const last = await call(a, key)
      expect(last.headers.get('x-ratelimit-remaining-requests')).toBe(String(1000 - 11))
      // Ten answers of 10 tokens each are charged before the eleventh is admitted (its own comes after).
      expect(last.headers.get('x-ratelimit-remaining-tokens')).toBe(String(1_000_000 - 100))
      const stored = await eventually(
        () => redis.keys(`nnz:rl:{${id}}:*`),
        (k) => k.length === 2,
      )
      // The lease set empties (and so is gone) once every request has ended.
      expect(stored.map((k) => k.split(':')[3]).sort()).toEqual(['r', 't'])
      for (const k of stored) {
        const ttl = await redis.pttl(k)
        expect(ttl).toBeGreaterThan(60_000)
        expect(ttl).toBeLessThanOrEqual(120_000)
      }
      expect(Number(await redis.get(stored.find((k) => k.includes(':t:')) as string))).toBe(110)
      // A request in flight holds a lease in a set that also expires.
      fake.perModel.set('llama3.2', { firstByteDelayMs: 800 })
      const slow = call(b, key).then((r) => r.text())
      const leases = `nnz:rl:{${id}}:leases`
      await eventually(
        () => redis.zcard(leases),
        (n) => n === 1,
      )
      const leaseTtl = await redis.pttl(leases)
      expect(leaseTtl).toBeGreaterThan(0)
      expect(leaseTtl).toBeLessThanOrEqual(60_000)
      await slow
      expect(await redis.zcard(leases)).toBe(0)
    } finally {
      fake.perModel.clear()
      redis.disconnect()
    }
  })

  test('a replica killed while holding a lease frees it when the lease expires', async () => {
    const { key } = await newKey(a, { name: 'lease', limits: { max_concurrency: 1 } })
    const doomed = await startGateway({ env })
    fake.perModel.set('llama3.2', { firstByteDelayMs: 30_000 })
    const hanging = call(doomed, key).catch(() => undefined)
    await Bun.sleep(300)
    doomed.proc.kill('SIGKILL')
    await hanging
    fake.perModel.clear()
    expect((await call(a, key)).status).toBe(429)
    const started = Date.now()
    let status = 429
    while (status === 429 && Date.now() - started < 25_000) {
      await Bun.sleep(500)
      status = (await call(a, key)).status
    }
    expect(status).toBe(200)
  }, 40_000)
})

describe('Redis unreachable (SPEC §4.4)', () => {
  test('fail open by default, counted; RATE_LIMIT_FAIL_CLOSED=true rejects', async () => {
    const env = { OLLAMA_BASE_URL: fake.url, REDIS_URL: 'redis://127.0.0.1:1' }
    const open = await startGateway({ env })
    try {
      const { key } = await newKey(open, { name: 'open', limits: { rpm: 1 } })
      for (let i = 0; i < 3; i++)
        expect((await fetch(`${open.url}/api/tags`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200)
      const m = await (await fetch(`${open.url}/metrics`, { headers: open.auth })).text()
      expect(metricValue(m, 'nnz_rate_limit_fail_open_total')).toBeGreaterThanOrEqual(3)
    } finally {
      await open.stop()
    }
    const closed = await startGateway({ env: { ...env, RATE_LIMIT_FAIL_CLOSED: 'true' } })
    try {
      const { key } = await newKey(closed, { name: 'closed', limits: { rpm: 100 } })
      const res = await fetch(`${closed.url}/api/tags`, { headers: { authorization: `Bearer ${key}` } })
      expect(res.status).toBe(503)
      expect((await res.json()).error).toContain('rate limiter unavailable')
    } finally {
      await closed.stop()
    }
  })
})
