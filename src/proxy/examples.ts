// Request bodies and answers for the OpenAPI document (SPEC §4.13), so a person can try /api/chat from
// /docs and see what comes back, errors in the route's dialect included (§5). Documentation only:
// proxied bodies are forwarded byte for byte, unknown fields included (§4.8), and answers pass through.
import { dialectOf, ERROR_STATUS, type ErrorCode, errorBody } from '../errors.ts'
import type { Endpoint } from './endpoints.ts'

const chat = { model: 'llama3.2', messages: [{ role: 'user', content: 'Why is the sky blue?' }], stream: false }

export const EXAMPLES: Record<string, Record<string, unknown>> = {
  '/api/generate': { model: 'llama3.2', prompt: 'Why is the sky blue?', stream: false },
  '/api/chat': chat,
  '/api/embed': { model: 'nomic-embed-text', input: ['first text', 'second text'] },
  '/api/embeddings': { model: 'nomic-embed-text', prompt: 'some text' },
  '/api/show': { model: 'llama3.2' },
  '/api/pull': { model: 'llama3.2', stream: true },
  '/api/push': { model: 'user/llama3.2:latest' },
  '/api/create': { model: 'my-model', from: 'llama3.2', system: 'You are terse.' },
  '/api/copy': { source: 'llama3.2', destination: 'llama3.2-backup' },
  '/api/delete': { model: 'llama3.2-backup' },
  '/v1/chat/completions': { ...chat },
  '/v1/completions': { model: 'llama3.2', prompt: 'Once upon a time' },
  '/v1/embeddings': { model: 'nomic-embed-text', input: 'some text' },
  '/v1/responses': { model: 'llama3.2', input: 'Say hi' },
  '/v1/messages': { model: 'llama3.2', max_tokens: 256, messages: [{ role: 'user', content: 'Hi' }] },
}

/** An OpenAPI requestBody for a proxied JSON route: the example, with every other field allowed. */
export function requestBodyDoc(path: string) {
  const example = EXAMPLES[path]
  if (!example) return undefined
  const properties = Object.fromEntries(Object.keys(example).map((k) => [k, {}]))
  return {
    required: true,
    content: { 'application/json': { schema: { type: 'object' as const, additionalProperties: true, properties }, example } },
  }
}

const json = 'application/json'
const ndjson = 'application/x-ndjson'
const sse = 'text/event-stream'

/** The Ollama dialect's error body (SPEC §5), also the gateway's own routes' outside `/admin`. */
export const OLLAMA_ERROR = { type: 'object' as const, properties: { error: { type: 'string' as const } }, required: ['error'] }
const OPENAI_ERROR = {
  type: 'object',
  properties: {
    error: {
      type: 'object',
      properties: { message: { type: 'string' }, type: { type: 'string' }, param: { type: 'null' }, code: { type: ['string', 'null'] } },
      required: ['message', 'type'],
    },
  },
  required: ['error'],
}
const ANTHROPIC_ERROR = {
  type: 'object',
  properties: {
    type: { const: 'error' },
    error: { type: 'object', properties: { type: { type: 'string' }, message: { type: 'string' } }, required: ['type', 'message'] },
    request_id: { type: 'string' },
  },
  required: ['type', 'error'],
}

const GENERATED = 'NDJSON stream, the last line `done:true` with the token counts; one JSON object with `stream:false`'
const PROGRESS = 'NDJSON progress lines ending `{"status":"success"}`; one object with `stream:false`'

/** What a successful call answers, per path, and the content types it comes in. */
const SUCCESS: Record<string, { description: string; types?: readonly string[] }> = {
  '/api/generate': { description: GENERATED, types: [ndjson, json] },
  '/api/chat': { description: GENERATED, types: [ndjson, json] },
  '/api/embed': { description: '`embeddings`, one per input, and `prompt_eval_count`', types: [json] },
  '/api/embeddings': { description: '`embedding` (legacy)', types: [json] },
  '/api/tags': { description: 'The models of every reachable backend this key may use, each once', types: [json] },
  '/api/ps': { description: 'The loaded models of every reachable backend this key may use', types: [json] },
  '/api/show': { description: 'The model card', types: [json] },
  '/api/version': { description: '`{"version":"x.y.z"}` from a reachable backend', types: [json] },
  '/api/pull': { description: `${PROGRESS}. \`X-Backend\` names the backend`, types: [ndjson, json] },
  '/api/push': { description: PROGRESS, types: [ndjson, json] },
  '/api/create': { description: PROGRESS, types: [ndjson, json] },
  '/api/copy': { description: 'Copied (empty body)' },
  '/api/delete': { description: 'Deleted (empty body)' },
  '/api/blobs/:digest': { description: 'The blob exists' },
  '/v1/chat/completions': { description: 'A chat completion; with `stream:true`, SSE chunks ending `data: [DONE]`', types: [json, sse] },
  '/v1/completions': { description: 'A completion; with `stream:true`, SSE chunks ending `data: [DONE]`', types: [json, sse] },
  '/v1/embeddings': { description: 'A list of embeddings with `usage`', types: [json] },
  '/v1/responses': { description: 'A response; with `stream:true`, named SSE events ending `response.completed`', types: [json, sse] },
  '/v1/messages': { description: 'A message; with `stream:true`, named SSE events ending `message_stop`', types: [json, sse] },
  '/v1/models': { description: 'The models this key may use', types: [json] },
  '/v1/models/*': { description: 'One model', types: [json] },
}

/** An OpenAPI response object, as far as these documents use it. */
interface ResponseDoc {
  description: string
  content?: Record<string, { schema?: object; example?: unknown }>
}

/**
 * An OpenAPI `responses` object for a proxied endpoint: what success looks like and the gateway's errors
 * in the route's dialect (SPEC §5). Upstream errors pass through in the same shape.
 */
export function responsesDoc(endpoint: Endpoint): Record<string, ResponseDoc> {
  const dialect = dialectOf(endpoint.path)
  const schema = dialect === 'anthropic' ? ANTHROPIC_ERROR : dialect === 'openai' ? OPENAI_ERROR : OLLAMA_ERROR
  // The example is what the gateway sends, rendered by the same code (errors.ts).
  const failure = (description: string, code: ErrorCode, message: string): ResponseDoc => ({
    description,
    content: {
      [json]: {
        schema,
        example: JSON.parse(errorBody(dialect, code, ERROR_STATUS[code], message, '4f1c2a9e-0b7d-4c55-9a61-2f3e8d7c6b5a')),
      },
    },
  })
  const success = SUCCESS[endpoint.path] ?? { description: 'OK' }
  const responses: Record<string, ResponseDoc> = {}
  if (endpoint.method === 'HEAD') responses['200'] = { description: success.description }
  else if (endpoint.path === '/api/blobs/:digest') responses['201'] = { description: 'Stored' }
  else
    responses['200'] = {
      description: success.description,
      ...(success.types ? { content: Object.fromEntries(success.types.map((type) => [type, {}])) } : {}),
    }
  if (endpoint.body === 'json')
    responses['400'] = failure('The body is not JSON, or `model` is missing or not a model name', 'bad_request', 'model is required')
  else if (endpoint.body === 'stream')
    responses['400'] = failure('The digest does not match the bytes (Ollama)', 'bad_request', 'digest mismatch')
  responses['401'] = failure('No key, or a malformed, unknown, expired or revoked key', 'unauthorized', 'API key revoked')
  responses['403'] = failure(
    `The key lacks the \`${endpoint.scope}\` scope, or the model is not allowed for it`,
    'forbidden',
    "model 'llama3.2' not allowed for this key",
  )
  if (endpoint.routing === 'model' || endpoint.routing === 'manage')
    responses['404'] = failure('No backend has the model', 'model_not_found', "model 'llama3.2' not found")
  if (endpoint.body === 'json') {
    responses['413'] = failure(
      'The body is larger than MAX_BODY_MB',
      'payload_too_large',
      'request body exceeds the 100 MB limit (MAX_BODY_MB)',
    )
    responses['415'] = failure(
      'The body is compressed (`Content-Encoding`); JSON bodies are taken uncompressed, as Ollama takes them',
      'unsupported_media_type',
      "request bodies with Content-Encoding 'gzip' are not accepted; send the JSON uncompressed",
    )
  }
  responses['429'] = failure(
    'Over a limit of the key (rpm, tpm, max_concurrency); `Retry-After` and `x-ratelimit-*` say when',
    'rate_limited',
    'rate limit reached: 60 requests per minute for this key; retry after the reset',
  )
  responses['502'] = failure(
    'The backend failed or broke off the answer',
    'upstream_unreachable',
    "cannot reach backend 'gpu1': connection refused",
  )
  responses['503'] = failure(
    'No backend with the model is reachable, or its queue is full; `Retry-After`',
    'no_healthy_backend',
    'no backend is reachable now; retry shortly',
  )
  responses['504'] = failure(
    'The backend sent nothing within OLLAMA_READ_TIMEOUT_S',
    'upstream_timeout',
    "backend 'gpu1' did not answer within 600s",
  )
  return responses
}

/** The document's section for a proxied endpoint. */
export const tagOf = (endpoint: Endpoint): string => (endpoint.path.startsWith('/v1') ? 'openai' : 'ollama')

/** Elysia's path as OpenAPI writes it: `:name` and the trailing `*` (a model id may hold slashes) as parameters. */
function documentedPath(path: string): string {
  return path.replace(/:(\w+)/g, '{$1}').replace(/\/\*$/, '/{model}')
}

/**
 * The operations whose Elysia path OpenAPI cannot write (a `*`): hidden from the generated document
 * and described here under their templated path, so "Try it out" fills the parameter.
 */
export function wildcardPathsDoc(endpoints: readonly Endpoint[]): Record<string, Record<string, unknown>> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const endpoint of endpoints) {
    if (!endpoint.path.endsWith('/*')) continue
    const path = documentedPath(endpoint.path)
    paths[path] = {
      ...paths[path],
      [endpoint.method.toLowerCase()]: {
        tags: [tagOf(endpoint)],
        summary: endpoint.summary,
        operationId: `${endpoint.method.toLowerCase()}${path.replace(/[^A-Za-z0-9]+(\w)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
        parameters: [
          {
            name: 'model',
            in: 'path',
            required: true,
            description: 'A model id as `/v1/models` lists it (it may contain `/`, e.g. `hf.co/org/repo:Q4_K_M`)',
            schema: { type: 'string' },
            example: 'llama3.2:latest',
          },
        ],
        responses: responsesDoc(endpoint),
      },
    }
  }
  return paths
}
