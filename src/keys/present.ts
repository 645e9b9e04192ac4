// The public shape of a key in the admin API and CLI: snake_case, ISO times, never the hash.
import { t } from 'elysia'
import { type KeyRecord, keyState } from '../store/store.ts'

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

export const ScopeSchema = t.Union([t.Literal('inference'), t.Literal('models:write'), t.Literal('admin')])
export const LimitsSchema = t.Object(
  {
    rpm: t.Optional(t.Integer({ minimum: 1, description: 'requests per minute' })),
    tpm: t.Optional(t.Integer({ minimum: 1, description: 'prompt + completion tokens per minute' })),
    max_concurrency: t.Optional(t.Integer({ minimum: 1, description: 'requests in flight at once' })),
  },
  { additionalProperties: false },
)
const Nullable = <S extends Parameters<typeof t.Union>[0][number]>(s: S) => t.Union([s, t.Null()])

export const KeyView = t.Object({
  id: t.String({ examples: ['a1B2c3D4e5F6'] }),
  prefix: t.String({ description: 'what a leaked key starts with', examples: ['nnz_a1B2c3D4e5F6_'] }),
  name: t.String(),
  state: t.Union([t.Literal('active'), t.Literal('revoked'), t.Literal('expired')]),
  scopes: t.Array(ScopeSchema),
  allowed_models: t.Array(t.String(), { description: 'glob patterns on model names; empty = all' }),
  limits: LimitsSchema,
  metadata: t.Record(t.String(), t.Unknown()),
  expires_at: Nullable(t.String({ format: 'date-time' })),
  created_at: t.String({ format: 'date-time' }),
  updated_at: t.String({ format: 'date-time' }),
  revoked_at: Nullable(t.String({ format: 'date-time' })),
  last_used_at: Nullable(t.String({ format: 'date-time' })),
})

export function keyView(r: KeyRecord) {
  return {
    id: r.id,
    prefix: `nnz_${r.id}_`,
    name: r.name,
    state: keyState(r),
    scopes: [...r.scopes],
    allowed_models: [...r.allowedModels],
    limits: r.limits,
    metadata: { ...r.metadata },
    expires_at: iso(r.expiresAt),
    created_at: iso(r.createdAt) as string,
    updated_at: iso(r.updatedAt) as string,
    revoked_at: iso(r.revokedAt),
    last_used_at: iso(r.lastUsedAt),
  }
}
