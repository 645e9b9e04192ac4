// SPEC §7: the benchmark's statistics. The paired throughput ratios carry a sign-test interval for
// their median (bench/RESULTS.md); these pin its order statistics and coverage to the binomial values.
import { describe, expect, test } from 'bun:test'
import { medianInterval, percentiles } from '../../bench/stats.ts'

const ranks = (n: number) => Array.from({ length: n }, (_, i) => i + 1)

describe('medianInterval (sign test)', () => {
  test('nine rounds: the second-lowest to the second-highest, 96.1%', () => {
    expect(medianInterval(ranks(9))).toEqual({ lo: 2, hi: 8, level: 1 - (2 * (1 + 9)) / 2 ** 9 })
  })

  test('seven rounds: only the lowest to the highest reaches 95%', () => {
    expect(medianInterval(ranks(7))).toEqual({ lo: 1, hi: 7, level: 1 - 2 / 2 ** 7 })
    // At 80% the next order statistics qualify: 1 - 2 * (1 + 7) / 128 = 87.5%.
    expect(medianInterval(ranks(7), 0.8)).toEqual({ lo: 2, hi: 6, level: 0.875 })
  })

  test('twenty-four rounds: the 7th to the 18th, 97.7%', () => {
    const below = [1, 24, 276, 2024, 10626, 42504, 134596].reduce((a, b) => a + b, 0) / 2 ** 24
    const interval = medianInterval(ranks(24))
    expect(interval?.lo).toBe(7)
    expect(interval?.hi).toBe(18)
    expect(interval?.level).toBeCloseTo(1 - 2 * below, 12)
  })

  test('too few values for the level: no interval', () => {
    expect(medianInterval(ranks(5))).toBeNull()
    expect(medianInterval([])).toBeNull()
  })

  test('sorts a copy: the input order does not matter and is kept', () => {
    const values = [0.91, 0.62, 0.85, 1.2, 0.77, 0.8, 0.88, 0.7, 0.95]
    const copy = [...values]
    expect(medianInterval(values)).toMatchObject({ lo: 0.7, hi: 0.95 })
    expect(values).toEqual(copy)
  })
})

describe('percentiles (nearest rank)', () => {
  test('p50, p90, p99 and the largest of 1..100', () => {
    expect(percentiles(ranks(100))).toEqual({ n: 100, p50: 51, p90: 91, p99: 100, max: 100 })
  })
})
