// SPEC §4.10: what one audit event holds. Prompts and outputs are never part of it.
export type AuditOutcome = 'ok' | 'error' | 'aborted' | 'rejected'

/**
 * A new event id: a UUID version 7 (RFC 9562), the millisecond time in its first 48 bits and 74 random
 * bits after. Time-ordered ids land at the right edge of the unique index instead of at random pages:
 * SQLite inserts about 5x faster than with random (version 4) ids (SPEC §7, bench/RESULTS.md).
 */
export function newEventId(now = Date.now()): string {
  // Events come many to a millisecond under load: the time part is formatted once per millisecond.
  if (now !== idMs) {
    idMs = now
    const ms = now.toString(16).padStart(12, '0')
    idPrefix = `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7`
  }
  return idPrefix + crypto.randomUUID().slice(15)
}
let idMs = Number.NaN
let idPrefix = ''

export interface AuditEvent {
  /**
   * Unique per event: a UUID v7 minted from `time` (newEventId(time)). It makes a retried batch insert
   * idempotent, and it is the stores' primary key and sort order (eventIdFloor).
   */
  readonly event_id: string
  /** Epoch milliseconds. */
  readonly time: number
  readonly request_id: string
  readonly key_id: string | null
  readonly client_ip: string | null
  readonly user_agent: string | null
  readonly method: string
  readonly path: string
  readonly model: string | null
  readonly backend: string | null
  readonly status: number
  readonly outcome: AuditOutcome
  readonly latency_ms: number | null
  readonly ttfb_ms: number | null
  readonly prompt_tokens: number | null
  readonly completion_tokens: number | null
  readonly tokens_partial: boolean
  readonly bytes_in: number | null
  readonly bytes_out: number | null
  readonly error: string | null
  /** Admin actions: what was done, to what. */
  readonly action: string | null
  readonly target: string | null
}

export const AUDIT_COLUMNS = [
  'event_id',
  'time',
  'request_id',
  'key_id',
  'client_ip',
  'user_agent',
  'method',
  'path',
  'model',
  'backend',
  'status',
  'outcome',
  'latency_ms',
  'ttfb_ms',
  'prompt_tokens',
  'completion_tokens',
  'tokens_partial',
  'bytes_in',
  'bytes_out',
  'error',
  'action',
  'target',
] as const satisfies ReadonlyArray<keyof AuditEvent>

export interface AuditQuery {
  readonly keyId?: string
  readonly model?: string
  readonly status?: number
  readonly outcome?: AuditOutcome
  /** Epoch ms, inclusive. */
  readonly from?: number
  /** Epoch ms, exclusive. */
  readonly to?: number
  readonly limit: number
  readonly cursor?: string
}

export interface UsageQuery {
  readonly from: number
  readonly to: number
  readonly keyId?: string
}

export interface UsageRow {
  readonly day: string
  readonly key_id: string | null
  readonly model: string | null
  /** Every event of the group, then by outcome (SPEC §4.10): answered, failed, left by the client, refused. */
  readonly requests: number
  readonly ok: number
  readonly errors: number
  readonly aborted: number
  readonly rejected: number
  readonly prompt_tokens: number
  readonly completion_tokens: number
}

/**
 * The smallest event id of millisecond `ms` (clamped to the 48 bits an id holds). An event's id is
 * minted from its own time (newEventId(time)), so ids sort as times do and a time range is an id range:
 * the stores index and page by event_id alone, with no separate time index (SPEC §7).
 */
export function eventIdFloor(ms: number): string {
  const hex = Math.min(Math.max(0, Math.floor(ms)), 2 ** 48 - 1)
    .toString(16)
    .padStart(12, '0')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-0000-0000-000000000000`
}

const EVENT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Paging cursor: the last event id of a page, opaque to clients; the next page starts below it. */
export function encodeAuditCursor(eventId: string): string {
  return Buffer.from(eventId).toString('base64url')
}

/** The event id a cursor carries, or undefined when it is not a cursor this gateway issued. */
export function decodeAuditCursor(cursor: string): string | undefined {
  const id = Buffer.from(cursor, 'base64url').toString('utf8')
  return EVENT_ID.test(id) ? id : undefined
}
