// The cached ISO time used by log lines, unit-tested.
import { describe, expect, test } from 'bun:test'
import { isoTime } from '../../src/shared/time.ts'

describe('isoTime', () => {
  test('equals toISOString, across milliseconds, seconds and days, called in any order', () => {
    const times = [0, 1, 9, 10, 99, 100, 999, 1000, 1_700_000_000_000, 1_700_000_000_007, 1_700_000_000_999, 1_700_000_001_000]
    times.push(Date.UTC(2026, 11, 31, 23, 59, 59, 999), Date.UTC(2027, 0, 1), Date.now(), 1_700_000_000_500)
    for (const ms of times) expect(isoTime(ms)).toBe(new Date(ms).toISOString())
  })
})
