// Request bodies for the OpenAPI document (SPEC §4.13), so a person can try /api/chat from /docs.
// Documentation only: proxied bodies are forwarded byte for byte, unknown fields included (§4.8).
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
