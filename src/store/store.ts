// The key store and audit log behind one small interface with two real implementations (SPEC §3.1):
// SQLite (embedded) and Postgres (cluster). Services see records, never SQL.
import type { AuditEvent, AuditQuery, UsageQuery, UsageRow } from '../audit/event.ts'
import type { Scope } from '../proxy/endpoints.ts'

export interface Limits {
  readonly rpm?: number
  readonly tpm?: number
  readonly max_concurrency?: number
}

export interface KeyRecord {
  readonly id: string
  readonly hash: string
  readonly name: string
  readonly scopes: readonly Scope[]
  readonly allowedModels: readonly string[]
  readonly limits: Limits
  readonly metadata: Readonly<Record<string, unknown>>
  /** Epoch milliseconds; null = never. */
  readonly expiresAt: number | null
  readonly createdAt: number
  readonly updatedAt: number
  readonly revokedAt: number | null
  readonly lastUsedAt: number | null
}

export type KeyState = 'active' | 'revoked' | 'expired'

export function keyState(record: Pick<KeyRecord, 'revokedAt' | 'expiresAt'>, now = Date.now()): KeyState {
  if (record.revokedAt !== null) return 'revoked'
  if (record.expiresAt !== null && record.expiresAt <= now) return 'expired'
  return 'active'
}

/** Fields a PATCH may change; `hash` only through rotation. */
export type KeyChanges = Partial<Pick<KeyRecord, 'name' | 'scopes' | 'allowedModels' | 'limits' | 'metadata' | 'expiresAt' | 'hash'>>

export interface KeyListQuery {
  readonly name?: string
  readonly state?: KeyState
  readonly limit: number
  /** Opaque cursor from a previous page. */
  readonly cursor?: string
}

export interface KeyPage {
  readonly items: KeyRecord[]
  readonly nextCursor: string | null
}

export interface Store {
  readonly kind: 'sqlite' | 'postgres'
  /** Applies pending migrations; safe when several replicas start at once. */
  migrate(): Promise<void>
  ping(): Promise<void>
  close(): Promise<void>

  insertKey(record: KeyRecord): Promise<void>
  getKey(id: string): Promise<KeyRecord | undefined>
  listKeys(query: KeyListQuery): Promise<KeyPage>
  /** Applies changes and, in the same transaction, announces the change to every replica (SPEC §4.5). */
  updateKey(id: string, changes: KeyChanges): Promise<KeyRecord | undefined>
  revokeKey(id: string): Promise<KeyRecord | undefined>
  countKeys(): Promise<number>
  /** Batched `last_used_at` updates (never one write per request). */
  touchKeys(lastUsed: ReadonlyMap<string, number>): Promise<void>
  /**
   * Multi-row insert; events already stored (same event_id) are skipped, so a retried batch is safe.
   * `mayRepeat` says the batch may have been stored before (a retry, a spill replay): a store may take
   * a faster path for batches that cannot hold duplicates.
   */
  insertAudit(events: readonly AuditEvent[], opts?: { readonly mayRepeat?: boolean }): Promise<void>
  queryAudit(query: AuditQuery): Promise<{ items: AuditEvent[]; nextCursor: string | null }>
  usage(query: UsageQuery): Promise<UsageRow[]>
  /** Deletes events older than `before` (epoch ms); returns how many. */
  pruneAudit(before: number): Promise<number>
  /** Calls back with the id of every key changed elsewhere; returns a stop function. */
  watchKeys(onChange: (id: string) => void, onResync: () => void): Promise<() => Promise<void>>
}

export function encodeCursor(createdAt: number, id: string): string {
  return Buffer.from(`${createdAt}:${id}`).toString('base64url')
}

export function decodeCursor(cursor: string): { createdAt: number; id: string } | undefined {
  const text = Buffer.from(cursor, 'base64url').toString('utf8')
  const colon = text.indexOf(':')
  const createdAt = Number(text.slice(0, colon))
  const id = text.slice(colon + 1)
  if (colon === -1 || !Number.isFinite(createdAt) || !/^[0-9A-Za-z]{12}$/.test(id)) return undefined
  return { createdAt, id }
}

export const KEY_CHANNEL = 'neuronetz_keys'
