// SPEC §4.9: token metering from the response stream without altering it. The counts sit at the end
// of every answer (the `done:true` line, `prompt_eval_count`, OpenAI's `usage`), so the tap keeps only
// a small tail window and a line count: no per-chunk decoding or JSON parsing.
import type { StreamTap } from './relay.ts'

export interface Usage {
  readonly prompt: number | null
  readonly completion: number | null
  /** Counts seen so far of a stream that did not finish (SPEC §4.9). */
  readonly partial: boolean
}

/**
 * Where the counts are: `native` the `done:true` line; `openai` a `usage` object at the end; `anthropic`
 * and `responses` event streams that name input tokens early too (`message_start`, `response.created`),
 * so only their closing event makes a count final.
 */
export type MeterKind = 'native' | 'openai' | 'anthropic' | 'responses' | 'none'

const TAIL = 4096
const MAX_COUNT = 2 ** 31 - 1
const NEWLINE = 10

const encoder = new TextEncoder()
const KEYS = new Map<string, Uint8Array>()
const EMPTY = new Uint8Array(0)
const DONE = encoder.encode('"done":')
const TRUE = encoder.encode('true')
/** The events that close a stream of each event-stream kind, as they end in its JSON (`"type":"…"`). */
const CLOSING: Partial<Record<MeterKind, readonly Uint8Array[]>> = {
  anthropic: [encoder.encode('message_stop"')],
  responses: [encoder.encode('response.completed"'), encoder.encode('response.incomplete"'), encoder.encode('response.failed"')],
}

/** `"field":` as bytes, made once per field. */
function keyOf(field: string): Uint8Array {
  let key = KEYS.get(field)
  if (!key) {
    key = encoder.encode(`"${field}":`)
    KEYS.set(field, key)
  }
  return key
}

// The readers below take the tail window as a range of the tap's buffer rather than a view of it: a
// view (`subarray`) of a small typed array makes the engine move its bytes into an ArrayBuffer of their
// own, about four allocations for every answer metered.

/** Whether `needle` stands in `hay` at `at`, before `end`. */
function matchesAt(hay: Uint8Array, end: number, needle: Uint8Array, at: number): boolean {
  if (at + needle.length > end) return false
  for (let j = 0; j < needle.length; j++) if (hay[at + j] !== needle[j]) return false
  return true
}

/** Where `needle` last starts in `hay[start..end)` at or before `from`, or -1. */
function lastIndexOf(hay: Uint8Array, start: number, end: number, needle: Uint8Array, from: number): number {
  for (let i = Math.min(from, end - needle.length); i >= start; i--) if (matchesAt(hay, end, needle, i)) return i
  return -1
}

/** The first index at or after `i`, before `end`, that is not JSON whitespace. */
function skipSpace(bytes: Uint8Array, end: number, i: number): number {
  while (i < end) {
    const b = bytes[i]
    if (b !== 32 && b !== 9 && b !== 10 && b !== 13) break
    i++
  }
  return i
}

/**
 * The number after the last `"field":` in `bytes[start..end)` (JSON whitespace allowed between), read
 * in place: no decoding, no regular expression, nothing allocated per answer.
 */
function lastNumber(bytes: Uint8Array, start: number, end: number, field: string): number | undefined {
  const key = keyOf(field)
  for (let at = lastIndexOf(bytes, start, end, key, end); at !== -1; at = lastIndexOf(bytes, start, end, key, at - 1)) {
    let i = skipSpace(bytes, end, at + key.length)
    let value = 0
    const first = i
    for (; i < end && (bytes[i] as number) >= 48 && (bytes[i] as number) <= 57; i++) value = value * 10 + ((bytes[i] as number) - 48)
    // The audit columns are 32-bit integers: an absurd count from a broken upstream must not make the
    // event unstorable (a batch that can never be inserted would hold up the audit log).
    if (i > first) return Math.min(value, MAX_COUNT)
  }
  return undefined
}

/** Whether some `"done":` in `bytes[start..end)` is followed by `true`. */
function sawDone(bytes: Uint8Array, start: number, end: number): boolean {
  for (let at = lastIndexOf(bytes, start, end, DONE, end); at !== -1; at = lastIndexOf(bytes, start, end, DONE, at - 1)) {
    if (matchesAt(bytes, end, TRUE, skipSpace(bytes, end, at + DONE.length))) return true
  }
  return false
}

export class MeterTap implements StreamTap {
  /** The last TAIL bytes seen end at `len`; the buffer grows once to twice TAIL and is then reused. */
  private buf = EMPTY
  private len = 0
  private lines = 0
  /** SSE answers: events seen (blank lines: a newline right after a newline, across chunks too). */
  private readonly sse: boolean
  private events = 0
  private lastByte = 0
  /** Event streams: the input count their first events name, for a closing event that leaves it out. */
  private readonly closing: readonly Uint8Array[] | undefined
  private headPending: boolean
  private headPrompt: number | undefined
  private seen = 0

  constructor(private readonly kind: MeterKind) {
    this.sse = kind !== 'native'
    this.closing = CLOSING[kind]
    this.headPending = this.closing !== undefined
  }

  chunk(chunk: Uint8Array): Uint8Array {
    for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, i + 1)) {
      this.lines++
      if (this.sse && (i === 0 ? this.lastByte : chunk[i - 1]) === NEWLINE) this.events++
    }
    if (this.sse && chunk.byteLength > 0) this.lastByte = chunk[chunk.byteLength - 1] as number
    if (this.headPending) this.readHead(chunk)
    const n = chunk.byteLength
    if (n >= TAIL) {
      if (this.buf.byteLength < 2 * TAIL) this.buf = new Uint8Array(2 * TAIL)
      this.buf.set(chunk.subarray(n - TAIL))
      this.len = TAIL
      return chunk
    }
    if (this.len + n > this.buf.byteLength) {
      if (this.buf.byteLength < 2 * TAIL) {
        // A first chunk gets an exact copy (a non-streamed answer is one chunk); a stream's second
        // chunk moves the window into the buffer it keeps from then on: no allocation per chunk.
        const next = new Uint8Array(this.len === 0 ? n : 2 * TAIL)
        next.set(this.buf.subarray(0, this.len))
        this.buf = next
      }
      if (this.len + n > this.buf.byteLength) {
        const keep = TAIL - n
        this.buf.copyWithin(0, this.len - keep, this.len)
        this.len = keep
      }
    }
    this.buf.set(chunk, this.len)
    this.len += n
    return chunk
  }

  end(): undefined {
    return undefined
  }

  private readHead(chunk: Uint8Array): void {
    this.headPrompt = lastNumber(chunk, 0, chunk.byteLength, 'input_tokens')
    this.seen += chunk.byteLength
    this.headPending = this.headPrompt === undefined && this.seen < TAIL
  }

  usage(streamed: boolean): Usage {
    if (this.kind === 'none') return { prompt: null, completion: null, partial: false }
    const bytes = this.buf
    const start = Math.max(0, this.len - TAIL)
    const end = this.len
    if (this.kind === 'native') {
      // UPSTREAM §2: every metric is omitted when zero, so a final answer without a count means 0.
      const final = !streamed || sawDone(bytes, start, end)
      const prompt = lastNumber(bytes, start, end, 'prompt_eval_count')
      const completion = lastNumber(bytes, start, end, 'eval_count')
      if (final && (prompt !== undefined || completion !== undefined || streamed))
        return { prompt: prompt ?? 0, completion: completion ?? 0, partial: false }
      // Unfinished: one streamed line is one token.
      return { prompt: null, completion: streamed ? Math.max(0, this.lines) : null, partial: true }
    }
    const prompt = lastNumber(bytes, start, end, 'prompt_tokens') ?? lastNumber(bytes, start, end, 'input_tokens') ?? this.headPrompt
    const completion = lastNumber(bytes, start, end, 'completion_tokens') ?? lastNumber(bytes, start, end, 'output_tokens')
    const closing = this.closing
    const final = !streamed || closing === undefined || closing.some((name) => lastIndexOf(bytes, start, end, name, end) !== -1)
    if (prompt !== undefined && final) return { prompt, completion: completion ?? 0, partial: false }
    // Unfinished: one event is one token (an event stream's input count, sent early, is kept).
    return { prompt: prompt ?? null, completion: streamed ? this.events : null, partial: true }
  }
}

/**
 * SPEC §4.9: for streamed /v1 completions the gateway asks upstream for `include_usage`; when the
 * client did not, this removes that extra `choices: []` usage event. Events are re-framed on `\n\n`.
 */
export class UsageChunkStripper implements StreamTap {
  private carry = ''
  private readonly encoder = new TextEncoder()
  // Its own decoder: in streaming mode a decoder holds a split character's first bytes, which must not
  // leak into another stream's text.
  private readonly decoder = new TextDecoder()

  chunk(chunk: Uint8Array): Uint8Array {
    this.carry += this.decoder.decode(chunk, { stream: true })
    const cut = this.carry.lastIndexOf('\n\n')
    if (cut === -1) return new Uint8Array(0)
    const complete = this.carry.slice(0, cut + 2)
    this.carry = this.carry.slice(cut + 2)
    return this.encoder.encode(
      complete
        .split(/(?<=\n\n)/)
        .filter((event) => !isUsageOnly(event))
        .join(''),
    )
  }

  end(): Uint8Array | undefined {
    const rest = this.carry
    this.carry = ''
    return rest && !isUsageOnly(rest) ? this.encoder.encode(rest) : undefined
  }
}

function isUsageOnly(event: string): boolean {
  return event.startsWith('data: {') && /"choices":\s*\[\s*\]/.test(event) && event.includes('"usage"')
}

/** Runs taps in order: each sees what the one before passed on. */
export function chainTaps(first: StreamTap, second: StreamTap): StreamTap {
  return {
    chunk: (c) => second.chunk(first.chunk(c)),
    end: () => {
      const a = first.end()
      const b = a && a.byteLength > 0 ? second.chunk(a) : undefined
      const c = second.end()
      if (!b || b.byteLength === 0) return c
      if (!c || c.byteLength === 0) return b
      const out = new Uint8Array(b.byteLength + c.byteLength)
      out.set(b)
      out.set(c, b.byteLength)
      return out
    },
  }
}

const INCLUDE_USAGE = new TextEncoder().encode('"stream_options":{"include_usage":true}')

/**
 * Adds `stream_options.include_usage` to a streamed /v1 completion request, or answers undefined when
 * the body is to go as sent: the client asked for usage itself, or its `stream_options` is not an
 * object (a number, a string, a list) and cannot be added to, so Ollama refuses it in its own words.
 * When the body has no `stream_options`, the field is spliced in after the opening brace and every
 * other byte stays as sent; otherwise the object is re-serialised with the flag set.
 */
export function withIncludeUsage(bytes: Uint8Array<ArrayBuffer>, json: Record<string, unknown>): Uint8Array<ArrayBuffer> | undefined {
  const options = json.stream_options
  if (options !== undefined && options !== null && (typeof options !== 'object' || Array.isArray(options))) return undefined
  if ((options as { include_usage?: unknown } | null | undefined)?.include_usage === true) return undefined
  if (options !== undefined) {
    const merged = { ...json, stream_options: { ...(json.stream_options as object), include_usage: true } }
    return new TextEncoder().encode(JSON.stringify(merged)) as Uint8Array<ArrayBuffer>
  }
  const open = bytes.indexOf(123) // '{'
  let next = open + 1
  while (next < bytes.length && (bytes[next] === 32 || bytes[next] === 10 || bytes[next] === 13 || bytes[next] === 9)) next++
  const empty = bytes[next] === 125 // '}'
  const out = new Uint8Array(bytes.byteLength + INCLUDE_USAGE.byteLength + (empty ? 0 : 1))
  out.set(bytes.subarray(0, open + 1))
  out.set(INCLUDE_USAGE, open + 1)
  let at = open + 1 + INCLUDE_USAGE.byteLength
  if (!empty) out[at++] = 44 // ','
  out.set(bytes.subarray(open + 1), at)
  return out
}
