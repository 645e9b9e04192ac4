// Audit rows in COPY's binary format (SPEC §4.10, §7): values go into one buffer as Postgres stores
// them (a UUID's 16 bytes, a timestamp's microseconds, integers and doubles in network order, text as
// UTF-8 with its length), so no per-value strings are made and nothing is escaped. The text format
// cost a string per number, a template per row and the UTF-8 encoding of the joined batch.
import { AUDIT_COLUMNS, type AuditEvent } from '../audit/event.ts'

/** The statement these bytes are for: the columns of AUDIT_COLUMNS, in order. */
export const AUDIT_COPY_SQL = `copy audit_events (${AUDIT_COLUMNS.join(', ')}) from stdin with (format binary)`

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1')
/** Postgres timestamps count microseconds from 2000-01-01T00:00:00Z. */
const POSTGRES_EPOCH_MS = Date.UTC(2000, 0, 1)
/** Each character code's hexadecimal value, or -1. */
const HEX = new Int8Array(128).fill(-1)
for (let c = 0; c < 16; c++) {
  HEX[c.toString(16).charCodeAt(0)] = c
  HEX[c.toString(16).toUpperCase().charCodeAt(0)] = c
}

/**
 * The bytes are written in place: a DataView's big-endian stores and plain index stores for ASCII text
 * compile to a few instructions each, where Buffer's write methods are a call per value (encoding took
 * about 2.5x as long).
 */
class Writer {
  buf: Buffer
  view: DataView
  at = 0

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size)
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength)
  }

  room(n: number): void {
    if (this.at + n <= this.buf.length) return
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n))
    this.buf.copy(bigger, 0, 0, this.at)
    this.buf = bigger
    this.view = new DataView(bigger.buffer, bigger.byteOffset, bigger.byteLength)
  }

  int16(v: number): void {
    this.room(2)
    this.view.setInt16(this.at, v)
    this.at += 2
  }

  int32(v: number): void {
    this.room(4)
    this.view.setInt32(this.at, v)
    this.at += 4
  }

  /** An integer of magnitude below 2^53 as a signed 64-bit one. */
  int64(v: number): void {
    this.room(8)
    const high = Math.floor(v / 2 ** 32)
    this.view.setInt32(this.at, high)
    this.view.setUint32(this.at + 4, v - high * 2 ** 32)
    this.at += 8
  }

  /** Writes NULL's length marker when `v` is null, and says whether it did. */
  wroteNull(v: unknown): v is null {
    if (v !== null) return false
    this.int32(-1)
    return true
  }

  text(v: string | null): void {
    if (this.wroteNull(v)) return
    // UTF-8 takes at most 3 bytes per UTF-16 unit; the length is written once the bytes are.
    this.room(4 + v.length * 3)
    const buf = this.buf
    const start = this.at + 4
    // ASCII (nearly every value) is copied unit by unit; from the first other character on, the
    // runtime encodes the rest (a surrogate pair cannot be split: the loop stops at its first half).
    let n = 0
    for (; n < v.length; n++) {
      const c = v.charCodeAt(n)
      if (c > 0x7f) break
      buf[start + n] = c
    }
    if (n < v.length) n += buf.write(v.slice(n), start + n, 'utf8')
    this.view.setInt32(this.at, n)
    this.at = start + n
  }

  integer(v: number | null): void {
    if (this.wroteNull(v)) return
    this.int32(4)
    this.int32(v)
  }

  bigint(v: number | null): void {
    if (this.wroteNull(v)) return
    this.int32(8)
    this.int64(v)
  }

  double(v: number | null): void {
    if (this.wroteNull(v)) return
    this.int32(8)
    this.room(8)
    this.view.setFloat64(this.at, v)
    this.at += 8
  }

  uuid(v: string): void {
    this.int32(16)
    this.room(16)
    const buf = this.buf
    let at = this.at
    let nibbles = 0
    let byte = 0
    for (let i = 0; i < v.length; i++) {
      const c = v.charCodeAt(i)
      if (c === 45) continue // the dashes
      const digit = c < 128 ? (HEX[c] as number) : -1
      if (digit < 0 || nibbles === 32) {
        nibbles = -1 // not a digit, or one too many
        break
      }
      byte = (byte << 4) | digit
      if (++nibbles % 2 === 0) {
        buf[at++] = byte
        byte = 0
      }
    }
    if (nibbles !== 32) throw new Error(`malformed event id '${v}'`)
    this.at = at
  }
}

/** One COPY (format binary) stream holding `events`, signature to trailer. */
export function auditCopyBinary(events: readonly AuditEvent[]): Buffer {
  const w = new Writer(19 + events.length * 400)
  w.room(SIGNATURE.length)
  w.at += SIGNATURE.copy(w.buf, 0)
  w.int32(0) // flags
  w.int32(0) // header extension length
  for (const e of events) {
    w.int16(AUDIT_COLUMNS.length)
    w.uuid(e.event_id)
    w.int32(8)
    w.int64((e.time - POSTGRES_EPOCH_MS) * 1000)
    w.text(e.request_id)
    w.text(e.key_id)
    w.text(e.client_ip)
    w.text(e.user_agent)
    w.text(e.method)
    w.text(e.path)
    w.text(e.model)
    w.text(e.backend)
    w.integer(e.status)
    w.text(e.outcome)
    w.double(e.latency_ms)
    w.double(e.ttfb_ms)
    w.integer(e.prompt_tokens)
    w.integer(e.completion_tokens)
    w.int32(1)
    w.room(1)
    w.buf[w.at++] = e.tokens_partial ? 1 : 0
    w.bigint(e.bytes_in)
    w.bigint(e.bytes_out)
    w.text(e.error)
    w.text(e.action)
    w.text(e.target)
  }
  w.int16(-1) // trailer
  return w.buf.subarray(0, w.at)
}
