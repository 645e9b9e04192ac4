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

export type MeterKind = 'native' | 'openai' | 'none'

const TAIL = 4096
const MAX_COUNT = 2 ** 31 - 1
const NEWLINE = 10
const decoder = new TextDecoder()

const FIELDS = new Map<string, RegExp>()
function lastNumber(text: string, field: string): number | undefined {
  let re = FIELDS.get(field)
  if (!re) {
    re = new RegExp(`"${field}":\\s*(\\d+)`, 'g')
    FIELDS.set(field, re)
  }
  re.lastIndex = 0
  let found: number | undefined
  for (let m = re.exec(text); m; m = re.exec(text)) found = Number(m[1])
  // The audit columns are 32-bit integers: an absurd count from a broken upstream must not make the
  // event unstorable (a batch that can never be inserted would hold up the audit log).
  return found === undefined ? undefined : Math.min(found, MAX_COUNT)
}

export class MeterTap implements StreamTap {
  private tail = new Uint8Array(0)
  private lines = 0

  constructor(private readonly kind: MeterKind) {}

  chunk(chunk: Uint8Array): Uint8Array {
    for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, i + 1)) this.lines++
    if (chunk.byteLength >= TAIL) this.tail = chunk.slice(chunk.byteLength - TAIL)
    else {
      const keep = Math.min(this.tail.byteLength, TAIL - chunk.byteLength)
      const next = new Uint8Array(keep + chunk.byteLength)
      next.set(this.tail.subarray(this.tail.byteLength - keep))
      next.set(chunk, keep)
      this.tail = next
    }
    return chunk
  }

  end(): undefined {
    return undefined
  }

  usage(streamed: boolean): Usage {
    if (this.kind === 'none') return { prompt: null, completion: null, partial: false }
    const text = decoder.decode(this.tail)
    if (this.kind === 'native') {
      // UPSTREAM §2: every metric is omitted when zero, so a final answer without a count means 0.
      const final = !streamed || /"done":\s*true/.test(text)
      const prompt = lastNumber(text, 'prompt_eval_count')
      const completion = lastNumber(text, 'eval_count')
      if (final && (prompt !== undefined || completion !== undefined || streamed))
        return { prompt: prompt ?? 0, completion: completion ?? 0, partial: false }
      // Unfinished: one streamed line is one token.
      return { prompt: null, completion: streamed ? Math.max(0, this.lines) : null, partial: true }
    }
    const prompt = lastNumber(text, 'prompt_tokens') ?? lastNumber(text, 'input_tokens')
    const completion = lastNumber(text, 'completion_tokens') ?? lastNumber(text, 'output_tokens')
    if (prompt !== undefined) return { prompt, completion: completion ?? 0, partial: false }
    // An SSE event is a `data:` line plus a blank line.
    return { prompt: null, completion: streamed ? Math.floor(this.lines / 2) : null, partial: true }
  }
}

/**
 * SPEC §4.9: for streamed /v1 completions the gateway asks upstream for `include_usage`; when the
 * client did not, this removes that extra `choices: []` usage event. Events are re-framed on `\n\n`.
 */
export class UsageChunkStripper implements StreamTap {
  private carry = ''
  private readonly encoder = new TextEncoder()

  chunk(chunk: Uint8Array): Uint8Array {
    this.carry += decoder.decode(chunk, { stream: true })
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
 * Adds `stream_options.include_usage` to a streamed /v1 completion request. When the body has no
 * `stream_options`, the field is spliced in after the opening brace and every other byte stays as
 * sent; otherwise the object is re-serialised with the flag set.
 */
export function withIncludeUsage(bytes: Uint8Array<ArrayBuffer>, json: Record<string, unknown>): Uint8Array<ArrayBuffer> {
  if (json.stream_options !== undefined) {
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
