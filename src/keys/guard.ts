// Authentication plus one scope, for the gateway's own routes (admin API, metrics).
import { GatewayError } from '../errors.ts'
import type { Scope } from '../proxy/endpoints.ts'
import type { Services } from '../services.ts'
import type { KeyRecord } from '../store/store.ts'
import { hasScope } from './authz.ts'

export async function requireScope(services: Services, request: Request, scope: Scope): Promise<KeyRecord> {
  const key = await services.auth.authenticate(request.headers, services.runtime.clientIp(request))
  if (!hasScope(key, scope)) throw new GatewayError('forbidden', `API key lacks the '${scope}' scope`)
  return key
}
