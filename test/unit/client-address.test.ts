// The client's address behind trusted proxies (src/client-address.ts): X-Forwarded-For read from the
// right, believed only as far as trusted proxies vouch for it.
import { describe, expect, test } from 'bun:test'
import { clientAddressOf, parseTrustedProxies } from '../../src/client-address.ts'

const request = (forwarded?: string) =>
  new Request('http://gw/api/chat', forwarded === undefined ? {} : { headers: { 'x-forwarded-for': forwarded } })
const behind = (peer: string, trusted: string) => {
  const parsed = parseTrustedProxies(trusted)
  if (!('ranges' in parsed)) throw new Error(`bad entry ${parsed.bad}`)
  return clientAddressOf(() => peer, parsed.ranges)
}

describe('TRUSTED_PROXIES', () => {
  test('addresses, CIDR ranges of both families and the named sets parse; anything else is named', () => {
    expect(parseTrustedProxies('10.0.0.0/8, 192.168.1.7, fd00::/8, ::1, loopback')).toMatchObject({
      ranges: expect.arrayContaining(['10.0.0.0/8', '127.0.0.0/8']),
    })
    expect(parseTrustedProxies('')).toEqual({ ranges: [] })
    for (const bad of ['10.0.0.0/33', '300.1.1.1', 'lb.internal', '10.0.0.0/x', 'fe80::1::2', '::1/129'])
      expect(parseTrustedProxies(`10.0.0.1,${bad}`)).toEqual({ bad })
  })

  test('nothing trusted: the header is ignored, whatever it says', () => {
    const of = clientAddressOf(() => '203.0.113.5', [])
    expect(of(request('198.51.100.1'))).toBe('203.0.113.5')
  })

  test('a trusted peer: the rightmost address no trusted proxy vouches for is the client', () => {
    const of = behind('10.0.0.2', '10.0.0.0/8')
    expect(of(request('198.51.100.1'))).toBe('198.51.100.1')
    // A client that sends its own header cannot choose its address: the LB appended the real one.
    expect(of(request('1.2.3.4, 198.51.100.1'))).toBe('198.51.100.1')
    // Proxies in a chain, each trusted, are skipped.
    expect(of(request('198.51.100.1, 10.1.1.1, 10.2.2.2'))).toBe('198.51.100.1')
    // Ports and brackets as some proxies write them; IPv6 clients.
    expect(of(request('198.51.100.1:4711'))).toBe('198.51.100.1')
    expect(of(request('[2001:db8::7]:4711'))).toBe('2001:db8::7')
    // No header: the proxy itself; a hop that is no address ends the walk at the last good one.
    expect(of(request())).toBe('10.0.0.2')
    expect(of(request('unknown, 10.3.3.3'))).toBe('10.3.3.3')
  })

  test('an untrusted peer is the client even if it sends the header', () => {
    expect(behind('203.0.113.9', '10.0.0.0/8')(request('198.51.100.1'))).toBe('203.0.113.9')
  })

  test('IPv4-mapped IPv6 peers and IPv6 ranges', () => {
    expect(behind('::ffff:127.0.0.1', 'loopback')(request('198.51.100.1'))).toBe('198.51.100.1')
    expect(behind('fd12:3456::1', 'fd00::/8')(request('2001:db8::1'))).toBe('2001:db8::1')
    expect(behind('fe80::1', 'fd00::/8')(request('2001:db8::1'))).toBe('fe80::1')
    expect(behind('10.9.9.9', 'private')(request('198.51.100.1'))).toBe('198.51.100.1')
  })
})
