// The streaming load client the benchmark runs as a separate process (so it never shares a CPU turn with
// a server); the fixed-rate one is bench/rate.c.
//   bun bench/load.ts stream <url> <count> 0 <authorization>
//     sequential streamed chats; time to first byte, and per-chunk delay from the upstream's
//     `sent_at` stamp (same machine, same clock) to arrival here. STREAM_WARMUP chats go first, at
//     once, and are not measured.
// Prints one JSON object.
import { percentiles } from './stats.ts'

const [mode, url, a, , authorization] = process.argv.slice(2)
const headers = { 'content-type': 'application/json', authorization: authorization ?? '' }
const STREAM = JSON.stringify({ model: 'bench-stream', messages: [{ role: 'user', content: 'hi' }] })

/**
 * Streamed chats not measured, before the measured ones, so that the target's streaming code is warm,
 * as wrk's warm-up makes the non-streamed path: STREAM_WARMUP chats of 200 chunks at once, then
 * STREAM_WARMUP_SHORT short ones (three chunks, no delay) one after another. Without any, the first
 * streams through a gateway ran its streaming path cold (TTFB 5.0, 2.7, 2.5, 1.9, 1.5, then 0.9-1.0
 * ms). With the eight long ones only, the code that sets a stream up had run a few dozen times and
 * was not yet optimised by the JIT: the gateway's TTFB fell from 1.8 to 1.3 ms over four more batches
 * of ten, and was 1.0 after 800 short ones (direct path 0.75 throughout).
 */
const STREAM_WARMUP = 8
const STREAM_WARMUP_SHORT = 500
/**
 * Short streamed chats measured after the warm-up for their time to first byte alone: the two long
 * chats of a round gave 18 first-byte times over nine rounds, whose median moved by half a millisecond
 * from run to run on the same code. Their first line leaves the fake at once and the next 2 ms later,
 * so a gateway relays them as streams (SHORT_STREAM's whole answer comes in one read).
 */
const TTFB_SHORT = 50
const TTFB_STREAM = JSON.stringify({ model: 'bench-ttfb', messages: [{ role: 'user', content: 'hi' }], stream: true })
const SHORT_STREAM = JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true })

/** One short streamed chat, read to its end; its time to first byte goes into `ttfb` when given. False when it failed. */
async function shortStream(target: string, body: string, ttfb?: number[]): Promise<boolean> {
  const started = performance.now()
  const res = await fetch(target, { method: 'POST', headers, body })
  if (!ttfb || !res.body) {
    await res.arrayBuffer()
    return res.status === 200
  }
  let first = true
  for await (const _ of res.body) {
    if (first) ttfb.push(performance.now() - started)
    first = false
  }
  return res.status === 200
}

/** One streamed chat; its TTFB and chunk delays go into the arrays given. False when it failed. */
async function streamOnce(target: string, ttfb: number[], delays: number[]): Promise<boolean> {
  const decoder = new TextDecoder()
  const started = performance.now()
  const res = await fetch(target, { method: 'POST', headers, body: STREAM })
  if (res.status !== 200 || !res.body) {
    await res.arrayBuffer()
    return false
  }
  let first = true
  let carry = ''
  for await (const chunk of res.body) {
    const arrived = performance.timeOrigin + performance.now()
    if (first) {
      ttfb.push(performance.now() - started)
      first = false
    }
    carry += decoder.decode(chunk, { stream: true })
    let nl = carry.indexOf('\n')
    while (nl !== -1) {
      const line = carry.slice(0, nl)
      carry = carry.slice(nl + 1)
      const m = /"sent_at":([\d.]+)/.exec(line)
      if (m) delays.push(arrived - Number(m[1]))
      nl = carry.indexOf('\n')
    }
  }
  return true
}

async function stream(target: string, count: number) {
  const ttfb: number[] = []
  const ttfbLong: number[] = []
  const delays: number[] = []
  const warm = await Promise.all(Array.from({ length: STREAM_WARMUP }, () => streamOnce(target, [], [])))
  let errors = warm.filter((ok) => !ok).length
  for (let i = 0; i < STREAM_WARMUP_SHORT; i++) if (!(await shortStream(target, SHORT_STREAM))) errors++
  for (let i = 0; i < TTFB_SHORT; i++) if (!(await shortStream(target, TTFB_STREAM, ttfb))) errors++
  for (let i = 0; i < count; i++) if (!(await streamOnce(target, ttfbLong, delays))) errors++
  ttfb.push(...ttfbLong)
  // The samples themselves too: the runner pools those of several rounds.
  return { count, errors, ttfb_ms: percentiles(ttfb), chunk_delay_ms: percentiles(delays), samples: { ttfb, ttfbLong, delays } }
}

if (mode !== 'stream') throw new Error('usage: bun bench/load.ts stream <url> <count> 0 <authorization>')
const result = await stream(url as string, Number(a))
process.stdout.write(`${JSON.stringify(result)}\n`)
process.exit(0)
