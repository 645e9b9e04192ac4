// SPEC §4.11: the key administration API (scope `admin`). The TypeBox schemas validate, type the
// handlers and document the routes in OpenAPI.
import { t } from 'elysia'
import { recordAdminEvent } from '../audit/admin-event.ts'
import { GatewayError } from '../errors.ts'
import type { Services } from '../services.ts'
import { decodeCursor } from '../store/store.ts'
import { MODEL_PATTERN, MODEL_PATTERN_DESCRIPTION } from './authz.ts'
import { AdminError, adminPlugin } from './guard.ts'
import { KeyView, keyView, LimitsSchema, ScopeSchema } from './present.ts'
import type { KeyPatch } from './service.ts'

const KeyFields = {
  scopes: t.Optional(t.Array(ScopeSchema, { minItems: 1, uniqueItems: true, description: "default ['inference']" })),
  allowed_models: t.Optional(
    t.Array(t.String({ minLength: 1, maxLength: 300, pattern: MODEL_PATTERN, description: MODEL_PATTERN_DESCRIPTION }), {
      maxItems: 200,
      examples: [['llama3.2', 'qwen3:*']],
    }),
  ),
  limits: t.Optional(LimitsSchema),
  metadata: t.Optional(t.Record(t.String(), t.Unknown(), { description: 'free-form, up to 16 KiB as JSON' })),
  expires_at: t.Optional(t.Union([t.String({ format: 'date-time' }), t.Null()], { description: 'ISO 8601; null = never' })),
}
const CreateBody = t.Object(
  { name: t.String({ minLength: 1, maxLength: 200, examples: ['team-a laptop'] }), ...KeyFields },
  { additionalProperties: false },
)
const PatchBody = t.Object({ name: t.Optional(t.String({ minLength: 1, maxLength: 200 })), ...KeyFields }, { additionalProperties: false })
const IssuedView = t.Composite([t.Object({ key: t.String({ description: 'the whole key: shown once, store it now' }) }), KeyView])
const IdParams = t.Object({ id: t.String({ pattern: '^[0-9A-Za-z]{12}$', description: 'the 12-character key id' }) })
const ListQuery = t.Object({
  name: t.Optional(t.String({ maxLength: 200, description: 'case-insensitive substring of the name' })),
  state: t.Optional(t.Union([t.Literal('active'), t.Literal('revoked'), t.Literal('expired')])),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: t.Optional(t.String({ maxLength: 200, description: 'next_cursor of the previous page' })),
})

type Fields = {
  scopes?: KeyPatch['scopes']
  allowed_models?: string[]
  limits?: KeyPatch['limits']
  metadata?: Record<string, unknown>
  expires_at?: string | null
  name?: string
}

function toPatch(body: Fields): KeyPatch {
  if (body.metadata !== undefined && JSON.stringify(body.metadata).length > 16_384)
    throw new GatewayError('bad_request', 'metadata is larger than 16 KiB')
  let expiresAt: number | null | undefined
  if (body.expires_at !== undefined) {
    expiresAt = body.expires_at === null ? null : Date.parse(body.expires_at)
    if (expiresAt !== null && Number.isNaN(expiresAt))
      throw new GatewayError('bad_request', `expires_at '${body.expires_at}' is not an ISO 8601 date-time`)
  }
  return {
    ...(body.name !== undefined ? { name: body.name } : {}),
    ...(body.scopes !== undefined ? { scopes: body.scopes } : {}),
    ...(body.allowed_models !== undefined ? { allowedModels: body.allowed_models } : {}),
    ...(body.limits !== undefined ? { limits: body.limits } : {}),
    ...(body.metadata !== undefined ? { metadata: body.metadata } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  }
}

const errors = { 400: AdminError, 401: AdminError, 403: AdminError, 404: AdminError }

export function adminKeyRoutes(services: Services) {
  const { keys } = services
  return adminPlugin(services, 'admin-keys')
    .post(
      '/keys',
      async ({ body, set, request, admin }) => {
        const issued = await keys.create({ ...toPatch(body), name: body.name })
        recordAdminEvent(services, { request, status: 201, outcome: 'ok', keyId: admin.id, action: 'key.create', target: issued.record.id })
        set.status = 201
        return { key: issued.key, ...keyView(issued.record) }
      },
      {
        // Documents the body as JSON; adminPlugin's own parser runs before this one and reads it.
        parse: 'json',
        body: CreateBody,
        response: { 201: IssuedView, ...errors },
        detail: { tags: ['admin'], summary: 'Create a key (the key is in the answer, once)' },
      },
    )
    .get(
      '/keys',
      async ({ query }) => {
        if (query.cursor !== undefined && decodeCursor(query.cursor) === undefined)
          throw new GatewayError('bad_request', `cursor '${query.cursor}' is not one this gateway issued; start again without it`)
        const page = await keys.list({
          limit: query.limit ?? 50,
          ...(query.name ? { name: query.name } : {}),
          ...(query.state ? { state: query.state } : {}),
          ...(query.cursor ? { cursor: query.cursor } : {}),
        })
        return { items: page.items.map(keyView), next_cursor: page.nextCursor }
      },
      {
        query: ListQuery,
        response: { 200: t.Object({ items: t.Array(KeyView), next_cursor: t.Union([t.String(), t.Null()]) }), ...errors },
        detail: { tags: ['admin'], summary: 'List keys (newest first, cursor paging)' },
      },
    )
    .get('/keys/:id', async ({ params }) => keyView(await keys.get(params.id)), {
      params: IdParams,
      response: { 200: KeyView, ...errors },
      detail: { tags: ['admin'], summary: 'Get a key' },
    })
    .patch(
      '/keys/:id',
      async ({ params, body, request, admin }) => {
        const updated = await keys.update(params.id, toPatch(body))
        recordAdminEvent(services, { request, status: 200, outcome: 'ok', keyId: admin.id, action: 'key.update', target: params.id })
        return keyView(updated)
      },
      {
        params: IdParams,
        parse: 'json',
        body: PatchBody,
        response: { 200: KeyView, ...errors },
        detail: { tags: ['admin'], summary: 'Change name, scopes, models, limits, expiry or metadata' },
      },
    )
    .post(
      '/keys/:id/revoke',
      async ({ params, request, admin }) => {
        const revoked = await keys.revoke(params.id)
        recordAdminEvent(services, { request, status: 200, outcome: 'ok', keyId: admin.id, action: 'key.revoke', target: params.id })
        return keyView(revoked)
      },
      {
        params: IdParams,
        response: { 200: KeyView, ...errors },
        detail: { tags: ['admin'], summary: 'Revoke a key (every replica refuses it within a second)' },
      },
    )
    .post(
      '/keys/:id/rotate',
      async ({ params, request, admin }) => {
        const issued = await keys.rotate(params.id)
        recordAdminEvent(services, { request, status: 200, outcome: 'ok', keyId: admin.id, action: 'key.rotate', target: params.id })
        return { key: issued.key, ...keyView(issued.record) }
      },
      {
        params: IdParams,
        response: { 200: IssuedView, ...errors },
        detail: { tags: ['admin'], summary: 'New secret, same id and settings' },
      },
    )
}
