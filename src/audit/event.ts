// SPEC §4.10: what one audit event holds. Prompts and outputs are never part of it.
export type AuditOutcome = 'ok' | 'error' | 'aborted' | 'rejected'

/**
 * A new event id: a UUID version 7 (RFC 9562), the millisecond time in its first 48 bits and 74 random
 * bits after. Time-ordered ids land at the right edge of the unique index instead of at random pages:
 * SQLite inserts about 5x faster than with random (version 4) ids (SPEC §7, bench/RESULTS.md).
 */
export function newEventId(now = Date.now()): string {
  const random = crypto.randomUUID()
  const ms = now.toString(16).padStart(12, '0')
  return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7${random.slice(15)}`
}

export interface AuditEvent {
  /** Unique per event (a UUID v7, see newEventId): makes a retried batch insert idempotent. */
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

export interface StoredAuditEvent extends AuditEvent {
  readonly seq: number
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
  readonly requests: number
  readonly prompt_tokens: number
  readonly completion_tokens: number
}

export function encodeAuditCursor(time: number, seq: number): string {
  return Buffer.from(`${time}:${seq}`).toString('base64url')
}

export function decodeAuditCursor(cursor: string): { time: number; seq: number } | undefined {
  const [t, s] = Buffer.from(cursor, 'base64url').toString('utf8').split(':')
  const time = Number(t)
  const seq = Number(s)
  return Number.isFinite(time) && Number.isInteger(seq) ? { time, seq } : undefined
}
