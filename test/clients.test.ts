// SPEC §9: the real `ollama` and `openai` npm clients (and Anthropic's, for `/v1/messages`), pointed at
// the gateway, get exactly what the fake upstream sent.

import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'bun:test'
import Anthropic from '@anthropic-ai/sdk'
import { Ollama } from 'ollama'
import OpenAI from 'openai'
import { FakeOllama } from './helpers/fake-ollama.ts'
import { type GatewayProcess, startGateway } from './helpers/gateway.ts'

const fake = new FakeOllama()
let gw: GatewayProcess
let ollama: Ollama
let openai: OpenAI
let anthropic: Anthropic

beforeAll(async () => {
  fake.start()
  gw = await startGateway({ env: { OLLAMA_BASE_URL: fake.url } })
  ollama = new Ollama({ host: gw.url, headers: gw.auth })
  openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: gw.adminKey, maxRetries: 0 })
  // UPSTREAM §4: Anthropic-style clients send the key as `x-api-key`.
  anthropic = new Anthropic({ baseURL: gw.url, apiKey: gw.adminKey, maxRetries: 0 })
}, 30_000)
afterAll(async () => {
  await gw.stop()
  await fake.stop()
}, 30_000)
beforeEach(() => fake.reset())

/** The data of each SSE event the fake sent for the last request to `path`, parsed. */
const sentEvents = (path: string) =>
  fake
    .sentText(fake.last(path))
    .split('\n\n')
    .filter(Boolean)
    .map((e) => JSON.parse(e.slice(e.indexOf('data: ') + 6)))
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
    expect(embed.embeddings).toEqual([
      [0.1, 0.2, 0.3],
      [0.1, 0.2, 0.3],
    ])
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

  test('responses, streamed: every event as upstream sent it; a stream the backend breaks off makes the SDK throw', async () => {
    const events = []
    for await (const event of await openai.responses.create({ model: 'llama3.2', input: 'hi', stream: true })) events.push(event)
    expect(events).toEqual(sentEvents('/v1/responses'))
    expect(events.at(-1)?.type).toBe('response.completed')
    fake.behaviour.breakAfter = 2
    const run = async () => {
      for await (const _ of await openai.responses.create({ model: 'llama3.2', input: 'hi', stream: true })) {
      }
    }
    await expect(run()).rejects.toThrow('upstream connection failed mid-stream')
  })

  test('a gateway error surfaces as the SDK error class for its status', async () => {
    // The SDK's APIPromise is a thenable, not a Promise: wrap it so `rejects` sees the rejection.
    const attempt = (model: string) => (async () => await openai.chat.completions.create({ model, messages: [] }))()
    await expect(attempt('')).rejects.toBeInstanceOf(OpenAI.BadRequestError)
    await expect(attempt('missing')).rejects.toBeInstanceOf(OpenAI.NotFoundError)
  })
})

describe('Anthropic SDK on /v1/messages (UPSTREAM §1, §4)', () => {
  const ask = { model: 'llama3.2', max_tokens: 64, messages: [{ role: 'user' as const, content: 'hi' }] }
  // The SDK's APIPromise is a thenable, not a Promise: wrap it so `rejects` sees the rejection.
  const attempt = (client: Anthropic, model: string) => (async () => await client.messages.create({ ...ask, model }))()

  test('a message, not streamed: the upstream answer, the key not forwarded', async () => {
    const res = await anthropic.messages.create(ask)
    expect(res).toEqual(JSON.parse(fake.sentText(fake.last('/v1/messages'))))
    expect(res.usage).toMatchObject({ input_tokens: 7, output_tokens: 3 })
    expect(fake.last('/v1/messages').headers['x-api-key']).toBeUndefined()
  })

  test('streamed: every event equals the upstream event', async () => {
    const events = []
    for await (const event of await anthropic.messages.create({ ...ask, stream: true })) events.push(event)
    expect(events).toEqual(sentEvents('/v1/messages'))
    expect(events.map((e) => e.type)).toContain('message_stop')
    // The SDK's own accumulator builds the whole message from the relayed events.
    const message = await anthropic.messages.stream(ask).finalMessage()
    expect(message.content.map((block) => (block.type === 'text' ? block.text : block.type))).toEqual(['w0 w1 w2 '])
    expect(message.usage).toMatchObject({ input_tokens: 7, output_tokens: 3 })
  })

  test("a key over its rpm gets Anthropic's rate_limit_error with Retry-After", async () => {
    const res = await fetch(`${gw.url}/admin/keys`, {
      method: 'POST',
      headers: gw.auth,
      body: JSON.stringify({ name: 'anthropic-limited', limits: { rpm: 1 } }),
    })
    const limited = new Anthropic({ baseURL: gw.url, apiKey: (await res.json()).key, maxRetries: 0 })
    // Limits count in fixed minutes: both requests must fall in one.
    while (new Date().getSeconds() >= 58) await Bun.sleep(250)
    await limited.messages.create(ask)
    const refused = await (async () => await limited.messages.create(ask))().catch((e: unknown) => e)
    expect(refused).toBeInstanceOf(Anthropic.RateLimitError)
    const err = refused as InstanceType<typeof Anthropic.RateLimitError>
    expect(err.error).toMatchObject({ type: 'error', error: { type: 'rate_limit_error' } })
    expect(Number(err.headers?.get('retry-after'))).toBeGreaterThan(0)
  })

  test("the gateway's errors are Anthropic's shape: the SDK raises the class for the status, with the message", async () => {
    const missing = await attempt(anthropic, 'missing').catch((e: unknown) => e)
    expect(missing).toBeInstanceOf(Anthropic.NotFoundError)
    expect((missing as InstanceType<typeof Anthropic.NotFoundError>).message).toContain("model 'missing' not found")
    expect((missing as InstanceType<typeof Anthropic.NotFoundError>).error).toMatchObject({
      type: 'error',
      error: { type: 'not_found_error', message: "model 'missing' not found" },
    })
    const stranger = new Anthropic({ baseURL: gw.url, apiKey: 'nnz_AAAAAAAAAAAA_not-a-key', maxRetries: 0 })
    const denied = await attempt(stranger, 'llama3.2').catch((e: unknown) => e)
    expect(denied).toBeInstanceOf(Anthropic.AuthenticationError)
    expect((denied as InstanceType<typeof Anthropic.AuthenticationError>).error).toMatchObject({
      error: { type: 'authentication_error' },
    })
  })

  test("an upstream error event mid-stream makes the SDK throw, as with Ollama's own", async () => {
    fake.behaviour.errorAfter = 3
    const run = async () => {
      for await (const _ of await anthropic.messages.create({ ...ask, stream: true })) {
      }
    }
    await expect(run()).rejects.toThrow('fake runtime error')
  })

  test("a stream the backend breaks off: the gateway's error event makes the SDK throw, not end quietly", async () => {
    // The SDK acts only on named events; a bare `data:` error line would be skipped as a stream's end.
    fake.behaviour.breakAfter = 3
    const seen: string[] = []
    const run = async () => {
      for await (const event of await anthropic.messages.create({ ...ask, stream: true })) seen.push(event.type)
    }
    await expect(run()).rejects.toThrow('upstream connection failed mid-stream')
    expect(seen).toEqual(['message_start', 'content_block_start', 'content_block_delta'])
  })
})
