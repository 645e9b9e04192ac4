// Reading a JSON request body once: the bytes are forwarded unchanged (SPEC §4.8) and parsed only to
// read the fields routing needs. Size is bounded by MAX_BODY_MB (SPEC §3.2, §6).
import { GatewayError } from '../errors.ts'
import { concatBytes } from '../shared/bytes.ts'

export interface ParsedBody {
  readonly bytes: Uint8Array<ArrayBuffer>
  readonly json: Record<string, unknown>
}

export async function readJsonBody(request: Request, maxBytes: number): Promise<ParsedBody> {
  // A declared length (every JSON client sends one) is checked, then the body read in one call.
  const declared = request.headers.get('content-length')
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes)
  const bytes = declared !== null ? new Uint8Array(await request.arrayBuffer()) : await readChunked(request, maxBytes)
  if (bytes.byteLength === 0) throw new GatewayError('bad_request', 'request body is empty; send a JSON object')
  let json: unknown
  try {
    json = JSON.parse(decoder.decode(bytes))
  } catch (err) {
    throw new GatewayError('bad_request', `request body is not valid JSON: ${(err as Error).message}`)
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new GatewayError('bad_request', 'request body must be a JSON object')
  }
  return { bytes, json: json as Record<string, unknown> }
}

const decoder = new TextDecoder()

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

/** Whether the client asked for a stream; absent `stream` follows the surface's default (UPSTREAM §1). */
export function wantsStream(json: Record<string, unknown>, byDefault: boolean): boolean {
  const value = json.stream
  return typeof value === 'boolean' ? value : byDefault
}
