// SPEC §4.11: GET /admin/audit (filters, cursor paging) and GET /admin/usage (requests and tokens per
// key, model and day over a time range). Scope `admin`.
import { t } from 'elysia'
import { shortModel } from '../backends/model-name.ts'
import { GatewayError } from '../errors.ts'
import { AdminError, adminPlugin } from '../keys/guard.ts'
import type { Services } from '../services.ts'
import { type AuditOutcome, decodeAuditCursor } from './event.ts'

const Outcome = t.Union([t.Literal('ok'), t.Literal('error'), t.Literal('aborted'), t.Literal('rejected')])
const AuditQuery = t.Object({
  key_id: t.Optional(t.String({ pattern: '^[0-9A-Za-z]{12}$' })),
  model: t.Optional(t.String({ maxLength: 300 })),
  status: t.Optional(t.Integer({ minimum: 100, maximum: 599 })),
  outcome: t.Optional(Outcome),
  from: t.Optional(t.String({ format: 'date-time', description: 'inclusive, ISO 8601' })),
  to: t.Optional(t.String({ format: 'date-time', description: 'exclusive, ISO 8601' })),
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 1000, default: 100 })),
  cursor: t.Optional(t.String({ maxLength: 200 })),
})
const UsageQuery = t.Object({
  from: t.Optional(t.String({ format: 'date-time', description: 'inclusive; default 7 days ago' })),
  to: t.Optional(t.String({ format: 'date-time', description: 'exclusive; default now' })),
  key_id: t.Optional(t.String({ pattern: '^[0-9A-Za-z]{12}$' })),
})

const NullableString = t.Union([t.String(), t.Null()])
const NullableNumber = t.Union([t.Number(), t.Null()])
/** One event as the API answers it (SPEC §4.10); `time` as ISO 8601. */
const AuditEventView = t.Object({
  event_id: t.String({ description: 'UUID v7, time-ordered' }),
  time: t.String({ format: 'date-time' }),
  request_id: t.String(),
  key_id: NullableString,
  client_ip: NullableString,
  user_agent: NullableString,
  method: t.String(),
  path: t.String(),
  model: NullableString,
  backend: NullableString,
  status: t.Number(),
  outcome: Outcome,
  latency_ms: NullableNumber,
  ttfb_ms: NullableNumber,
  prompt_tokens: NullableNumber,
  completion_tokens: NullableNumber,
  tokens_partial: t.Boolean({ description: 'the counts are those seen before the stream ended early' }),
  bytes_in: NullableNumber,
  bytes_out: NullableNumber,
  error: NullableString,
  action: t.Union([t.String(), t.Null()], { description: 'admin actions: what was done' }),
  target: t.Union([t.String(), t.Null()], { description: 'admin actions: to what' }),
})
const AuditPage = t.Object({
  items: t.Array(AuditEventView),
  next_cursor: t.Union([t.String(), t.Null()], { description: 'pass as `cursor` for the next, older page; null at the end' }),
})
const UsageReport = t.Object({
  from: t.String({ format: 'date-time' }),
  to: t.String({ format: 'date-time' }),
  rows: t.Array(
    t.Object({
      day: t.String({ description: 'YYYY-MM-DD, UTC' }),
      key_id: NullableString,
      model: NullableString,
      requests: t.Number({ description: 'every request of the group; by outcome in the next four' }),
      ok: t.Number(),
      errors: t.Number(),
      aborted: t.Number({ description: 'the client left before the answer ended' }),
      rejected: t.Number({ description: 'refused: 401, 403 or 429' }),
      prompt_tokens: t.Number(),
      completion_tokens: t.Number(),
    }),
  ),
})
const errors = { 400: AdminError, 401: AdminError, 403: AdminError }

function time(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  if (Number.isNaN(ms)) throw new GatewayError('bad_request', `${name} '${value}' is not an ISO 8601 date-time`)
  return ms
}

/** A range that ends before it starts is a mistake to report, not an empty answer. */
function checkRange(from: number | undefined, to: number | undefined): void {
  if (from !== undefined && to !== undefined && from >= to)
    throw new GatewayError('bad_request', `from (${new Date(from).toISOString()}) must be before to (${new Date(to).toISOString()})`)
}

export function adminAuditRoutes(services: Services) {
  return adminPlugin(services, 'admin-audit')
    .get(
      '/audit',
      async ({ query }) => {
        const from = time('from', query.from)
        const to = time('to', query.to)
        checkRange(from, to)
        if (query.cursor !== undefined && decodeAuditCursor(query.cursor) === undefined)
          throw new GatewayError('bad_request', `cursor '${query.cursor}' is not one this gateway issued; start again without it`)
        const page = await services.store.queryAudit({
          limit: query.limit ?? 100,
          ...(query.key_id ? { keyId: query.key_id } : {}),
          // Events name a model as /api/tags does (UPSTREAM §5): any spelling of it finds them.
          ...(query.model ? { model: shortModel(query.model) } : {}),
          ...(query.status !== undefined ? { status: query.status } : {}),
          ...(query.outcome ? { outcome: query.outcome as AuditOutcome } : {}),
          ...(from !== undefined ? { from } : {}),
          ...(to !== undefined ? { to } : {}),
          ...(query.cursor ? { cursor: query.cursor } : {}),
        })
        return { items: page.items.map((e) => ({ ...e, time: new Date(e.time).toISOString() })), next_cursor: page.nextCursor }
      },
      {
        query: AuditQuery,
        response: { 200: AuditPage, ...errors },
        detail: { tags: ['admin'], summary: 'Audit events, newest first (filters, cursor paging)' },
      },
    )
    .get(
      '/usage',
      async ({ query }) => {
        const to = time('to', query.to) ?? Date.now()
        const from = time('from', query.from) ?? to - 7 * 86_400_000
        checkRange(from, to)
        const rows = await services.store.usage({ from, to, ...(query.key_id ? { keyId: query.key_id } : {}) })
        return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), rows }
      },
      {
        query: UsageQuery,
        response: { 200: UsageReport, ...errors },
        detail: { tags: ['admin'], summary: 'Requests and tokens per key, model and day' },
      },
    )
}
