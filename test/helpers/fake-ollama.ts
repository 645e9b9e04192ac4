// A fake Ollama (SPEC §9): a real HTTP server that speaks UPSTREAM §1-3 — NDJSON and SSE streams with
// delays, errors before and during streams, slow first bytes, tags/ps/version, blobs, pull progress.
// It records what it received and what it sent so tests can assert byte-exact forwarding.
import { createHash } from 'node:crypto'
import { normalizeModel } from '../../src/backends/model-name.ts'

export interface Behaviour {
  /** Content chunks before the final line. */
  chunks: number
  chunkDelayMs: number
  firstByteDelayMs: number
  /** Answer this status with an Ollama error body instead of streaming (after `firstByteDelayMs`). */
  failStatus?: number
  /** Break the connection after this many chunks (no final line). */
  breakAfter?: number
  /** A non-streamed answer: send this many bytes of it, then break the connection. */
  breakWholeAfter?: number
  /** Send an `{"error":...}` line after this many chunks, as Ollama does mid-stream. */
  errorAfter?: number
  /** Compress the response body with gzip. */
  gzip?: boolean
  /** Label a streamed body with this content-encoding, bytes unchanged (a coding nobody decodes). */
  encoding?: string
  promptTokens: number
  /** Send the last line in two writes, split at this byte offset (lines split across network reads). */
  splitFinalAt?: number
  /** Delay the model lists (`/api/tags`, `/api/ps`) by this long: a discovery probe still in flight. */
  listDelayMs?: number
  /**
   * Answer the model lists as they were when the request came, this much later: a probe that was sent
   * before a change and answers after it (Ollama reads its lists as a request arrives).
   */
  listLagMs?: number
  /** Benchmarks: stamp each streamed line with `"sent_at":<epoch ms>` at the moment it is written. */
  stamp?: boolean
}

export interface ModelInfo {
  name: string
  loaded?: boolean
}

export interface Received {
  id: number
  method: string
  path: string
  search: string
  headers: Record<string, string>
  body: Uint8Array
  json?: Record<string, unknown>
  /** Bytes the fake wrote back, filled as it sends. */
  sent: Uint8Array[]
  aborted: boolean
  completed: boolean
}

const DEFAULTS: Behaviour = { chunks: 3, chunkDelayMs: 0, firstByteDelayMs: 0, promptTokens: 7 }
const enc = new TextEncoder()

export class FakeOllama {
  readonly received: Received[] = []
  behaviour: Behaviour = { ...DEFAULTS }
  readonly perModel = new Map<string, Partial<Behaviour>>()
  models: ModelInfo[] = defaultModels()
  version = '0.13.0'
  readonly blobs = new Map<string, number>()
  private server?: ReturnType<typeof Bun.serve>
  private seq = 0

  constructor(private readonly options: { record?: boolean } = {}) {}

  get url(): string {
    return `http://127.0.0.1:${this.server?.port}`
  }
  get port(): number {
    return this.server?.port ?? 0
  }

  start(port = 0): this {
    this.server = Bun.serve({ hostname: '127.0.0.1', port, idleTimeout: 0, fetch: (req) => this.handle(req) })
    return this
  }

  async stop(): Promise<void> {
    await this.server?.stop(true)
  }

  reset(): void {
    this.received.length = 0
    this.behaviour = { ...DEFAULTS }
    this.perModel.clear()
    this.models = defaultModels()
  }

  last(path?: string): Received {
    const list = path ? this.received.filter((r) => r.path === path) : this.received
    const found = list[list.length - 1]
    if (!found) throw new Error(`fake ollama received no request${path ? ` for ${path}` : ''}`)
    return found
  }

  /** Everything the fake sent for a request, as text. */
  sentText(r: Received): string {
    return Buffer.concat(r.sent).toString('utf8')
  }

  /** Ollama resolves names the way UPSTREAM §5 says: `llama3`, `library/llama3:latest` are one model. */
  has(model: string): boolean {
    return this.indexOf(model) !== -1
  }

  private indexOf(model: string): number {
    const wanted = normalizeModel(model)
    return this.models.findIndex((m) => normalizeModel(m.name) === wanted)
  }

  private behaviourFor(model: unknown): Behaviour {
    return { ...this.behaviour, ...(typeof model === 'string' ? this.perModel.get(model) : undefined) }
  }

  private async handle(req: Request): Promise<Response> {
    const url = new URL(req.url)
    const body = new Uint8Array(await (url.pathname.startsWith('/api/blobs/') ? Promise.resolve(new ArrayBuffer(0)) : req.arrayBuffer()))
    const headers: Record<string, string> = {}
    req.headers.forEach((v, k) => {
      headers[k] = v
    })
    const record: Received = {
      id: ++this.seq,
      method: req.method,
      path: url.pathname,
      search: url.search,
      headers,
      body,
      sent: [],
      aborted: false,
      completed: false,
    }
    if (body.byteLength > 0) {
      try {
        record.json = JSON.parse(new TextDecoder().decode(body))
      } catch {}
    }
    if (this.options.record !== false) this.received.push(record)
    req.signal.addEventListener('abort', () => {
      if (!record.completed) record.aborted = true
    })
    return this.route(req, url, record)
  }

  private async route(req: Request, url: URL, r: Received): Promise<Response> {
    const p = url.pathname
    const json = r.json ?? {}
    if (p === '/' && (req.method === 'GET' || req.method === 'HEAD')) return new Response('Ollama is running')
    if (p === '/api/version') return Response.json({ version: this.version })
    if (p === '/api/tags' || p === '/api/ps') {
      const { listDelayMs, listLagMs } = this.behaviour
      if (listDelayMs) await Bun.sleep(listDelayMs)
      const models =
        p === '/api/tags' ? this.models.map((m) => tagEntry(m.name)) : this.models.filter((m) => m.loaded).map((m) => psEntry(m.name))
      if (listLagMs) await Bun.sleep(listLagMs)
      return Response.json({ models })
    }
    if (p.startsWith('/api/blobs/')) return this.blob(req, p.slice('/api/blobs/'.length), r)
    if (p === '/v1/models') {
      return Response.json({
        object: 'list',
        data: this.models.map((m) => ({ id: m.name, object: 'model', created: 1700000000, owned_by: 'library' })),
      })
    }
    if (p.startsWith('/v1/models/')) {
      const id = decodeURIComponent(p.slice('/v1/models/'.length))
      // As Ollama's retrieve: the name resolved as for /api/show, the id echoed as asked.
      if (!this.has(id)) return openaiError(404, `model "${id}" not found`)
      return Response.json({ id, object: 'model', created: 1700000000, owned_by: 'library' })
    }

    const model = (json.model ?? json.name) as string | undefined
    const b = this.behaviourFor(model)
    if (b.failStatus) {
      if (b.firstByteDelayMs) await Bun.sleep(b.firstByteDelayMs)
      return errorIn(
        p,
        b.failStatus,
        !p.startsWith('/v1/') && b.failStatus === 503
          ? 'server busy, please try again.  maximum pending requests exceeded'
          : 'fake failure',
      )
    }
    if (
      [
        '/api/generate',
        '/api/chat',
        '/api/embed',
        '/api/embeddings',
        '/api/show',
        '/v1/chat/completions',
        '/v1/completions',
        '/v1/embeddings',
        '/v1/responses',
        '/v1/messages',
      ].includes(p)
    ) {
      if (!model) return errorIn(p, 400, 'model is required')
      if (!this.has(model)) {
        return errorIn(p, 404, p.startsWith('/v1/') ? `model "${model}" not found, try pulling it first` : `model '${model}' not found`)
      }
    }
    switch (p) {
      case '/api/generate':
      case '/api/chat': {
        const lines = ndjsonLines(p, model as string, b)
        return json.stream === false
          ? this.whole(r, lines[lines.length - 1] as string, b, 'application/json; charset=utf-8', mergeFinal(p, lines))
          : this.stream(r, lines, b, 'application/x-ndjson')
      }
      case '/api/embed':
        return this.json(r, b, {
          model,
          // One vector per input, as Ollama answers.
          embeddings: (Array.isArray(json.input) ? json.input : [json.input]).map(() => [0.1, 0.2, 0.3]),
          total_duration: 1000,
          load_duration: 10,
          prompt_eval_count: b.promptTokens,
        })
      case '/api/embeddings':
        return this.json(r, b, { embedding: [0.1, 0.2, 0.3] })
      case '/api/show':
        return this.json(r, b, {
          modelfile: '# fake',
          parameters: 'stop "<|eot|>"',
          template: '{{ .Prompt }}',
          details: details(),
          model_info: { 'general.architecture': 'llama' },
          capabilities: ['completion'],
        })
      case '/api/pull':
      case '/api/push':
      case '/api/create': {
        const lines = progressLines(b)
        // A pull or a create adds the model (Ollama pulls a create's missing `from` from the registry first).
        if (p !== '/api/push' && model && !this.has(model)) this.models.push({ name: model.includes(':') ? model : `${model}:latest` })
        return json.stream === false ? this.json(r, b, { status: 'success' }) : this.stream(r, lines, b, 'application/x-ndjson')
      }
      case '/api/copy': {
        if (typeof json.source !== 'string' || typeof json.destination !== 'string' || !json.source || !json.destination)
          return ollamaError(400, 'source and destination are required')
        if (!this.has(json.source)) return ollamaError(404, `model '${json.source}' not found`)
        const destination = json.destination.includes(':') ? json.destination : `${json.destination}:latest`
        if (!this.has(destination)) this.models.push({ name: destination })
        return new Response(null, { status: 200 })
      }
      case '/api/delete': {
        const i = typeof model === 'string' ? this.indexOf(model) : -1
        if (i === -1) return ollamaError(404, `model '${model}' not found`)
        this.models.splice(i, 1)
        return new Response(null, { status: 200 })
      }
      case '/v1/chat/completions':
      case '/v1/completions': {
        const chat = p === '/v1/chat/completions'
        // Ollama's JSON decoding refuses a stream_options that is not an object (or null).
        const options = json.stream_options
        if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options)))
          return errorIn(
            p,
            400,
            `json: cannot unmarshal ${Array.isArray(options) ? 'array' : typeof options} into Go struct field stream_options of type openai.StreamOptions`,
          )
        if (json.stream === true) {
          const includeUsage = (json.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true
          return this.stream(r, sseEvents(chat, model as string, b, includeUsage), b, 'text/event-stream')
        }
        return this.json(r, b, openaiWhole(chat, model as string, b))
      }
      case '/v1/embeddings':
        return this.json(r, b, {
          object: 'list',
          data: [{ object: 'embedding', embedding: embeddingValue([0.1, 0.2, 0.3], json.encoding_format), index: 0 }],
          model,
          usage: { prompt_tokens: b.promptTokens, total_tokens: b.promptTokens },
        })
      case '/v1/responses':
        return this.stream(r, responsesEvents(model as string, b), b, 'text/event-stream')
      case '/v1/messages':
        if (json.stream === true) return this.stream(r, anthropicEvents(model as string, b), b, 'text/event-stream')
        return this.json(r, b, {
          id: 'msg_1',
          type: 'message',
          role: 'assistant',
          model,
          content: [{ type: 'text', text: Array.from({ length: b.chunks }, (_, i) => `w${i} `).join('') }],
          stop_reason: 'end_turn',
          usage: { input_tokens: b.promptTokens, output_tokens: b.chunks },
        })
    }
    return ollamaError(404, '404 page not found')
  }

  private async blob(req: Request, digest: string, r: Received): Promise<Response> {
    if (req.method === 'HEAD') return new Response(null, { status: this.blobs.has(digest) ? 200 : 404 })
    const hash = createHash('sha256')
    let size = 0
    for await (const chunk of req.body ?? new ReadableStream<Uint8Array>()) {
      hash.update(chunk)
      size += chunk.byteLength
    }
    r.completed = true
    if (`sha256:${hash.digest('hex')}` !== digest) return ollamaError(400, 'digest mismatch')
    if (this.blobs.has(digest)) return new Response(null, { status: 200 })
    this.blobs.set(digest, size)
    return new Response(null, { status: 201 })
  }

  private async json(r: Received, b: Behaviour, value: unknown): Promise<Response> {
    return this.whole(r, JSON.stringify(value), b, 'application/json; charset=utf-8')
  }

  private async whole(r: Received, _last: string, b: Behaviour, type: string, text?: string): Promise<Response> {
    if (b.firstByteDelayMs) await Bun.sleep(b.firstByteDelayMs)
    const payload = enc.encode(text ?? _last)
    r.sent.push(payload)
    if (b.breakWholeAfter !== undefined) {
      const part = payload.subarray(0, b.breakWholeAfter)
      const body = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(part)
          await Bun.sleep(30)
          controller.error(new Error('fake connection break (expected in tests)'))
        },
      })
      return new Response(body, { headers: { 'content-type': type } })
    }
    r.completed = true
    if (b.gzip) return new Response(Bun.gzipSync(payload), { headers: { 'content-type': type, 'content-encoding': 'gzip' } })
    return new Response(payload, { headers: { 'content-type': type } })
  }

  private async stream(r: Received, lines: string[], b: Behaviour, type: string): Promise<Response> {
    if (b.firstByteDelayMs) await Bun.sleep(b.firstByteDelayMs)
    if (b.gzip) {
      const payload = enc.encode(lines.join(''))
      r.sent.push(payload)
      r.completed = true
      return new Response(Bun.gzipSync(payload), { headers: { 'content-type': type, 'content-encoding': 'gzip' } })
    }
    let i = 0
    const body = new ReadableStream<Uint8Array>(
      {
        pull: async (controller) => {
          if (i > 0 && b.chunkDelayMs) await Bun.sleep(b.chunkDelayMs)
          if (r.aborted) return
          if (b.breakAfter !== undefined && i === b.breakAfter) {
            // Let the chunks already written reach the wire, then drop the connection.
            await Bun.sleep(30)
            controller.error(new Error('fake connection break (expected in tests)'))
            return
          }
          if (b.errorAfter !== undefined && i === b.errorAfter) {
            const line = enc.encode(midStreamErrorIn(r.path, 'fake runtime error'))
            r.sent.push(line)
            controller.enqueue(line)
            controller.close()
            r.completed = true
            return
          }
          if (i >= lines.length) {
            controller.close()
            r.completed = true
            return
          }
          const line = lines[i++] as string
          const chunk = enc.encode(b.stamp ? stampLine(line) : line)
          if (b.splitFinalAt !== undefined && i === lines.length && b.splitFinalAt > 0 && b.splitFinalAt < chunk.byteLength) {
            const head = chunk.subarray(0, b.splitFinalAt)
            r.sent.push(head)
            controller.enqueue(head)
            await Bun.sleep(3)
            const tail = chunk.subarray(b.splitFinalAt)
            r.sent.push(tail)
            controller.enqueue(tail)
            return
          }
          if (this.options.record !== false) r.sent.push(chunk)
          controller.enqueue(chunk)
        },
        cancel: () => {
          r.aborted = true
        },
      },
      { highWaterMark: 0 },
    )
    return new Response(body, { headers: { 'content-type': type, ...(b.encoding ? { 'content-encoding': b.encoding } : {}) } })
  }
}

function stampLine(line: string): string {
  const now = performance.timeOrigin + performance.now()
  return line.startsWith('data: {') ? `data: {"sent_at":${now},${line.slice(7)}` : `{"sent_at":${now},${line.slice(1)}`
}

function defaultModels(): ModelInfo[] {
  return [{ name: 'llama3.2:latest', loaded: true }, { name: 'nomic-embed-text:latest' }]
}

/** OpenAI's `encoding_format: "base64"`: little-endian float32 bytes, base64-encoded. */
function embeddingValue(values: number[], format: unknown): number[] | string {
  return format === 'base64' ? Buffer.from(new Float32Array(values).buffer).toString('base64') : values
}

function ollamaError(status: number, message: string): Response {
  return Response.json({ error: message }, { status })
}

function openaiError(status: number, message: string): Response {
  const type = status === 400 ? 'invalid_request_error' : status === 404 ? 'not_found_error' : 'api_error'
  return Response.json({ error: { message, type, param: null, code: null } }, { status })
}

/** Ollama's `/v1/messages` answers errors in Anthropic's shape. */
function anthropicError(status: number, message: string): Response {
  const type =
    status === 400 ? 'invalid_request_error' : status === 404 ? 'not_found_error' : status === 503 ? 'overloaded_error' : 'api_error'
  return Response.json({ type: 'error', error: { type, message }, request_id: 'req_fake' }, { status })
}

/** An error answer in the dialect of the path, as Ollama's middlewares write it. */
function errorIn(path: string, status: number, message: string): Response {
  if (path === '/v1/messages') return anthropicError(status, message)
  return path.startsWith('/v1/') ? openaiError(status, message) : ollamaError(status, message)
}

/** The error Ollama writes into a stream whose headers are sent (UPSTREAM §3). */
function midStreamErrorIn(path: string, message: string): string {
  if (path === '/v1/messages') return `event: error\ndata: ${JSON.stringify({ type: 'error', error: { type: 'api_error', message } })}\n\n`
  if (path.startsWith('/v1/')) return `data: ${JSON.stringify({ error: { message, type: 'api_error', param: null, code: null } })}\n\n`
  return `${JSON.stringify({ error: message })}\n`
}

function details() {
  return { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '3.2B', quantization_level: 'Q4_K_M' }
}

function tagEntry(name: string) {
  return {
    name,
    model: name,
    modified_at: '2026-01-01T00:00:00Z',
    size: 2019393189,
    digest: createHash('sha256').update(name).digest('hex'),
    details: details(),
  }
}

function psEntry(name: string) {
  return { ...tagEntry(name), expires_at: '2099-01-01T00:00:00Z', size_vram: 2019393189, context_length: 4096 }
}

const CREATED = '2026-01-01T00:00:00.000Z'

/** Native stream lines: content pieces then the `done:true` line with metrics (UPSTREAM §2). */
export function ndjsonLines(path: string, model: string, b: Behaviour): string[] {
  const lines: string[] = []
  for (let i = 0; i < b.chunks; i++) {
    const piece = `w${i} `
    const content = path === '/api/chat' ? { message: { role: 'assistant', content: piece } } : { response: piece }
    lines.push(`${JSON.stringify({ model, created_at: CREATED, ...content, done: false })}\n`)
  }
  const final = path === '/api/chat' ? { message: { role: 'assistant', content: '' } } : { response: '' }
  lines.push(
    `${JSON.stringify({
      model,
      created_at: CREATED,
      ...final,
      done: true,
      done_reason: 'stop',
      total_duration: 123456,
      load_duration: 1000,
      prompt_eval_count: b.promptTokens,
      prompt_eval_duration: 2000,
      eval_count: b.chunks,
      eval_duration: 3000,
      future_field: { kept: true },
    })}\n`,
  )
  return lines
}

/** The `stream:false` answer: the final line with the whole content folded in. */
function mergeFinal(path: string, lines: string[]): string {
  const parsed = lines.map((l) => JSON.parse(l))
  const last = parsed[parsed.length - 1]
  const text = parsed
    .slice(0, -1)
    .map((x) => x.message?.content ?? x.response)
    .join('')
  if (path === '/api/chat') last.message.content = text
  else last.response = text
  return JSON.stringify(last)
}

function progressLines(b: Behaviour): string[] {
  const lines = [`${JSON.stringify({ status: 'pulling manifest' })}\n`]
  for (let i = 1; i <= b.chunks; i++)
    lines.push(`${JSON.stringify({ status: 'pulling abc123', digest: 'sha256:abc123', total: b.chunks * 100, completed: i * 100 })}\n`)
  lines.push(`${JSON.stringify({ status: 'verifying sha256 digest' })}\n`, `${JSON.stringify({ status: 'success' })}\n`)
  return lines
}

export function sseEvents(chat: boolean, model: string, b: Behaviour, includeUsage: boolean): string[] {
  const base = {
    id: 'chatcmpl-42',
    object: chat ? 'chat.completion.chunk' : 'text_completion',
    created: 1700000000,
    model,
    system_fingerprint: 'fp_ollama',
  }
  const events: string[] = []
  for (let i = 0; i < b.chunks; i++) {
    const choice = chat
      ? { index: 0, delta: i === 0 ? { role: 'assistant', content: `w${i} ` } : { content: `w${i} ` }, finish_reason: null }
      : { index: 0, text: `w${i} `, finish_reason: null }
    events.push(`data: ${JSON.stringify({ ...base, choices: [choice] })}\n\n`)
  }
  const finish = chat ? { index: 0, delta: {}, finish_reason: 'stop' } : { index: 0, text: '', finish_reason: 'stop' }
  events.push(`data: ${JSON.stringify({ ...base, choices: [finish] })}\n\n`)
  if (includeUsage) {
    events.push(
      `data: ${JSON.stringify({ ...base, choices: [], usage: { prompt_tokens: b.promptTokens, completion_tokens: b.chunks, total_tokens: b.promptTokens + b.chunks } })}\n\n`,
    )
  }
  events.push('data: [DONE]\n\n')
  return events
}

function openaiWhole(chat: boolean, model: string, b: Behaviour) {
  const text = Array.from({ length: b.chunks }, (_, i) => `w${i} `).join('')
  return {
    id: 'chatcmpl-42',
    object: chat ? 'chat.completion' : 'text_completion',
    created: 1700000000,
    model,
    system_fingerprint: 'fp_ollama',
    choices: [
      chat ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' } : { index: 0, text, finish_reason: 'stop' },
    ],
    usage: { prompt_tokens: b.promptTokens, completion_tokens: b.chunks, total_tokens: b.promptTokens + b.chunks },
  }
}

function responsesEvents(model: string, b: Behaviour): string[] {
  const response = {
    id: 'resp_1',
    object: 'response',
    model,
    status: 'completed',
    usage: { input_tokens: b.promptTokens, output_tokens: b.chunks, total_tokens: b.promptTokens + b.chunks },
  }
  const events = [
    // As Ollama's: the counts come only with `response.completed`.
    `event: response.created\ndata: ${JSON.stringify({ type: 'response.created', response: { ...response, status: 'in_progress', usage: null } })}\n\n`,
  ]
  for (let i = 0; i < b.chunks; i++)
    events.push(`event: response.output_text.delta\ndata: ${JSON.stringify({ type: 'response.output_text.delta', delta: `w${i} ` })}\n\n`)
  events.push(`event: response.completed\ndata: ${JSON.stringify({ type: 'response.completed', response })}\n\n`)
  return events
}

/**
 * A streamed `/v1/messages` answer as Ollama's Anthropic middleware writes it: named events, the input
 * count in `message_start`, both counts in `message_delta`, then `message_stop`.
 */
function anthropicEvents(model: string, b: Behaviour): string[] {
  const event = (name: string, data: Record<string, unknown>) => `event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}\n\n`
  const events = [
    event('message_start', {
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model,
        content: [],
        usage: { input_tokens: b.promptTokens, output_tokens: 0 },
      },
    }),
    event('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
  ]
  for (let i = 0; i < b.chunks; i++) events.push(event('content_block_delta', { index: 0, delta: { type: 'text_delta', text: `w${i} ` } }))
  events.push(
    event('content_block_stop', { index: 0 }),
    event('message_delta', {
      delta: { stop_reason: 'end_turn' },
      usage: { input_tokens: b.promptTokens, output_tokens: b.chunks },
    }),
    event('message_stop', {}),
  )
  return events
}

/** Runs the fake as its own process for benchmarks and smoke tests: `bun test/helpers/fake-ollama.ts 11434`. */
if (import.meta.main) {
  const fake = new FakeOllama({ record: false }).start(Number(process.argv[2] ?? 0))
  const delay = Number(process.env.FAKE_CHUNK_DELAY_MS ?? 0)
  const chunks = Number(process.env.FAKE_CHUNKS ?? 3)
  fake.behaviour = { ...fake.behaviour, chunkDelayMs: delay, chunks, stamp: process.env.FAKE_STAMP === '1' }
  // bench/: a 200-chunk streamed chat, one chunk every 5 ms, each stamped with its send time.
  fake.models.push({ name: 'bench-stream:latest' })
  fake.perModel.set('bench-stream', { chunks: 200, chunkDelayMs: 5, stamp: true })
  // bench/: a streamed chat whose first line leaves at once and the rest 2 ms later, as a model's first
  // token precedes the others: a gateway relays it as a stream, not as an answer it already holds whole.
  fake.models.push({ name: 'bench-ttfb:latest' })
  fake.perModel.set('bench-ttfb', { chunks: 2, chunkDelayMs: 2 })
  process.stdout.write(`fake ollama listening on ${fake.url}\n`)
}
