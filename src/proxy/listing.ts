// SPEC §4.3: `/api/tags`, `/api/ps` and `/v1/models` show a key only the models it may use.
const encoder = new TextEncoder()

interface Listing {
  models?: Array<{ name?: string; model?: string }>
  data?: Array<{ id?: string }>
}

export async function filterListing(upstream: Response, allowed: (model: string) => boolean): Promise<Uint8Array<ArrayBuffer>> {
  const listing = (await upstream.json()) as Listing
  if (Array.isArray(listing.models)) listing.models = listing.models.filter((m) => allowed(m.model ?? m.name ?? ''))
  if (Array.isArray(listing.data)) listing.data = listing.data.filter((m) => allowed(m.id ?? ''))
  return encoder.encode(JSON.stringify(listing)) as Uint8Array<ArrayBuffer>
}
