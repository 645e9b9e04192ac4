// Redis for shared state in cluster mode (SPEC §3.1). Commands fail fast while disconnected (no
// offline queue): every caller treats Redis as an accelerator with a fallback, never a dependency
// a request waits on. ioredis reconnects in the background with backoff.
import { Redis } from 'ioredis'
import type { Logger } from '../log.ts'

export function openRedis(url: string, log: Logger): Redis {
  const redis = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    // Commands issued in the same event-loop turn share one write (rate-limit checks under load).
    enableAutoPipelining: true,
    // Except a request's end (limits/redis.ts: lease release and token charge): it is written at once,
    // before the response leaves, so the client's next request, on any replica, finds its slot free
    // (SPEC §4.4). Auto-pipelined, it waited for the next tick and could arrive after that request.
    autoPipeliningIgnoredCommands: ['nnzFinish'],
    maxRetriesPerRequest: 1,
    connectTimeout: 3000,
    retryStrategy: (attempt) => Math.min(attempt * 250, 5000),
  })
  let up = false
  redis.on('ready', () => {
    if (!up) log.info('redis up')
    up = true
  })
  redis.on('error', (err) => {
    if (up) log.warn('redis down', { reason: err.message })
    up = false
  })
  redis.on('end', () => {
    up = false
  })
  return redis
}

/** Connects, waiting at most `ms`; a slow or absent Redis does not hold up startup. */
export async function connectRedis(redis: Redis, ms: number): Promise<boolean> {
  const connected = redis.connect().then(
    () => true,
    () => false,
  )
  return Promise.race([connected, new Promise<boolean>((resolve) => setTimeout(() => resolve(false), ms))])
}
