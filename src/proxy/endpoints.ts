// UPSTREAM §1: every Ollama and OpenAI-compatible endpoint the gateway serves, as data. Routes, scopes,
// body handling and documentation all derive from this table.

export type Scope = 'inference' | 'models:write' | 'admin'
export type BodyKind = 'none' | 'json' | 'stream'
/** How the backend is chosen: by the body's model, aggregated over all, or a management target. */
export type Routing = 'model' | 'aggregate' | 'any' | 'manage'

export interface Endpoint {
  readonly method: 'GET' | 'HEAD' | 'POST' | 'DELETE'
  /** Elysia path; `*` captures model ids that contain slashes. */
  readonly path: string
  readonly body: BodyKind
  readonly routing: Routing
  readonly scope: Scope
  /** Body fields naming the model, first present wins (legacy `name`, UPSTREAM §1). */
  readonly modelFields?: readonly string[]
  /**
   * A body field naming a second model the call touches (a copy's destination, the model a new one is
   * made from): the key must be allowed it too (SPEC §4.3).
   */
  readonly otherModelField?: string
  /** Whether an absent `stream` field means streaming (native: yes, OpenAI: no). */
  readonly streamByDefault: boolean
  readonly summary: string
}

const native = (e: Omit<Endpoint, 'streamByDefault'> & { streamByDefault?: boolean }): Endpoint => ({
  streamByDefault: false,
  ...e,
})

export const ENDPOINTS: readonly Endpoint[] = [
  native({
    method: 'POST',
    path: '/api/generate',
    body: 'json',
    routing: 'model',
    scope: 'inference',
    modelFields: ['model'],
    streamByDefault: true,
    summary: 'Generate a completion',
  }),
  native({
    method: 'POST',
    path: '/api/chat',
    body: 'json',
    routing: 'model',
    scope: 'inference',
    modelFields: ['model'],
    streamByDefault: true,
    summary: 'Generate a chat message',
  }),
  native({
    method: 'POST',
    path: '/api/embed',
    body: 'json',
    routing: 'model',
    scope: 'inference',
    modelFields: ['model'],
    summary: 'Generate embeddings',
  }),
  native({
    method: 'POST',
    path: '/api/embeddings',
    body: 'json',
    routing: 'model',
    scope: 'inference',
    modelFields: ['model'],
    summary: 'Generate an embedding (legacy)',
  }),
  native({ method: 'GET', path: '/api/tags', body: 'none', routing: 'aggregate', scope: 'inference', summary: 'List local models' }),
  native({
    method: 'HEAD',
    path: '/api/tags',
    body: 'none',
    routing: 'aggregate',
    scope: 'inference',
    summary: 'List local models (headers only)',
  }),
  native({ method: 'GET', path: '/api/ps', body: 'none', routing: 'aggregate', scope: 'inference', summary: 'List running models' }),
  native({
    method: 'POST',
    path: '/api/show',
    body: 'json',
    routing: 'model',
    scope: 'inference',
    modelFields: ['model', 'name'],
    summary: 'Show model information',
  }),
  native({ method: 'GET', path: '/api/version', body: 'none', routing: 'any', scope: 'inference', summary: 'Ollama version' }),
  native({
    method: 'HEAD',
    path: '/api/version',
    body: 'none',
    routing: 'any',
    scope: 'inference',
    summary: 'Ollama version (headers only)',
  }),
  native({
    method: 'POST',
    path: '/api/pull',
    body: 'json',
    routing: 'manage',
    scope: 'models:write',
    modelFields: ['model', 'name'],
    streamByDefault: true,
    summary: 'Pull a model',
  }),
  native({
    method: 'POST',
    path: '/api/push',
    body: 'json',
    routing: 'manage',
    scope: 'models:write',
    modelFields: ['model', 'name'],
    streamByDefault: true,
    summary: 'Push a model',
  }),
  native({
    method: 'POST',
    path: '/api/create',
    body: 'json',
    routing: 'manage',
    scope: 'models:write',
    modelFields: ['model', 'name'],
    otherModelField: 'from',
    streamByDefault: true,
    summary: 'Create a model',
  }),
  native({
    method: 'POST',
    path: '/api/copy',
    body: 'json',
    routing: 'manage',
    scope: 'models:write',
    modelFields: ['source'],
    otherModelField: 'destination',
    summary: 'Copy a model',
  }),
  native({
    method: 'DELETE',
    path: '/api/delete',
    body: 'json',
    routing: 'manage',
    scope: 'models:write',
    modelFields: ['model', 'name'],
    summary: 'Delete a model',
  }),
  native({
    method: 'HEAD',
    path: '/api/blobs/:digest',
    body: 'none',
    routing: 'manage',
    scope: 'models:write',
    summary: 'Check a blob exists',
  }),
  native({
    method: 'POST',
    path: '/api/blobs/:digest',
    body: 'stream',
    routing: 'manage',
    scope: 'models:write',
    summary: 'Upload a blob (streamed)',
  }),
  native({
    method: 'POST',
    path: '/v1/chat/completions',
    body: 'json',
    routing: 'model',
    scope: 'inference',
    modelFields: ['model'],
    summary: 'OpenAI chat completions',
  }),
  native({
    method: 'POST',
    path: '/v1/completions',
    body: 'json',
    routing: 'model',
    scope: 'inference',
    modelFields: ['model'],
    summary: 'OpenAI completions',
  }),
  native({
    method: 'POST',
    path: '/v1/embeddings',
    body: 'json',
    routing: 'model',
    scope: 'inference',
    modelFields: ['model'],
    summary: 'OpenAI embeddings',
  }),
  native({
    method: 'POST',
    path: '/v1/responses',
    body: 'json',
    routing: 'model',
    scope: 'inference',
    modelFields: ['model'],
    summary: 'OpenAI responses',
  }),
  native({
    method: 'POST',
    path: '/v1/messages',
    body: 'json',
    routing: 'model',
    scope: 'inference',
    modelFields: ['model'],
    summary: 'Anthropic-style messages',
  }),
  native({ method: 'GET', path: '/v1/models', body: 'none', routing: 'aggregate', scope: 'inference', summary: 'OpenAI model list' }),
  native({ method: 'GET', path: '/v1/models/*', body: 'none', routing: 'model', scope: 'inference', summary: 'OpenAI model' }),
]

/** Paths with at least one endpoint, for answering 405 on the other methods. */
export const KNOWN_PATHS: readonly string[] = [...new Set(ENDPOINTS.map((e) => e.path))]
