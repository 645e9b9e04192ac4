// Reading a JSON request body once: the bytes are forwarded unchanged (SPEC §4.8) and parsed only to
// read the fields routing needs. Size is bounded by MAX_BODY_MB (SPEC §3.2, §6).
import { GatewayError } from '../errors.ts'
import { concatBytes } from '../shared/bytes.ts'
import { show } from '../validation.ts'

export interface ParsedBody {
  readonly bytes: Uint8Array<ArrayBuffer>
  readonly json: Record<string, unknown>
}

export async function readJsonBody(request: Request, maxBytes: number): Promise<ParsedBody> {
  // A declared length (every JSON client sends one) is checked, then the body read in one call.
  const declared = request.headers.get('content-length')
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes)
  let text: string
  let bytes: Uint8Array<ArrayBuffer>
  if (declared !== null) {
    // Read as text, not as an ArrayBuffer: on Bun, every request body read into an ArrayBuffer made each
    // collection of the young generation longer (median pause 1.0 -> 1.9-2.6 ms at saturation, in a
    // copy of the gateway that answered after the read; bench/RESULTS.md). The bytes forwarded are the
    // text encoded again, which is the client's bytes exactly when they were UTF-8 (RFC 8259 §8.1).
    text = await request.text()
    const sent = sentBytes(text, Number(declared))
    if (!sent) throw refused(request, 'request body is not valid UTF-8; JSON must be sent as UTF-8')
    bytes = sent
  } else {
    bytes = await readChunked(request, maxBytes)
    text = decoder.decode(bytes)
  }
  if (bytes.byteLength === 0) throw new GatewayError('bad_request', 'request body is empty; send a JSON object')
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw refused(request, `request body is not valid JSON: ${(err as Error).message}`)
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw refused(request, 'request body must be a JSON object')
  }
  return { bytes, json: json as Record<string, unknown> }
}

/**
 * The 400 for a body that is not a JSON object, or a 415 when it came compressed: such a body is neither
 * UTF-8 nor JSON, and Ollama does not decode one either, so the refusal names the coding. Looked up only
 * once the body failed, so a good request pays nothing for it.
 */
function refused(request: Request, message: string): GatewayError {
  const coding = request.headers.get('content-encoding')?.trim()
  if (!coding || coding.toLowerCase() === 'identity') return new GatewayError('bad_request', message)
  return new GatewayError(
    'unsupported_media_type',
    `request bodies with Content-Encoding '${coding}' are not accepted; send the JSON uncompressed`,
  )
}

const decoder = new TextDecoder()
const encoder = new TextEncoder()
const BOM = [0xef, 0xbb, 0xbf]

/**
 * SPEC §4.8: the bytes the client sent, from the body's text and its declared length. Decoding UTF-8
 * drops a leading byte order mark and turns each invalid sequence into U+FFFD; valid UTF-8 encodes back
 * to the same bytes. So: the same length means the same bytes (short of a body that is not UTF-8 and
 * whose only faults are cut-off four-byte sequences, each three bytes that became the three of one
 * U+FFFD); three fewer and no U+FFFD means a byte order mark went (it is put back); any other length
 * means bytes that were not UTF-8, which no JSON body may hold (RFC 8259 §8.1): undefined, refused rather
 * than forwarding something other than what was sent.
 */
function sentBytes(text: string, declared: number): Uint8Array<ArrayBuffer> | undefined {
  const encoded = encoder.encode(text) as Uint8Array<ArrayBuffer>
  if (encoded.byteLength === declared) return encoded
  if (encoded.byteLength === declared - BOM.length && !text.includes('\uFFFD')) {
    const withBom = new Uint8Array(declared)
    withBom.set(BOM)
    withBom.set(encoded, BOM.length)
    return withBom
  }
  return undefined
}

function tooLarge(maxBytes: number): GatewayError {
  const mb = Math.round((maxBytes / 1024 / 1024) * 1000) / 1000
  return new GatewayError('payload_too_large', `request body exceeds the ${mb} MB limit (MAX_BODY_MB)`)
}

async function readChunked(request: Request, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  if (!request.body) return new Uint8Array(0)
  // Chunked upload: count as we go and stop reading at the limit.
  const parts: Uint8Array[] = []
  let total = 0
  const reader = request.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > maxBytes) {
      await reader.cancel().catch(() => {})
      throw tooLarge(maxBytes)
    }
    parts.push(value)
  }
  return concatBytes(parts, total)
}

/** The model a body names, from the endpoint's fields in order (legacy `name`, UPSTREAM §1). */
export function modelOf(json: Record<string, unknown>, fields: readonly string[]): string | undefined {
  for (const field of fields) {
    const value = json[field]
    if (typeof value === 'string' && value.trim() !== '') return value.trim()
  }
  return undefined
}

/** The 400 for a body with no usable model name: the field is absent, or not a non-empty string. */
export function modelProblem(json: Record<string, unknown>, fields: readonly string[]): string {
  const field = fields.find((f) => json[f] !== undefined)
  if (field === undefined) return `${fields[0]} is required`
  return `${field} must be a model name such as "llama3.2"; got ${show(json[field])}`
}

/** Whether the client asked for a stream; absent `stream` follows the surface's default (UPSTREAM §1). */
export function wantsStream(json: Record<string, unknown>, byDefault: boolean): boolean {
  const value = json.stream
  return typeof value === 'boolean' ? value : byDefault
}
