// SPEC §4.4, §7: the Redis limiter sends the admits of one event-loop turn in one script call, grouped by
// key, and each group is weighed at once (one read and one write of each counter). The answers must be
// exactly those of the admits taken one after another: which are let in, the limit that turns the rest
// away, and each answer's remaining counts. Against a real Redis.
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { Redis } from 'ioredis'
import { GatewayError } from '../src/errors.ts'
import { type Admission, WINDOW_MS, windowOf } from '../src/limits/limiter.ts'
import { RedisLimiter } from '../src/limits/redis.ts'
import { createLogger } from '../src/log.ts'
import { createMetrics } from '../src/metrics/metrics.ts'
import type { Limits } from '../src/store/store.ts'
import { freshRedis } from './helpers/infra.ts'

let redis: Redis
let limiter: RedisLimiter
beforeAll(async () => {
  redis = new Redis(await freshRedis(7))
  await redis.ping()
  limiter = new RedisLimiter(redis, createMetrics(), { failClosed: false })
})
afterAll(() => {
  limiter.stop()
  redis.disconnect()
})

/** What one admit came to: 'ok' with its remaining requests, or the limit that refused it. */
async function outcome(admitted: Promise<Admission>): Promise<string> {
  try {
    const { headers } = await admitted
    return `ok ${headers['x-ratelimit-remaining-requests'] ?? '-'}`
  } catch (err) {
    if (!(err instanceof GatewayError)) throw err
    return `refused ${err.headers['x-ratelimit-exceeded']} ${err.headers['x-ratelimit-remaining-requests'] ?? '-'}`
  }
}

/** `n` admits of `keyId` in one event-loop turn, so in one script call. */
function oneTurn(keyId: string, limits: Limits, n: number, now: number): Promise<string[]> {
  return Promise.all(Array.from({ length: n }, () => outcome(limiter.admit(keyId, limits, now))))
}

/** A time in the middle of a window, so that no test's turn straddles two. */
const midWindow = () => windowOf(Date.now()) * WINDOW_MS + WINDOW_MS / 2

describe('the Redis limiter, admits grouped by key in one turn (SPEC §4.4)', () => {
  test('rpm: of eight admits in one turn, the first five get in, counted one after another; the rest are refused', async () => {
    const now = midWindow()
    expect(await oneTurn('k_group_rpm', { rpm: 5 }, 8, now)).toEqual([
      'ok 4',
      'ok 3',
      'ok 2',
      'ok 1',
      'ok 0',
      'refused requests 0',
      'refused requests 0',
      'refused requests 0',
    ])
    expect(await redis.get(`nnz:rl:{k_group_rpm}:r:${windowOf(now)}`)).toBe('5')
  })

  test('max_concurrency: three of five get a lease; an end frees one for the next turn', async () => {
    const now = midWindow()
    const limits = { rpm: 100, max_concurrency: 3 }
    const first = Array.from({ length: 5 }, () => limiter.admit('k_group_conc', limits, now))
    const outcomes = await Promise.all(first.map(outcome))
    expect(outcomes).toEqual(['ok 99', 'ok 98', 'ok 97', 'refused concurrency 97', 'refused concurrency 97'])
    expect(await redis.zcard('nnz:rl:{k_group_conc}:leases')).toBe(3)
    const admission = (await first[0]) as Admission
    await admission.finish(0, true)
    expect(await oneTurn('k_group_conc', limits, 2, now)).toEqual(['ok 96', 'refused concurrency 96'])
    expect(await redis.zcard('nnz:rl:{k_group_conc}:leases')).toBe(3)
  })

  test('tpm: charged tokens summed over one turn’s ends; a spent budget refuses the whole next group', async () => {
    const now = midWindow()
    const limits = { tpm: 100 }
    const admitted = await Promise.all(Array.from({ length: 4 }, () => limiter.admit('k_group_tpm', limits, now)))
    await Promise.all(admitted.map((a) => a.finish(30, true)))
    expect(await redis.get(`nnz:rl:{k_group_tpm}:t:${windowOf(now)}`)).toBe('120')
    expect(await oneTurn('k_group_tpm', limits, 3, now)).toEqual(['refused tokens -', 'refused tokens -', 'refused tokens -'])
  })

  test('several keys in one turn, one of them in more admits than one script call takes: each exact', async () => {
    const now = midWindow()
    const [big, small, other] = await Promise.all([
      oneTurn('k_group_big', { rpm: 200 }, 300, now),
      oneTurn('k_group_small', { rpm: 2, max_concurrency: 10 }, 4, now),
      oneTurn('k_group_other', { rpm: 10 }, 3, now),
    ])
    expect(big.filter((o) => o.startsWith('ok'))).toHaveLength(200)
    // Taken in order across the calls: every admit after the 200th is refused.
    expect(big.slice(0, 200).every((o) => o.startsWith('ok'))).toBe(true)
    expect(big[199]).toBe('ok 0')
    expect(small).toEqual(['ok 1', 'ok 0', 'refused requests 0', 'refused requests 0'])
    expect(other).toEqual(['ok 9', 'ok 8', 'ok 7'])
  })
})

describe('replicas whose clocks disagree count on Redis’s clock (SPEC §4.4)', () => {
  // Two replicas, each its own connection; the second's clock runs 90 s ahead of the first's (and of
  // Redis's, which is this machine's): on its own clock it would count into the next window, and take
  // the first's live leases (15 s) for expired ones.
  const AHEAD_MS = 90_000
  let redisA: Redis
  let redisB: Redis
  let a: RedisLimiter
  let b: RedisLimiter
  const logged: string[] = []
  const log = createLogger({ level: 'info', format: 'json', sink: (chunk) => logged.push(chunk) })
  beforeAll(async () => {
    const url = await freshRedis(7)
    redisA = new Redis(url)
    redisB = new Redis(url)
    await Promise.all([redisA.ping(), redisB.ping()])
    a = new RedisLimiter(redisA, createMetrics(), { failClosed: false, log })
    b = new RedisLimiter(redisB, createMetrics(), { failClosed: false, log, localClock: () => Date.now() + AHEAD_MS })
    await Promise.all([a.clockRead, b.clockRead])
    log.flush()
  })
  afterAll(() => {
    for (const limiter of [a, b]) limiter.stop()
    for (const client of [redisA, redisB]) client.disconnect()
  })

  /**
   * Waits, if need be, until Redis's clock has at least 2 s left in its window (the test's admits take
   * milliseconds). The wait can take that long: the test that calls this has a timeout to match.
   */
  async function insideOneWindow(): Promise<void> {
    const left = (windowOf(a.now()) + 1) * WINDOW_MS - a.now()
    if (left < 2_000) await Bun.sleep(left + 100)
  }

  test('each replica reads the time from Redis: the one 90 s ahead agrees with Redis to well within a second', async () => {
    // Bounded generously (a loaded machine may be slow to answer); what matters is the 90 s skew gone.
    const [seconds, micros] = await redisA.time()
    const redisNow = Number(seconds) * 1000 + Number(micros) / 1000
    expect(Math.abs(a.now() - redisNow)).toBeLessThan(500)
    expect(Math.abs(b.now() - redisNow)).toBeLessThan(500)
    expect(Math.abs(b.clockOffsetMs + AHEAD_MS)).toBeLessThan(500)
    // The operator hears of the skewed one, once, and not of the other.
    const warnings = logged.flatMap((chunk) => chunk.trim().split('\n')).map((line) => JSON.parse(line))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({
      level: 'warn',
      msg: "this replica's clock is off Redis's; rate-limit windows and leases follow Redis's",
    })
    expect(Math.abs(warnings[0].offset_ms + AHEAD_MS)).toBeLessThan(500)
  })

  test('rpm=3 hit from both replicas admits exactly 3 in the window', async () => {
    await insideOneWindow()
    const limits = { rpm: 3 }
    const outcomes = await Promise.all([
      ...Array.from({ length: 3 }, () => outcome(a.admit('k_skew_rpm', limits))),
      ...Array.from({ length: 3 }, () => outcome(b.admit('k_skew_rpm', limits))),
    ])
    expect(outcomes.filter((o) => o.startsWith('ok'))).toHaveLength(3)
    expect(outcomes.filter((o) => o === 'refused requests 0')).toHaveLength(3)
    expect(await redisA.get(`nnz:rl:{k_skew_rpm}:r:${windowOf(a.now())}`)).toBe('3')
  }, 10_000)

  test('max_concurrency=1: the replica whose clock runs ahead does not take the other’s live lease for expired', async () => {
    const limits = { max_concurrency: 1 }
    const held = await a.admit('k_skew_conc', limits)
    expect(await outcome(b.admit('k_skew_conc', limits))).toBe('refused concurrency -')
    expect(await redisA.zcard('nnz:rl:{k_skew_conc}:leases')).toBe(1)
    await held.finish(0, true)
    expect(await outcome(b.admit('k_skew_conc', limits))).toBe('ok -')
  })
})
