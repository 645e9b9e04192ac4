// Authentication plus one scope, for the gateway's own routes (admin API, metrics).
import { GatewayError } from '../errors.ts'
import type { Scope } from '../proxy/endpoints.ts'
import { requestIdOf } from '../proxy/headers.ts'
import type { Services } from '../services.ts'
import type { KeyRecord } from '../store/store.ts'
import { hasScope } from './authz.ts'

export async function requireScope(services: Services, request: Request, scope: Scope): Promise<KeyRecord> {
  const key = await services.auth.authenticate(request.headers, services.runtime.clientIp(request))
  if (!hasScope(key, scope)) throw new GatewayError('forbidden', `API key lacks the '${scope}' scope`)
  return key
}

/** The `resolve` step of every /admin plugin: request id on the answer, then the admin scope. */
export function adminResolve(services: Services) {
  return async ({ request, set }: { request: Request; set: { headers: Record<string, unknown> } }) => {
    set.headers['x-request-id'] = requestIdOf(request)
    return { admin: await requireScope(services, request, 'admin') }
  }
}
