// SPEC §9: the real `ollama` and `openai` npm clients, pointed at the gateway, get exactly what the
// fake upstream sent.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test'
import { Ollama } from 'ollama'
import OpenAI from 'openai'
import { FakeOllama } from './helpers/fake-ollama.ts'
import { type GatewayProcess, startGateway } from './helpers/gateway.ts'

const fake = new FakeOllama()
let gw: GatewayProcess
let ollama: Ollama
let openai: OpenAI

beforeAll(async () => {
  fake.start()
  gw = await startGateway({ env: { OLLAMA_BASE_URL: fake.url } })
  ollama = new Ollama({ host: gw.url, headers: gw.auth })
  openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.adminKey, maxRetries: 0 })
}, 30_000)
afterAll(async () => {
  await gw.stop()
  await fake.stop()
}, 30_000)
beforeEach(() => fake.reset())

const sentLines = (path: string) =>
  fake
    .sentText(fake.last(path))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))

describe('ollama-js', () => {
  test('chat, streamed: every part equals the upstream line, unknown fields included', async () => {
    const parts = []
    for await (const part of await ollama.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true }))
      parts.push(part)
    expect(parts).toEqual(sentLines('/api/chat'))
    expect(parts.at(-1)).toMatchObject({ done: true, eval_count: 3, future_field: { kept: true } })
  })

  test('chat, not streamed', async () => {
    const res = await ollama.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] })
    expect(res).toEqual(JSON.parse(fake.sentText(fake.last('/api/chat'))))
    expect(res.message.content).toBe('w0 w1 w2 ')
  })

  test('generate, streamed and not', async () => {
    const parts = []
    for await (const part of await ollama.generate({ model: 'llama3.2', prompt: 'x', stream: true })) parts.push(part)
    expect(parts).toEqual(sentLines('/api/generate'))
    const whole = await ollama.generate({ model: 'llama3.2', prompt: 'x' })
    expect(whole.response).toBe('w0 w1 w2 ')
  })

  test('list, show, embed, version', async () => {
    const list = await ollama.list()
    expect(list.models.map((m) => m.name)).toEqual(['llama3.2:latest', 'nomic-embed-text:latest'])
    const show = await ollama.show({ model: 'llama3.2' })
    expect(show.details.family).toBe('llama')
    const embed = await ollama.embed({ model: 'nomic-embed-text', input: ['a', 'b'] })
    expect(embed.embeddings).toEqual([[0.1, 0.2, 0.3]])
    expect(fake.last('/api/embed').json).toEqual({ model: 'nomic-embed-text', input: ['a', 'b'] })
    expect((await ollama.ps()).models.map((m) => m.name)).toEqual(['llama3.2:latest'])
  })

  test('pull progress', async () => {
    const statuses = []
    for await (const p of await ollama.pull({ model: 'qwen3:0.6b', stream: true })) statuses.push(p.status)
    expect(statuses[0]).toBe('pulling manifest')
    expect(statuses.at(-1)).toBe('success')
    expect(statuses).toEqual(sentLines('/api/pull').map((l) => l.status))
  })

  test('abort stops the stream and the upstream generation', async () => {
    fake.behaviour.chunks = 100
    fake.behaviour.chunkDelayMs = 50
    const stream = await ollama.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true })
    let got = 0
    await expect(
      (async () => {
        for await (const _ of stream) {
          if (++got === 2) stream.abort()
        }
      })(),
    ).rejects.toThrow()
    const record = fake.last('/api/chat')
    for (let i = 0; i < 100 && !record.aborted; i++) await Bun.sleep(20)
    expect(record.aborted).toBe(true)
    expect(record.sent.length).toBeLessThan(100)
  })

  test('an upstream error mid-stream makes the client throw, as with Ollama itself', async () => {
    fake.behaviour.errorAfter = 1
    const run = async () => {
      for await (const _ of await ollama.chat({ model: 'llama3.2', messages: [], stream: true })) {
      }
    }
    await expect(run()).rejects.toThrow('fake runtime error')
  })
})

describe('openai SDK', () => {
  test('chat completions, not streamed', async () => {
    const res = await openai.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] })
    expect(res).toEqual(JSON.parse(fake.sentText(fake.last('/v1/chat/completions'))))
    expect(res.usage?.total_tokens).toBe(10)
  })

  test('chat completions, streamed: every chunk equals the upstream event', async () => {
    const stream = await openai.chat.completions.create({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true })
    const chunks = []
    for await (const chunk of stream) chunks.push(chunk)
    const sent = fake
      .sentText(fake.last('/v1/chat/completions'))
      .split('\n\n')
      .filter((e) => e.startsWith('data: {') && !e.includes('"choices":[]')) // the usage chunk the gateway asked for
      .map((e) => JSON.parse(e.slice(6)))
    expect(chunks).toEqual(sent)
    expect(chunks[0]?.choices[0]?.delta.role).toBe('assistant')
  })

  test('embeddings', async () => {
    const res = await openai.embeddings.create({ model: 'nomic-embed-text', input: 'hello' })
    expect(res.data[0]?.embedding.map((v) => Math.round(v * 10) / 10)).toEqual([0.1, 0.2, 0.3])
    expect(res.usage.prompt_tokens).toBe(7)
  })

  test('models list and retrieve', async () => {
    const page = await openai.models.list()
    expect(page.data.map((m) => m.id)).toEqual(['llama3.2:latest', 'nomic-embed-text:latest'])
    const one = await openai.models.retrieve('llama3.2:latest')
    expect(one.id).toBe('llama3.2:latest')
  })

  test('a gateway error surfaces as the SDK error class for its status', async () => {
    // The SDK's APIPromise is a thenable, not a Promise: wrap it so `rejects` sees the rejection.
    const attempt = (model: string) => (async () => await openai.chat.completions.create({ model, messages: [] }))()
    await expect(attempt('')).rejects.toBeInstanceOf(OpenAI.BadRequestError)
    await expect(attempt('missing')).rejects.toBeInstanceOf(OpenAI.NotFoundError)
  })
})
