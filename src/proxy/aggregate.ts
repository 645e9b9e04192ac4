// SPEC §4.7: model-less listings merge every reachable backend, deduplicated by name, and (§4.3) show
// a key only its allowed models. Each backend's answer is read whole: these are small JSON documents.
import type { Backend } from '../backends/backend.ts'
import { GatewayError } from '../errors.ts'
import { toHeaders } from '../runtime/client.ts'

interface Entry {
  name?: string
  model?: string
  id?: string
}

const encoder = new TextEncoder()

export async function aggregateListing(
  path: '/api/tags' | '/api/ps' | '/v1/models',
  backends: readonly Backend[],
  headers: readonly string[],
  allowed: (model: string) => boolean,
  timeoutMs: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const answers = await Promise.all(
    backends.map(async (b) => {
      const h = toHeaders(b.withAuth(headers))
      try {
        const res = await fetch(b.url + path, { headers: h, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) })
        return res.ok ? ((await res.json()) as Record<string, unknown>) : undefined
      } catch {
        return undefined
      }
    }),
  )
  const got = answers.filter((a): a is Record<string, unknown> => a !== undefined)
  if (got.length === 0) throw new GatewayError('no_healthy_backend', 'no backend answered; retry shortly', { 'retry-after': '5' })
  const field = path === '/v1/models' ? 'data' : 'models'
  const seen = new Set<string>()
  const merged: Entry[] = []
  for (const answer of got) {
    for (const entry of (answer[field] as Entry[] | undefined) ?? []) {
      const name = entry.id ?? entry.model ?? entry.name ?? ''
      if (seen.has(name) || !allowed(name)) continue
      seen.add(name)
      merged.push(entry)
    }
  }
  // The first answer's other fields (e.g. `object: "list"`) are kept as they are.
  return encoder.encode(JSON.stringify({ ...got[0], [field]: merged })) as Uint8Array<ArrayBuffer>
}
