// SPEC §4.4 in cluster mode: counters live in Redis and are checked and updated atomically in one
// round trip (a Lua script), so N replicas enforce exactly the key's limit. Concurrency slots are
// leases that expire: a crashed replica cannot leak them; live requests renew theirs.
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { GatewayError } from '../errors.ts'
import type { Logger } from '../log.ts'
import type { Metrics } from '../metrics/metrics.ts'
import type { Limits } from '../store/store.ts'
import { type Admission, type LimitName, limitError, limitHeaders, type RateLimiter, WINDOW_MS, windowOf } from './limiter.ts'

/** A lease lives this long unless renewed; renewals run at a third of it. */
export const LEASE_MS = 15_000

// Redis runs these scripts for every limited request, on the gateway's cores (SPEC §7). Most of what a
// script costs Redis is the machinery around each redis.call, several times the command's own work, so
// the scripts make the fewest calls that keep the counts exact: a window's counter gets its expiry once,
// when it is created; expired leases (of a replica that died) are dropped only when they would turn a
// request away; arguments go to redis.call as strings (a Lua number is formatted with sprintf on every
// call). One script call carries every admit (or every end) of an event-loop turn: one command for the
// client library to encode and one write per turn. And the admits (or ends) of one key in a turn are one
// group, weighed together: one read of the counts and one write of each counter for the group, not for
// each request (bench/RESULTS.md).

// Per group of admits, KEYS: requests counter, tokens counter, lease set; ARGV: rpm, tpm, max_concurrency,
// now, lease expiry, the group's size n, then (with max_concurrency) its n lease ids. Taken one after
// another, the admits of a group are let in up to the first one a limit turns away, and every later one is
// turned away too (nothing in between frees a slot or a request), so a group's answer is how many were let
// in, the limit that stopped the rest ('' when none), and the counts of requests and tokens before the group.
const ADMIT = `
local answers, a = {}, 1
for g = 0, #KEYS / 3 - 1 do
  local requestsKey, tokensKey, leaseSet = KEYS[g * 3 + 1], KEYS[g * 3 + 2], KEYS[g * 3 + 3]
  local rpm, tpm, maxc, n = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 5])
  local now, expiry, firstLease = ARGV[a + 3], ARGV[a + 4], a + 6
  if maxc > 0 then a = firstLease + n else a = firstLease end
  local counts = redis.call('MGET', requestsKey, tokensKey)
  local requests = tonumber(counts[1] or '0')
  local tokens = tonumber(counts[2] or '0')
  local slots, tokensLeft, requestsLeft = n, n, n
  if maxc > 0 then
    slots = maxc - redis.call('ZCARD', leaseSet)
    if slots < n then
      redis.call('ZREMRANGEBYSCORE', leaseSet, '-inf', now)
      slots = maxc - redis.call('ZCARD', leaseSet)
    end
  end
  if tpm > 0 and tokens >= tpm then tokensLeft = 0 end
  if rpm > 0 then requestsLeft = rpm - requests end
  local take = math.max(0, math.min(n, slots, tokensLeft, requestsLeft))
  local which = ''
  if take < n then
    if slots <= take then which = 'concurrency' elseif tokensLeft <= take then which = 'tokens' else which = 'requests' end
  end
  if take > 0 then
    if redis.call('INCRBY', requestsKey, take) == take then redis.call('PEXPIRE', requestsKey, '${WINDOW_MS * 2}') end
    if maxc > 0 then
      local members = {}
      for i = 0, take - 1 do
        members[i * 2 + 1] = expiry
        members[i * 2 + 2] = ARGV[firstLease + i]
      end
      redis.call('ZADD', leaseSet, unpack(members))
      redis.call('PEXPIRE', leaseSet, '${LEASE_MS * 4}')
    end
  end
  answers[g + 1] = {take, which, requests, tokens}
end
return answers
`

// Per group of ends, KEYS: tokens counter, lease set; ARGV: tokens to charge, the number of leases m,
// then the m leases to free. A tokens counter is created by its window's first charge, and gets its
// expiry then.
const FINISH = `
local a = 1
for g = 0, #KEYS / 2 - 1 do
  local charge, m = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  if charge > 0 and redis.call('INCRBY', KEYS[g * 2 + 1], ARGV[a]) == charge then
    redis.call('PEXPIRE', KEYS[g * 2 + 1], '${WINDOW_MS * 2}')
  end
  if m > 0 then redis.call('ZREM', KEYS[g * 2 + 2], unpack(ARGV, a + 2, a + 1 + m)) end
  a = a + 2 + m
end
return 1
`
/** At most this many admits or ends per script call: a call holds Redis for its whole length. */
const PER_CALL = 128

const keys = (keyId: string, window: number) => [
  `nnz:rl:{${keyId}}:r:${window}`,
  `nnz:rl:{${keyId}}:t:${window}`,
  `nnz:rl:{${keyId}}:leases`,
]

type AdmitAnswer = [admitted: number, which: string, requests: number, tokens: number]
/** A group's answer: how many of its admits were let in, the limit that stopped the rest, the counts before. */
type GroupAnswer = [taken: number, which: string, requests: number, tokens: number]
interface PendingAdmit {
  /** requests counter, tokens counter, lease set */
  readonly keys: readonly string[]
  readonly limits: Limits
  readonly now: number
  readonly leaseId: string
  readonly resolve: (answer: AdmitAnswer) => void
  readonly reject: (err: unknown) => void
}
interface PendingEnd {
  /** tokens counter, lease set */
  readonly keys: readonly string[]
  readonly charge: number
  readonly leaseId: string
}
/** A script defined without a fixed key count: the count goes first. */
type Batched = (numberOfKeys: number, ...keysThenArgs: Array<string | number>) => Promise<unknown>
interface LimiterCommands {
  nnzAdmit: Batched
  nnzFinish: Batched
}

/**
 * `items` in groups of the same `group(item)`, in the order each group first appears, each in its own
 * order; then cut into script calls of at most PER_CALL items, a group split across calls if need be.
 */
function callsOf<T>(items: readonly T[], group: (item: T) => string): T[][][] {
  const groups = new Map<string, T[]>()
  for (const item of items) {
    const id = group(item)
    const members = groups.get(id)
    if (members) members.push(item)
    else groups.set(id, [item])
  }
  const calls: T[][][] = []
  let call: T[][] = []
  let size = 0
  for (const members of groups.values()) {
    for (let at = 0; at < members.length; ) {
      if (size === PER_CALL) {
        calls.push(call)
        call = []
        size = 0
      }
      const part = members.slice(at, at + PER_CALL - size)
      call.push(part)
      size += part.length
      at += part.length
    }
  }
  if (call.length > 0) calls.push(call)
  return calls
}

/** One admit script call's arguments: the number of keys, every group's keys, then every group's arguments. */
function admitArgs(groups: readonly PendingAdmit[][]): [number, ...Array<string | number>] {
  const keyList: string[] = []
  const args: Array<string | number> = []
  for (const group of groups) {
    const first = group[0] as PendingAdmit
    const { rpm, tpm, max_concurrency } = first.limits
    // The latest clock of the group: expired leases are those past it, new ones run from it.
    const now = group.reduce((t, a) => Math.max(t, a.now), 0)
    keyList.push(...first.keys)
    args.push(rpm ?? 0, tpm ?? 0, max_concurrency ?? 0, now, now + LEASE_MS, group.length)
    if (max_concurrency) for (const a of group) args.push(a.leaseId)
  }
  return [keyList.length, ...keyList, ...args]
}

/** One finish script call's arguments, likewise: per group the tokens to charge and the leases to free. */
function finishArgs(groups: readonly PendingEnd[][]): [number, ...Array<string | number>] {
  const keyList: string[] = []
  const args: Array<string | number> = []
  for (const group of groups) {
    keyList.push(...(group[0] as PendingEnd).keys)
    const leases = group.filter((e) => e.leaseId).map((e) => e.leaseId)
    args.push(
      group.reduce((n, e) => n + e.charge, 0),
      leases.length,
      ...leases,
    )
  }
  return [keyList.length, ...keyList, ...args]
}

/** The clock is read again from Redis this often (and at every connect). */
export const CLOCK_SYNC_MS = 60_000

export interface RedisLimiterOptions {
  /** Reject instead of admit while Redis is unreachable (SPEC §3 RATE_LIMIT_FAIL_CLOSED). */
  readonly failClosed: boolean
  /** This replica's own clock (tests skew it). */
  readonly localClock?: () => number
  /** Where a clock far off Redis's is reported. */
  readonly log?: Logger
}

/** An offset from Redis's clock this large is worth an operator's look (it is corrected for either way). */
const SKEW_WARN_MS = 1000

export class RedisLimiter implements RateLimiter {
  private readonly leases = new Map<string, string>()
  private readonly renewer: ReturnType<typeof setInterval>
  private readonly clockSync: ReturnType<typeof setInterval>
  private readonly localClock: () => number
  /**
   * Redis's clock minus this replica's, ms. Windows and lease expiries are read on Redis's clock, so
   * replicas whose clocks disagree still count into the same window and do not take each other's live
   * leases for expired (SPEC §4.4: exactly the key's limit, however many replicas).
   */
  private offsetMs = 0
  private skewReported = false
  /** The latest reading of Redis's clock, settled when it is in (tests await it). */
  clockRead: Promise<void> = Promise.resolve()
  /** This turn's admits, its request ends, and the callers holding their answers for those ends. */
  private admits: PendingAdmit[] = []
  private ends: PendingEnd[] = []
  private waiting: Array<() => void> = []
  private scheduled = false

  constructor(
    private readonly redis: Redis,
    private readonly metrics: Metrics,
    private readonly options: RedisLimiterOptions,
  ) {
    this.localClock = options.localClock ?? Date.now
    redis.defineCommand('nnzAdmit', { lua: ADMIT })
    redis.defineCommand('nnzFinish', { lua: FINISH })
    this.renewer = setInterval(() => this.renew(), LEASE_MS / 3)
    ;(this.renewer as { unref?: () => void }).unref?.()
    this.clockSync = setInterval(this.readClock, CLOCK_SYNC_MS)
    ;(this.clockSync as { unref?: () => void }).unref?.()
    redis.on('ready', this.readClock)
    if (redis.status === 'ready') this.readClock()
  }

  stop(): void {
    clearInterval(this.renewer)
    clearInterval(this.clockSync)
    this.redis.off('ready', this.readClock)
  }

  /** Redis's clock minus this replica's, ms, as last read (a gauge, SPEC §4.12). */
  get clockOffsetMs(): number {
    return this.offsetMs
  }

  /** Now, on Redis's clock as last read. */
  now(): number {
    return this.localClock() + this.offsetMs
  }

  /**
   * Reads Redis's clock (`TIME`) and keeps its offset from this replica's, taking the read to have
   * happened halfway through the round trip. A failed read keeps the offset it had.
   */
  private readonly readClock = (): void => {
    if (this.redis.status !== 'ready') return
    const sent = this.localClock()
    this.clockRead = this.redis.time().then(
      ([seconds, micros]) => {
        const received = this.localClock()
        this.offsetMs = Math.round(Number(seconds) * 1000 + Number(micros) / 1000 - (sent + received) / 2)
        const skewed = Math.abs(this.offsetMs) >= SKEW_WARN_MS
        if (skewed && !this.skewReported)
          this.options.log?.warn("this replica's clock is off Redis's; rate-limit windows and leases follow Redis's", {
            offset_ms: this.offsetMs,
          })
        this.skewReported = skewed
      },
      () => undefined,
    )
  }

  async admit(keyId: string, limits: Limits, now = this.now()): Promise<Admission> {
    const leaseId = limits.max_concurrency ? randomUUID() : ''
    const counters = keys(keyId, windowOf(now))
    const [, tokenKey, set] = counters as [string, string, string]
    let answer: AdmitAnswer
    try {
      if (this.redis.status !== 'ready') throw new Error('redis not connected')
      answer = await new Promise<AdmitAnswer>((resolve, reject) => {
        this.schedule()
        this.admits.push({ keys: counters, limits, now, leaseId, resolve, reject })
      })
    } catch {
      // SPEC §4.4: Redis unreachable: admit and count it, or reject when configured to fail closed.
      if (this.options.failClosed)
        throw new GatewayError('unavailable', 'rate limiter unavailable (Redis unreachable); retry shortly', { 'retry-after': '2' })
      this.metrics.rateLimitFailOpen.inc()
      return { headers: {}, finish: () => undefined }
    }
    const [allowed, which, requests, tokens] = answer
    const headers = limitHeaders(limits, Number(requests), Number(tokens), now)
    if (!allowed) throw limitError(which as LimitName, limits, headers, now)
    if (leaseId) this.leases.set(leaseId, set)
    let finished = false
    return {
      headers,
      // One step at the end of a request: free the lease and charge the tokens together.
      finish: (used, beforeAnswer) => {
        if (finished) return
        finished = true
        if (leaseId) this.leases.delete(leaseId)
        const charge = limits.tpm && used > 0 ? used : 0
        if (!leaseId && !charge) return
        const end: PendingEnd = { keys: [tokenKey, set], charge, leaseId }
        if (beforeAnswer) return this.endThisTurn(end)
        // Otherwise written at once (the client library's auto-pipelining would hold it behind the batch
        // in flight).
        if (this.redis.status === 'ready') this.commands.nnzFinish(...finishArgs([[end]])).catch(() => {})
        return undefined
      },
    }
  }

  private get commands(): LimiterCommands {
    return this.redis as unknown as LimiterCommands
  }

  /**
   * SPEC §4.4, §7: the ends of the requests answered in one event-loop turn go to Redis in one write, at
   * the turn's end, and only then are their answers let go. One write per request cost the event loop a
   * quarter of its time at saturation (a send and the wake-up of Redis each time).
   */
  private endThisTurn(end: PendingEnd): Promise<void> {
    this.schedule()
    this.ends.push(end)
    return new Promise<void>((resolve) => this.waiting.push(resolve))
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(this.writeTurn)
  }

  /**
   * One pipeline per turn: the ends first (their slots are free before this turn's admits are weighed),
   * then the admits, each kind grouped by key (and window, and limits) in as few script calls as
   * PER_CALL allows.
   */
  private readonly writeTurn = (): void => {
    this.scheduled = false
    const { admits, ends, waiting } = this
    this.admits = []
    this.ends = []
    this.waiting = []
    if (this.redis.status !== 'ready') {
      // Not connected: the ends fail open (their leases expire on their own), the admits as admit says.
      for (const resolve of waiting) resolve()
      const down = new Error('redis not connected')
      for (const a of admits) a.reject(down)
      return
    }
    const pipeline = this.redis.pipeline() as unknown as LimiterCommands & { exec(): Promise<Array<[Error | null, unknown]> | null> }
    const endCalls = callsOf(ends, (e) => `${e.keys[0]} ${e.keys[1]}`)
    for (const call of endCalls) pipeline.nnzFinish(...finishArgs(call))
    const admitCalls = callsOf(admits, (a) => `${a.keys[0]} ${a.limits.rpm ?? 0} ${a.limits.tpm ?? 0} ${a.limits.max_concurrency ?? 0}`)
    for (const call of admitCalls) pipeline.nnzAdmit(...admitArgs(call))
    // A manual pipeline is written now; the auto-pipeline would wait for the batch in flight.
    const sent = pipeline.exec()
    for (const resolve of waiting) resolve()
    sent.then(
      (results) =>
        admitCalls.forEach((call, c) => {
          const [err, answers] = results?.[endCalls.length + c] ?? [null, null]
          call.forEach((group, g) => {
            const answer = (answers as GroupAnswer[] | null)?.[g]
            if (!answer || err) {
              for (const a of group) a.reject(err ?? new Error('no answer from redis'))
              return
            }
            // The first `taken` were let in, each counted after those before it; the rest were not.
            const [taken, which, requests, tokens] = answer
            group.forEach((a, i) => {
              a.resolve(
                i < taken
                  ? [1, '', Number(requests) + i + 1, Number(tokens)]
                  : [0, which, Number(requests) + Number(taken), Number(tokens)],
              )
            })
          })
        }),
      (err) => {
        for (const a of admits) a.reject(err)
      },
    )
  }

  /** Live requests keep their leases; one pipeline per renewal round. */
  private renew(): void {
    if (this.leases.size === 0 || this.redis.status !== 'ready') return
    const until = this.now() + LEASE_MS
    const pipeline = this.redis.pipeline()
    for (const [lease, set] of this.leases) pipeline.zadd(set, 'XX', until, lease)
    pipeline.exec().catch(() => {})
  }
}
