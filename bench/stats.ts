// Percentiles as the benchmark reports them, shared by the load clients and the runner.

export interface Percentiles {
  readonly n: number
  readonly p50: number
  readonly p90: number
  readonly p99: number
  readonly max: number
}

/** The value below which `p`% of the samples fall (nearest rank), for p50, p90 and p99, and the largest. */
export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((x, y) => x - y)
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN
  return { n: sorted.length, p50: at(50), p90: at(90), p99: at(99), max: sorted[sorted.length - 1] ?? Number.NaN }
}

/**
 * The sign test's rank for a median's interval over `n` values: the interval runs from the k-th smallest
 * to the k-th largest, for the largest k whose interval still holds the true median with probability
 * ≥ `level` (its coverage, returned), were the values independent draws. k is 0 when no interval does.
 */
export function signTestRank(n: number, level = 0.95): { k: number; level: number } {
  // P(Binomial(n, 1/2) < k): the chance that fewer than k values fall below the median.
  let below = 0
  let k = 0
  let choose = 1 // C(n, k)
  while (k < n / 2) {
    const p = choose / 2 ** n
    if (1 - 2 * (below + p) < level) break
    below += p
    choose = (choose * (n - k)) / (k + 1)
    k++
  }
  return { k, level: 1 - 2 * below }
}

/** The distribution-free interval for the median of `values` (see signTestRank); null when there are too few. */
export function medianInterval(values: readonly number[], level = 0.95): { lo: number; hi: number; level: number } | null {
  const rank = signTestRank(values.length, level)
  if (rank.k === 0) return null
  const sorted = [...values].sort((x, y) => x - y)
  return { lo: sorted[rank.k - 1] as number, hi: sorted[values.length - rank.k] as number, level: rank.level }
}
