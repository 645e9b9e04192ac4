// Byte helpers shared by the request body reader and the runtime's HTTP/1.1 client.

/** One buffer holding `parts` in order; `total` when the caller already knows their length. */
export function concatBytes(parts: readonly Uint8Array[], total?: number): Uint8Array<ArrayBuffer> {
  let size = total ?? 0
  if (total === undefined) for (const part of parts) size += part.byteLength
  const out = new Uint8Array(size)
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.byteLength
  }
  return out
}
