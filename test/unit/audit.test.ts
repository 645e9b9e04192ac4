// SPEC §4.10, §7: audit event ids, unit-tested.
import { describe, expect, test } from 'bun:test'
import { newEventId } from '../../src/audit/event.ts'

describe('audit event ids (SPEC §4.10)', () => {
  test('are RFC 9562 version 7 UUIDs carrying the millisecond time', () => {
    const at = Date.UTC(2026, 10, 25, 12, 0, 0, 123)
    const id = newEventId(at)
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    expect(Number.parseInt(id.replaceAll('-', '').slice(0, 12), 16)).toBe(at)
  })

  test('sort by time across milliseconds and never repeat', () => {
    const ids = Array.from({ length: 1000 }, (_, i) => newEventId(1_700_000_000_000 + Math.floor(i / 100)))
    expect(new Set(ids).size).toBe(ids.length)
    for (let i = 100; i < ids.length; i += 100) expect((ids[i - 1] as string) < (ids[i] as string)).toBe(true)
  })
})
