// SPEC §4.10, §7: audit event ids and the writer's batching, unit-tested (the writer on a real SQLite store).
import { describe, expect, test } from 'bun:test'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type AuditEvent, decodeAuditCursor, encodeAuditCursor, eventIdFloor, newEventId } from '../../src/audit/event.ts'
import { AuditWriter } from '../../src/audit/writer.ts'
import { createLogger } from '../../src/log.ts'
import { createMetrics } from '../../src/metrics/metrics.ts'
import { SqliteStore } from '../../src/store/sqlite.ts'
import { sampleAuditEvent } from '../helpers/audit-events.ts'

describe('audit event ids (SPEC §4.10)', () => {
  test('are RFC 9562 version 7 UUIDs carrying the millisecond time', () => {
    const at = Date.UTC(2026, 10, 25, 12, 0, 0, 123)
    const id = newEventId(at)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16)).toBe(at)
  })

  test('a time range is an id range: the floor of a millisecond sorts below its ids and above the ones before', () => {
    const at = Date.UTC(2026, 10, 26, 12, 0, 0, 5)
    const floor = eventIdFloor(at)
    expect(floor).toBe(
      `${at
        .toString(16)
        .padStart(12, '0')
        .replace(/^(.{8})/, '$1-')}-0000-0000-000000000000`,
    )
    for (let i = 0; i < 100; i++) {
      expect(newEventId(at) >= floor).toBe(true)
      expect(newEventId(at - 1) < floor).toBe(true)
    }
    // Out-of-range bounds (an ISO date before 1970 or past the 48-bit millisecond range) clamp.
    expect(eventIdFloor(-5)).toBe('00000000-0000-0000-0000-000000000000')
    expect(eventIdFloor(8.64e15)).toBe('ffffffff-ffff-0000-0000-000000000000')
  })

  test('paging cursors carry an event id and refuse anything else', () => {
    const id = newEventId()
    expect(decodeAuditCursor(encodeAuditCursor(id))).toBe(id)
    for (const bad of ['', 'abc', encodeAuditCursor('1795694400000:17'), encodeAuditCursor(`${id}'; drop table`)])
      expect(decodeAuditCursor(bad)).toBeUndefined()
  })

  test('sort by time across milliseconds and never repeat', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => newEventId(1_700_000_000_000 + Math.floor(i / 100)))
    expect(new Set(ids).size).toBe(ids.length)
    for (let i = 100; i < ids.length; i += 100) expect((ids[i - 1] as string) < (ids[i] as string)).toBe(true)
  })
})

describe('audit writer batching (SPEC §4.10, §7)', () => {
  /** A real SQLite store that also notes the size of every batch it is given. */
  class CountingStore extends SqliteStore {
    readonly batches: number[] = []
    override async insertAudit(events: readonly AuditEvent[], _opts?: { readonly mayRepeat?: boolean }): Promise<void> {
      this.batches.push(events.length)
      return super.insertAudit(events)
    }
  }

  test('full batches go out back to back; a partial remainder waits for the next flush', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nnz-audit-writer-'))
    const store = new CountingStore(dir)
    await store.migrate()
    const writer = new AuditWriter(store, createLogger({ level: 'error', format: 'json' }), createMetrics(), {
      dataDir: dir,
      bufferSize: 1000,
      batchSize: 10,
    })
    const base = Date.UTC(2026, 10, 26, 12, 0, 0)
    // The 10th event starts a flush; 15 more arrive while its insert is in flight.
    for (let i = 0; i < 25; i++) writer.record(sampleAuditEvent(i, base + i, { key_id: 'k_writer' }))
    await writer.flush()
    expect(store.batches).toEqual([10, 10])
    expect(writer.buffered).toBe(5)
    await writer.flush()
    expect(store.batches).toEqual([10, 10, 5])
    expect(writer.buffered).toBe(0)
    const { items } = await store.queryAudit({ keyId: 'k_writer', limit: 100 })
    expect(items.map((e) => e.request_id).sort()).toEqual(Array.from({ length: 25 }, (_, i) => `req-${i}`).sort())
    await writer.stop(1000)
    await store.close()
  })

  test('a batch whose insert is still under way at shutdown is spilled, and replayed by the next start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nnz-audit-writer-'))
    const store = new HeldStore(dir)
    await store.migrate()
    const log = createLogger({ level: 'error', format: 'json' })
    const writer = new AuditWriter(store, log, createMetrics(), { dataDir: dir, bufferSize: 1000, batchSize: 10 })
    const base = Date.UTC(2026, 11, 8, 2, 0, 0)
    // The 10th event starts a flush whose insert does not answer.
    for (let i = 0; i < 10; i++) writer.record(sampleAuditEvent(i, base + i, { key_id: 'k_held' }))
    expect(writer.buffered).toBe(0)
    await writer.stop(300)
    // Only now does the insert fail: nobody is left to put the batch back anywhere.
    store.fail()
    await Bun.sleep(10)
    const restarted = new SqliteStore(dir)
    const next = new AuditWriter(restarted, log, createMetrics(), { dataDir: dir, bufferSize: 1000, batchSize: 10 })
    await next.flush()
    const { items } = await store.queryAudit({ keyId: 'k_held', limit: 100 })
    expect(items.map((e) => e.request_id).sort()).toEqual(Array.from({ length: 10 }, (_, i) => `req-${i}`).sort())
    await next.stop(1000)
    await Promise.all([restarted.close(), store.close()])
  })
})

/** A real SQLite store whose audit inserts wait until `fail()`, then fail (a store lost at shutdown). */
class HeldStore extends SqliteStore {
  private failNow = () => {}
  private readonly failed = new Promise<void>((resolve) => {
    this.failNow = resolve
  })

  fail(): void {
    this.failNow()
  }

  override async insertAudit(_events: readonly AuditEvent[], _opts?: { readonly mayRepeat?: boolean }): Promise<void> {
    await this.failed
    throw new Error('the store went away')
  }
}
