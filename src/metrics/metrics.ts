// Every series the gateway exposes (SPEC §4.12), in one place so names and labels stay consistent.
import { Registry } from './registry.ts'

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

export function createMetrics() {
  const registry = new Registry()
  return {
    registry,
    requests: registry.counter('nnz_requests_total', 'Requests answered, by route template, method and status.'),
    latency: registry.histogram('nnz_request_duration_seconds', 'Time from request to the last byte of the response.', LATENCY_BUCKETS),
    ttfb: registry.histogram('nnz_time_to_first_byte_seconds', 'Time from request to upstream response headers.', LATENCY_BUCKETS),
    keyCacheHits: registry.counter('nnz_key_cache_hits_total', 'Key verifications answered from a cache, by layer (memory, redis).'),
    keyCacheMisses: registry.counter('nnz_key_cache_misses_total', 'Key verifications that had to load the key from the store.'),
    keyCacheRefreshes: registry.counter(
      'nnz_key_cache_refreshes_total',
      'Cached keys read again from the store, by result: renewed before expiry, revalidated after it (no argon2), dropped (hash changed or key gone), failed (store down).',
    ),
    argon2Verifications: registry.counter('nnz_argon2_verifications_total', 'argon2id verifications run, by result.'),
    authFailures: registry.counter('nnz_auth_failures_total', 'Rejected authentications, by reason.'),
    authThrottled: registry.counter('nnz_auth_throttled_total', 'Authentications refused because the client address failed too often.'),
    revocationsReceived: registry.counter('nnz_revocations_received_total', 'Key change notifications received from other replicas.'),
    auditFlushed: registry.counter('nnz_audit_flushed_total', 'Audit events written to the store.'),
    auditSpilled: registry.counter(
      'nnz_audit_spilled_total',
      'Audit events spilled to disk because the buffer was full or the store was down at shutdown.',
    ),
    tokens: registry.counter('nnz_tokens_total', 'Tokens metered from responses, by model and kind (prompt, completion).'),
    rateLimited: registry.counter(
      'nnz_rate_limit_rejections_total',
      'Requests refused by a per-key limit, by limit (requests, tokens, concurrency).',
    ),
    rateLimitFailOpen: registry.counter(
      'nnz_rate_limit_fail_open_total',
      'Requests admitted without a limit check because Redis was unreachable.',
    ),
  }
}

export type Metrics = ReturnType<typeof createMetrics>
