// SPEC §4.6, §4.7: three fake Ollama backends holding different models behind one gateway.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { FakeOllama } from './helpers/fake-ollama.ts'
import { type GatewayProcess, startGateway } from './helpers/gateway.ts'

const gpuA = new FakeOllama()
const gpuB = new FakeOllama()
const gpuC = new FakeOllama()
let fast: GatewayProcess // DISCOVERY_INTERVAL_S=1: breaker cooldown and polls are quick
let slow: GatewayProcess // DISCOVERY_INTERVAL_S=60: only refreshes and re-polls can find new models

function setModels() {
  gpuA.models = [{ name: 'llama3.2:latest', loaded: true }]
  gpuB.models = [{ name: 'llama3.2:latest' }, { name: 'qwen3:0.6b' }]
  gpuC.models = [{ name: 'nomic-embed-text:latest', loaded: true }]
}

beforeAll(async () => {
  for (const f of [gpuA, gpuB, gpuC]) f.start()
  setModels()
  const backends = `gpuA=${gpuA.url},gpuB=${gpuB.url},gpuC=${gpuC.url}`
  ;[fast, slow] = await Promise.all([
    startGateway({ env: { OLLAMA_BACKENDS: backends, DISCOVERY_INTERVAL_S: '1', OLLAMA_CONNECT_TIMEOUT_S: '0.5' } }),
    startGateway({ env: { OLLAMA_BACKENDS: backends, DISCOVERY_INTERVAL_S: '60' } }),
  ])
}, 30_000)
afterAll(async () => {
  await Promise.all([fast?.stop(), slow?.stop()])
  for (const f of [gpuA, gpuB, gpuC]) await f.stop()
}, 30_000)

const chat = (gw: GatewayProcess, model: string, path = '/api/chat', extra: Record<string, string> = {}) =>
  fetch(gw.url + path, { method: 'POST', headers: { ...gw.auth, ...extra }, body: JSON.stringify({ model, messages: [], stream: false }) })
/** A model management call (POST, or DELETE for /api/delete) with a JSON body. */
const manage = (gw: GatewayProcess, path: string, body: string) =>
  fetch(gw.url + path, { method: path === '/api/delete' ? 'DELETE' : 'POST', headers: gw.auth, body })
const count = (f: FakeOllama, path = '/api/chat') => f.received.filter((r) => r.path === path).length
/**
 * A probe of `fake` under way that will answer its lists as they were when asked, 300 ms later (the
 * caller resets `listLagMs`): starts a refresh of every backend and waits until `fake` has been asked.
 * Gives the refresh's answer to come (wrapped: an async function would wait for a promise it returns).
 */
async function probeOut(fake: FakeOllama): Promise<{ refresh: Promise<Response> }> {
  fake.behaviour.listLagMs = 300
  const seen = fake.received.length
  const refresh = fetch(`${slow.url}/admin/backends/refresh`, { method: 'POST', headers: slow.auth })
  while (!fake.received.slice(seen).some((r) => r.path === '/api/tags')) await Bun.sleep(5)
  return { refresh }
}

describe('routing by model (SPEC §4.7)', () => {
  test('requests land only on a backend that has the model', async () => {
    const before = [count(gpuA), count(gpuB), count(gpuC)]
    const qwen = await chat(slow, 'qwen3:0.6b')
    expect(qwen.status).toBe(200)
    expect(qwen.headers.get('x-backend')).toBe('gpuB')
    const embed = await chat(slow, 'nomic-embed-text')
    expect(embed.headers.get('x-backend')).toBe('gpuC')
    expect([count(gpuA), count(gpuB), count(gpuC)]).toEqual([before[0] as number, (before[1] as number) + 1, (before[2] as number) + 1])
  })

  test('a backend with the model loaded is preferred', async () => {
    for (let i = 0; i < 6; i++) {
      const res = await chat(slow, 'llama3.2')
      expect(res.headers.get('x-backend')).toBe('gpuA')
    }
  })

  test('listings merge every backend, each model once; /api/version answers from one', async () => {
    const tags = await (await fetch(`${slow.url}/api/tags`, { headers: slow.auth })).json()
    expect(tags.models.map((m: { name: string }) => m.name).sort()).toEqual(['llama3.2:latest', 'nomic-embed-text:latest', 'qwen3:0.6b'])
    const ps = await (await fetch(`${slow.url}/api/ps`, { headers: slow.auth })).json()
    expect(ps.models.map((m: { name: string }) => m.name).sort()).toEqual(['llama3.2:latest', 'nomic-embed-text:latest'])
    const models = await (await fetch(`${slow.url}/v1/models`, { headers: slow.auth })).json()
    expect(models.object).toBe('list')
    expect(models.data).toHaveLength(3)
    const version = await fetch(`${slow.url}/api/version`, { headers: slow.auth })
    expect((await version.json()).version).toBe('0.13.0')
    const one = await fetch(`${slow.url}/v1/models/qwen3:0.6b`, { headers: slow.auth })
    expect(one.headers.get('x-backend')).toBe('gpuB')
  })
})

describe('discovery (SPEC §4.6)', () => {
  // First in this block: an unknown model re-polls a backend at most once per few seconds.
  test('a model pulled behind the gateway’s back is found by the re-poll before a 404', async () => {
    gpuB.models.push({ name: 'gemma3:1b' })
    const res = await chat(slow, 'gemma3:1b')
    expect(res.status).toBe(200)
    expect(res.headers.get('x-backend')).toBe('gpuB')
  })

  test('a model pulled through the gateway is found at once (that backend is refreshed)', async () => {
    const pull = await fetch(`${slow.url}/api/pull`, {
      method: 'POST',
      headers: { ...slow.auth, 'x-backend': 'gpuC' },
      body: '{"model":"phi4-mini"}',
    })
    expect(pull.headers.get('x-backend')).toBe('gpuC')
    expect((await pull.text()).trim().split('\n').at(-1)).toBe('{"status":"success"}')
    // The first chat right after the pull finds it: it waits for the refresh the pull started.
    const res = await chat(slow, 'phi4-mini')
    expect(res.status).toBe(200)
    expect(res.headers.get('x-backend')).toBe('gpuC')
  })

  test('copy and delete by short names go where the model is and take effect at once (SPEC §4.6)', async () => {
    // phi4-mini was pulled onto gpuC by the test before; Ollama resolves `phi4-mini` to `phi4-mini:latest`.
    // An unknown model first, so that the re-poll before a 404 has just run and will not run again.
    expect((await chat(slow, 'no-such-model')).status).toBe(404)
    // The refresh after the copy is still running when the chat comes.
    gpuC.behaviour.listDelayMs = 300
    const copy = await manage(slow, '/api/copy', '{"source":"phi4-mini","destination":"phi4-copy"}')
    expect(copy.status).toBe(200)
    expect(copy.headers.get('x-backend')).toBe('gpuC')
    const copied = await chat(slow, 'phi4-copy')
    expect(copied.status).toBe(200)
    expect(copied.headers.get('x-backend')).toBe('gpuC')
    gpuC.behaviour.listDelayMs = undefined
    const gone = await manage(slow, '/api/delete', '{"model":"PHI4-COPY"}')
    expect(gone.status).toBe(200)
    expect(gpuC.has('phi4-copy')).toBe(false)
    const after = await chat(slow, 'phi4-copy')
    expect(after.status).toBe(404)
    expect(await after.json()).toEqual({ error: "model 'phi4-copy' not found" })
  })

  test('pull without X-Backend goes to the backend with the most room and says which', async () => {
    const pull = await fetch(`${slow.url}/api/pull`, { method: 'POST', headers: slow.auth, body: '{"model":"smollm2","stream":false}' })
    expect(pull.status).toBe(200)
    const named = pull.headers.get('x-backend') as string
    const fake = { gpuA, gpuB, gpuC }[named] as FakeOllama
    expect(fake.last('/api/pull').json).toEqual({ model: 'smollm2', stream: false })
    const ambiguous = await fetch(`${slow.url}/api/delete`, { method: 'DELETE', headers: slow.auth, body: '{"model":"llama3.2"}' })
    expect(ambiguous.status).toBe(400)
    expect((await ambiguous.json()).error).toBe("model 'llama3.2' is on several backends (gpuA, gpuB); name one in X-Backend")
    const unknownBackend = await fetch(`${slow.url}/api/pull`, {
      method: 'POST',
      headers: { ...slow.auth, 'x-backend': 'gpuZ' },
      body: '{"model":"x"}',
    })
    expect(await unknownBackend.json()).toEqual({ error: "unknown backend 'gpuZ' in X-Backend; configured: gpuA, gpuB, gpuC" })
  })

  test('create from a model goes to the backend that has it, not the roomiest; the new model is found at once', async () => {
    // qwen3:0.6b is only on gpuB, which has the least room; without `from`, create would go to gpuA.
    const res = await manage(slow, '/api/create', '{"model":"qwen3-tuned","from":"QWEN3:0.6b","system":"Be brief.","stream":false}')
    expect(res.status).toBe(200)
    expect(res.headers.get('x-backend')).toBe('gpuB')
    expect(gpuB.last('/api/create').json).toEqual({ model: 'qwen3-tuned', from: 'QWEN3:0.6b', system: 'Be brief.', stream: false })
    const made = await chat(slow, 'qwen3-tuned')
    expect(made.status).toBe(200)
    expect(made.headers.get('x-backend')).toBe('gpuB')
    // A base no backend has: Ollama pulls it while creating, so the usual choice (most room) stands.
    const { backends } = (await (await fetch(`${slow.url}/admin/backends`, { headers: slow.auth })).json()) as {
      backends: Array<{ name: string; disk_bytes: number }>
    }
    const roomiest = backends.reduce((a, b) => (b.disk_bytes < a.disk_bytes ? b : a))
    expect(roomiest.name).not.toBe('gpuB')
    const fresh = await manage(slow, '/api/create', '{"model":"from-registry","from":"granite-base:1b","stream":false}')
    expect(fresh.headers.get('x-backend')).toBe(roomiest.name)
    setModels()
  })

  test('GET /admin/backends shows each backend; POST /admin/backends/refresh polls now', async () => {
    const res = await fetch(`${slow.url}/admin/backends`, { headers: slow.auth })
    const { backends } = await res.json()
    expect(backends.map((b: { name: string }) => b.name)).toEqual(['gpuA', 'gpuB', 'gpuC'])
    expect(backends[0]).toMatchObject({
      health: 'up',
      breaker: 'closed',
      in_flight: 0,
      queued: 0,
      loaded_models: ['registry.ollama.ai/library/llama3.2:latest'],
    })
    gpuA.models.push({ name: 'tinyllama:latest' })
    const refreshed = await (await fetch(`${slow.url}/admin/backends/refresh`, { method: 'POST', headers: slow.auth })).json()
    expect(refreshed.backends[0].models).toContain('registry.ollama.ai/library/tinyllama:latest')
  })

  test('a refresh asked for while a probe is out polls again after it: its answer shows what changed meanwhile', async () => {
    // The probe already out read gpuA's lists before the change, so sharing it would answer the old list.
    try {
      const { refresh: first } = await probeOut(gpuA)
      gpuA.models.push({ name: 'phi4-late:latest' })
      const second = await (await fetch(`${slow.url}/admin/backends/refresh`, { method: 'POST', headers: slow.auth })).json()
      expect(second.backends[0].models).toContain('registry.ollama.ai/library/phi4-late:latest')
      // The first refresh did read the old list: the case above is the race it names.
      expect((await (await first).json()).backends[0].models).not.toContain('registry.ollama.ai/library/phi4-late:latest')
    } finally {
      gpuA.behaviour.listLagMs = undefined
      setModels()
    }
  })

  test('a model pulled while a probe of that backend is out is found by the next chat', async () => {
    try {
      const { refresh: probe } = await probeOut(gpuC)
      const pull = await fetch(`${slow.url}/api/pull`, {
        method: 'POST',
        headers: { ...slow.auth, 'x-backend': 'gpuC' },
        body: '{"model":"granite-late","stream":false}',
      })
      expect(pull.status).toBe(200)
      // The refresh the pull starts runs after the probe that read the lists before it; the chat's look-up
      // before a 404 waits for that refresh, not for the stale probe.
      const res = await chat(slow, 'granite-late')
      expect(res.status).toBe(200)
      expect(res.headers.get('x-backend')).toBe('gpuC')
      await probe
    } finally {
      gpuC.behaviour.listLagMs = undefined
      setModels()
    }
  })

  test('nobody has the model: 404 in both dialects, after one re-poll', async () => {
    const native = await chat(slow, 'no-such-model')
    expect(native.status).toBe(404)
    expect(await native.json()).toEqual({ error: "model 'no-such-model' not found" })
    const openai = await chat(slow, 'no-such-model', '/v1/chat/completions')
    expect(openai.status).toBe(404)
    expect((await openai.json()).error).toMatchObject({
      type: 'not_found_error',
      code: 'model_not_found',
      message: "model 'no-such-model' not found",
    })
  })
})

describe('failures (SPEC §4.7)', () => {
  test('a refused connection before the first byte is retried on another backend, invisibly', async () => {
    const port = gpuA.port
    await gpuA.stop()
    try {
      for (let i = 0; i < 5; i++) {
        const res = await chat(fast, 'llama3.2')
        expect(res.status).toBe(200)
        expect(res.headers.get('x-backend')).toBe('gpuB')
      }
      const { backends } = await (await fetch(`${fast.url}/admin/backends`, { headers: fast.auth })).json()
      expect(['open', 'half_open']).toContain(backends[0].breaker)
    } finally {
      gpuA.start(port)
      setModels()
    }
    // Recovered: after the cooldown a trial request goes to gpuA again and closes the breaker.
    let landed = false
    for (let i = 0; i < 60 && !landed; i++) {
      const res = await chat(fast, 'llama3.2')
      landed = res.headers.get('x-backend') === 'gpuA'
      if (!landed) await Bun.sleep(100)
    }
    expect(landed).toBe(true)
  })

  test('a half-open trial whose client leaves before the answer does not keep the backend out for good', async () => {
    const port = gpuA.port
    await gpuA.stop()
    try {
      // Three refused connections open gpuA's breaker; the requests themselves land on gpuB.
      for (let i = 0; i < 4; i++) expect((await chat(fast, 'llama3.2')).headers.get('x-backend')).toBe('gpuB')
    } finally {
      gpuA.start(port)
      setModels()
    }
    const gpuAState = async () =>
      (await (await fetch(`${fast.url}/admin/backends`, { headers: fast.auth })).json()).backends[0] as { health: string; breaker: string }
    try {
      // gpuA answers slowly now; once it is probed up and its cooldown (1 s) is over, the next chat is the trial.
      gpuA.perModel.set('llama3.2', { firstByteDelayMs: 2000 })
      for (let i = 0; i < 100 && (await gpuAState()).health !== 'up'; i++) await Bun.sleep(50)
      await Bun.sleep(1100)
      const seen = count(gpuA)
      const leaving = new AbortController()
      const trial = fetch(`${fast.url}/api/chat`, {
        method: 'POST',
        headers: fast.auth,
        body: JSON.stringify({ model: 'llama3.2', messages: [], stream: false }),
        signal: leaving.signal,
      }).catch(() => undefined)
      for (let i = 0; i < 100 && count(gpuA) === seen; i++) await Bun.sleep(10)
      expect(count(gpuA)).toBe(seen + 1)
      leaving.abort()
      await trial
    } finally {
      gpuA.perModel.delete('llama3.2')
    }
    // The trial gave no verdict: a later request is the next trial, and gpuA takes requests again.
    let landed = false
    for (let i = 0; i < 30 && !landed; i++) {
      landed = (await chat(fast, 'llama3.2')).headers.get('x-backend') === 'gpuA'
      if (!landed) await Bun.sleep(100)
    }
    expect(landed).toBe(true)
    expect((await gpuAState()).breaker).toBe('closed')
  })

  test('a failure after the first byte ends the stream with an error line and is not retried', async () => {
    gpuA.perModel.set('llama3.2', { breakAfter: 1 })
    try {
      const before = count(gpuB)
      const res = await fetch(`${fast.url}/api/chat`, { method: 'POST', headers: fast.auth, body: '{"model":"llama3.2","messages":[]}' })
      expect(res.headers.get('x-backend')).toBe('gpuA')
      const lines = (await res.text())
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
      expect(typeof lines.at(-1).error).toBe('string')
      expect(count(gpuB)).toBe(before)
    } finally {
      gpuA.perModel.clear()
    }
  })

  test('a non-streamed answer that breaks off midway is a 502 with the reason, and is not retried', async () => {
    gpuA.perModel.set('llama3.2', { breakWholeAfter: 20 })
    try {
      const before = count(gpuB)
      const res = await chat(fast, 'llama3.2')
      expect(res.status).toBe(502)
      expect((await res.json()).error).toContain("backend 'gpuA' broke off its answer")
      expect(count(gpuB)).toBe(before)
    } finally {
      gpuA.perModel.clear()
    }
  })

  test("Ollama's own 503 before the first byte moves to the next backend", async () => {
    gpuA.perModel.set('llama3.2', { failStatus: 503 })
    try {
      const res = await chat(fast, 'llama3.2')
      expect(res.status).toBe(200)
      expect(res.headers.get('x-backend')).toBe('gpuB')
    } finally {
      gpuA.perModel.clear()
    }
  })

  test('backends have the model but none is reachable: 503 in both dialects', async () => {
    const port = gpuC.port
    await gpuC.stop()
    try {
      await fast.waitForLog((l) => l.msg === 'backend down' && l.backend === 'gpuC', 5000)
      const native = await chat(fast, 'nomic-embed-text')
      expect(native.status).toBe(503)
      expect(Number(native.headers.get('retry-after'))).toBeGreaterThan(0)
      expect((await native.json()).error).toContain("model 'nomic-embed-text' is on gpuC, but no such backend is reachable now")
      const openai = await chat(fast, 'nomic-embed-text', '/v1/embeddings')
      expect(openai.status).toBe(503)
      expect((await openai.json()).error.type).toBe('api_error')
    } finally {
      gpuC.start(port)
      setModels()
    }
  })
})

describe('health (SPEC §4.6)', () => {
  test('a backend that failed a probe is probed again within seconds, not at the next 60 s poll', async () => {
    const port = gpuC.port
    const seen = slow.logs.length
    const after = (msg: string) => (l: Record<string, unknown>) => slow.logs.indexOf(l) >= seen && l.msg === msg && l.backend === 'gpuC'
    await gpuC.stop()
    try {
      // A model no backend has re-polls every backend (at most every 3 s each): gpuC's probe fails.
      for (let i = 0; i < 8 && !slow.logs.some(after('backend down')); i++) {
        await (await chat(slow, 'nowhere:1b')).arrayBuffer()
        await Bun.sleep(500)
      }
      await slow.waitForLog(after('backend down'), 1000)
    } finally {
      gpuC.start(port)
      setModels()
    }
    // Back within the 1 s retry (2 s if that one came too early), where the next regular poll is a minute away.
    await slow.waitForLog(after('backend up'), 4000)
    const res = await chat(slow, 'nomic-embed-text')
    expect(res.status).toBe(200)
    expect(res.headers.get('x-backend')).toBe('gpuC')
  })
})

describe('a gateway that stood still (SPEC §4.6)', () => {
  test('a probe whose timeout fired late because the process was paused is taken again, and the backend stays up', async () => {
    const only = new FakeOllama().start()
    const gw = await startGateway({ env: { OLLAMA_BASE_URL: only.url, DISCOVERY_INTERVAL_S: '60', OLLAMA_CONNECT_TIMEOUT_S: '1' } })
    try {
      // An unknown model re-polls the backend; its lists take 300 ms, and the gateway is paused for 2.5 s
      // meanwhile (SIGSTOP, as a paused container or a suspended machine): on waking, the probe's 1 s
      // timeout is long past while the answer waits on its socket.
      only.behaviour.listDelayMs = 300
      const unknown = chat(gw, 'nowhere:1b')
      await Bun.sleep(100)
      gw.proc.kill('SIGSTOP')
      await Bun.sleep(2500)
      gw.proc.kill('SIGCONT')
      expect((await unknown).status).toBe(404)
      const res = await chat(gw, 'llama3.2')
      expect(res.status).toBe(200)
      await res.arrayBuffer()
      expect(gw.logs.filter((l) => l.msg === 'backend down')).toEqual([])
    } finally {
      await gw.stop()
      await only.stop()
    }
  }, 20_000)
})

describe('fair admission (SPEC §4.7)', () => {
  test('with 2 slots, a key sending 5 requests finishes before the backlog of a key sending 50 drains', async () => {
    const only = new FakeOllama().start()
    only.behaviour.chunks = 2
    only.behaviour.firstByteDelayMs = 40
    const gw = await startGateway({ env: { OLLAMA_BASE_URL: only.url, OLLAMA_MAX_CONNECTIONS: '2' } })
    try {
      const mk = async (name: string) =>
        (
          await (
            await fetch(`${gw.url}/admin/keys`, {
              method: 'POST',
              headers: { ...gw.auth, 'content-type': 'application/json' },
              body: JSON.stringify({ name }),
            })
          ).json()
        ).key as string
      const [greedy, modest] = [await mk('greedy'), await mk('modest')]
      // Warm both keys so the burst below is about queueing, not first-use verification.
      for (const key of [greedy, modest])
        await (await fetch(`${gw.url}/api/tags`, { headers: { authorization: `Bearer ${key}` } })).arrayBuffer()
      const order: string[] = []
      const send = (key: string, tag: string) =>
        fetch(`${gw.url}/api/chat`, {
          method: 'POST',
          headers: { authorization: `Bearer ${key}` },
          body: '{"model":"llama3.2","messages":[],"stream":false}',
        }).then(async (r) => {
          await r.arrayBuffer()
          expect(r.status).toBe(200)
          order.push(tag)
        })
      const flood = Array.from({ length: 50 }, () => send(greedy, 'greedy'))
      await Bun.sleep(100) // the flood is queued first
      const few = Array.from({ length: 5 }, () => send(modest, 'modest'))
      await Promise.all([...flood, ...few])
      const lastModest = order.lastIndexOf('modest')
      const greedyAfter = order.slice(lastModest + 1).filter((t) => t === 'greedy').length
      // Round robin between keys: the five modest requests interleave with the flood's backlog.
      expect(greedyAfter).toBeGreaterThanOrEqual(25)
      expect(order).toHaveLength(55)
    } finally {
      await gw.stop()
      await only.stop()
    }
  })
})

describe('clients that leave while queued (SPEC §4.7, §4.8)', () => {
  test('leave the queue at once: recorded as aborted, never sent upstream, the queue empty again', async () => {
    const only = new FakeOllama().start()
    only.perModel.set('llama3.2', { firstByteDelayMs: 1500 })
    const gw = await startGateway({ env: { OLLAMA_BASE_URL: only.url, OLLAMA_MAX_CONNECTIONS: '1' } })
    try {
      const chat = (content: string, signal?: AbortSignal) =>
        fetch(`${gw.url}/api/chat`, {
          method: 'POST',
          headers: gw.auth,
          body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content }], stream: false }),
          ...(signal ? { signal } : {}),
        })
      // One request holds the only slot for 1.5 s; five more queue behind it and give up after 200 ms.
      const holder = chat('holder')
      await Bun.sleep(100)
      const leavers = Array.from({ length: 5 }, (_, i) => chat(`leaver ${i}`, AbortSignal.timeout(200)).catch((err) => err))
      await Bun.sleep(50)
      const backends = async () => (await (await fetch(`${gw.url}/admin/backends`, { headers: gw.auth })).json()).backends[0]
      expect(await backends()).toMatchObject({ in_flight: 1, queued: 5 })
      for (const gone of await Promise.all(leavers)) expect((gone as Error).name).toBe('TimeoutError')
      // While the holder still runs, the queue is empty again and the five are in the audit log.
      let aborted: Array<Record<string, unknown>> = []
      for (let i = 0; i < 40 && aborted.length < 5; i++) {
        await Bun.sleep(25)
        const page = await (await fetch(`${gw.url}/admin/audit?outcome=aborted`, { headers: gw.auth })).json()
        aborted = page.items
      }
      expect(await backends()).toMatchObject({ in_flight: 1, queued: 0 })
      expect(aborted).toHaveLength(5)
      for (const event of aborted) {
        expect(event).toMatchObject({ status: 499, outcome: 'aborted', path: '/api/chat', error: 'client closed the connection' })
        expect(event.backend).toBeNull()
      }
      const held = await holder
      expect(held.status).toBe(200)
      await held.arrayBuffer()
      // Only the holder reached the backend.
      expect(only.received.filter((r) => r.path === '/api/chat').map((r) => r.json?.messages)).toEqual([
        [{ role: 'user', content: 'holder' }],
      ])
    } finally {
      await gw.stop()
      await only.stop()
    }
  })
})

describe('a breaker that opens while requests wait for a slot (SPEC §4.7)', () => {
  test('the requests still queued are not sent to the failing backend: 503 with Retry-After, in each dialect', async () => {
    const only = new FakeOllama().start()
    // Each chat holds the only slot for 200 ms, then fails with Ollama's own 503.
    only.perModel.set('llama3.2', { failStatus: 503, firstByteDelayMs: 200 })
    const gw = await startGateway({ env: { OLLAMA_BASE_URL: only.url, OLLAMA_MAX_CONNECTIONS: '1' } })
    try {
      // Five requests, chosen for the backend while its breaker was closed; four of them queue.
      const sent = [chat(gw, 'llama3.2'), chat(gw, 'llama3.2'), chat(gw, 'llama3.2')]
      await Bun.sleep(50)
      const queued = [chat(gw, 'llama3.2'), chat(gw, 'llama3.2', '/v1/chat/completions')]
      // The first three fail in turn, and the third failure opens the breaker.
      for (const res of await Promise.all(sent)) {
        expect(res.status).toBe(503)
        expect((await res.json()).error).toContain('server busy')
      }
      // The two still queued are refused by the gateway when their turn comes, never sent.
      const [native, openai] = (await Promise.all(queued)) as [Response, Response]
      for (const res of [native, openai]) {
        expect(res.status).toBe(503)
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0)
      }
      expect((await native.json()).error).toBe("backend 'default' is not taking requests now: its circuit breaker is open; retry shortly")
      expect((await openai.json()).error).toMatchObject({ type: 'api_error', message: expect.stringContaining('circuit breaker is open') })
      expect(count(only) + count(only, '/v1/chat/completions')).toBe(3)
      expect((await (await fetch(`${gw.url}/admin/backends`, { headers: gw.auth })).json()).backends[0]).toMatchObject({
        breaker: 'open',
        in_flight: 0,
        queued: 0,
      })
    } finally {
      await gw.stop()
      await only.stop()
    }
  })
})

describe('upstream credentials across a retry (SPEC §3.2, §4.7)', () => {
  test('each backend tried gets its own token, and the client key reaches neither', async () => {
    const a = new FakeOllama()
    const b = new FakeOllama()
    for (const f of [a, b]) {
      f.start()
      f.models = [{ name: 'llama3.2:latest' }]
    }
    const backends = JSON.stringify([
      { name: 'a', url: a.url, token: 'token-a' },
      { name: 'b', url: b.url, token: 'token-b' },
    ])
    const gw = await startGateway({ env: { OLLAMA_BACKENDS: backends } })
    try {
      a.perModel.set('llama3.2', { failStatus: 503 })
      b.perModel.set('llama3.2', { failStatus: 503 })
      // Both refuse, so whichever the rotation tries first, both have been asked.
      expect((await chat(gw, 'llama3.2')).status).toBe(503)
      a.perModel.clear()
      b.perModel.clear()
      const got = [a, b].map((f) => f.received.filter((r) => r.path === '/api/chat').map((r) => r.headers.authorization))
      expect(got).toEqual([['Bearer token-a'], ['Bearer token-b']])
    } finally {
      await gw.stop()
      for (const f of [a, b]) await f.stop()
    }
  }, 30_000)
})
