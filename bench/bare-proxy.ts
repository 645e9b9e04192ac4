// The thinnest Bun pass-through proxy (SPEC §7 anchor): Bun.serve + fetch, body read then forwarded.
const upstream = process.argv[2] as string
const server = Bun.serve({
  hostname: '127.0.0.1',
  port: Number(process.argv[3] ?? 0),
  idleTimeout: 0,
  async fetch(req) {
    const url = new URL(req.url)
    const body = req.method === 'GET' || req.method === 'HEAD' ? null : await req.arrayBuffer()
    const res = await fetch(upstream + url.pathname + url.search, {
      method: req.method,
      headers: { 'content-type': 'application/json' },
      body,
    })
    return new Response(res.body, { status: res.status, headers: res.headers })
  },
})
process.stdout.write(`bare proxy listening on ${server.port}\n`)
