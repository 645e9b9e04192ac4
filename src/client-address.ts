// The client's address behind a load balancer (SPEC §1: replicas behind one; §4.2: failed verifications
// are throttled per client address; §4.10: the audit log records it). The peer of a connection from a
// trusted proxy is that proxy, so its `X-Forwarded-For` is read from the right: each address a trusted
// proxy appended is skipped, and the first one no trusted proxy vouches for is the client. Nothing
// else may set the address: with no TRUSTED_PROXIES, the header is ignored and the peer is the client.

/** One trusted range: an address family's bits and how many of them must match. */
interface Range {
  readonly v6: boolean
  readonly bits: bigint
  readonly prefix: number
}

const NAMED: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '127.0.0.0/8', 'fc00::/7', '::1/128'],
}

/** What TRUSTED_PROXIES accepts, for its error message. */
export const TRUSTED_PROXIES_EXPECTED = 'comma-separated IP addresses or CIDR ranges (10.0.0.0/8, fd00::/8), or loopback, private'

/** The ranges of a TRUSTED_PROXIES value, or the entry that is not one. */
export function parseTrustedProxies(value: string): { ranges: readonly string[] } | { bad: string } {
  const ranges: string[] = []
  for (const entry of value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const named = NAMED[entry.toLowerCase()]
    if (named) ranges.push(...named)
    else if (rangeOf(entry)) ranges.push(entry)
    else return { bad: entry }
  }
  return { ranges }
}

/**
 * `peerOf` when no proxy is trusted (the header is not even looked at); otherwise the address the
 * trusted proxies name, as above.
 */
export function clientAddressOf(peerOf: (request: Request) => string, trusted: readonly string[]): (request: Request) => string {
  if (trusted.length === 0) return peerOf
  const ranges = trusted.map(rangeOf).filter((r): r is Range => r !== undefined)
  // The peers are the balancers, a handful of addresses: each is judged once (a bounded memo).
  const judged = new Map<string, boolean>()
  const isTrusted = (address: string) => {
    let trusted = judged.get(address)
    if (trusted === undefined) {
      const parsed = addressBits(address)
      trusted = parsed !== undefined && ranges.some((r) => r.v6 === parsed.v6 && matches(r, parsed.bits))
      if (judged.size >= 1024) judged.clear()
      judged.set(address, trusted)
    }
    return trusted
  }
  return (request) => {
    const peer = peerOf(request)
    if (!isTrusted(peer)) return peer
    const forwarded = request.headers.get('x-forwarded-for')
    if (!forwarded) return peer
    const hops = forwarded.split(',')
    let client = peer
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = stripPort((hops[i] as string).trim())
      if (addressBits(hop) === undefined) break
      client = hop
      if (!isTrusted(hop)) break
    }
    return client
  }
}

function matches(range: Range, bits: bigint): boolean {
  const width = range.v6 ? 128 : 32
  const shift = BigInt(width - range.prefix)
  return bits >> shift === range.bits >> shift
}

function rangeOf(entry: string): Range | undefined {
  const [address, prefixText] = entry.split('/') as [string, string | undefined]
  const parsed = addressBits(address)
  if (!parsed) return undefined
  const width = parsed.v6 ? 128 : 32
  const prefix = prefixText === undefined ? width : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : Number.NaN
  if (!(prefix >= 0 && prefix <= width)) return undefined
  return { v6: parsed.v6, bits: parsed.bits, prefix }
}

/** An IPv4 or IPv6 address as bits; an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is its IPv4 one. */
function addressBits(text: string): { v6: boolean; bits: bigint } | undefined {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text)
  const v4 = mapped ? mapped[1] : text
  if (/^\d+\.\d+\.\d+\.\d+$/.test(v4 as string)) {
    const parts = (v4 as string).split('.').map(Number)
    if (parts.some((p) => p > 255)) return undefined
    return { v6: false, bits: parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n) }
  }
  if (!text.includes(':') || !/^[0-9a-f:]+$/i.test(text)) return undefined
  const halves = text.split('::')
  if (halves.length > 2) return undefined
  const head = halves[0] ? (halves[0] as string).split(':') : []
  const tail = halves.length === 2 && halves[1] ? (halves[1] as string).split(':') : []
  const missing = 8 - head.length - tail.length
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail]
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) return undefined
  return { v6: true, bits: groups.reduce((acc, g) => (acc << 16n) | BigInt(Number.parseInt(g, 16)), 0n) }
}

/** `1.2.3.4:5678` and `[::1]:5678` as some proxies write them. */
function stripPort(hop: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(hop)
  if (bracketed) return bracketed[1] as string
  const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(hop)
  return v4 ? (v4[1] as string) : hop
}
