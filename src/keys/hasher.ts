// argon2id at rest (SPEC §4.2) through @node-rs/argon2, with a bound on concurrent work so a flood of
// cache misses cannot take every core.
import type { Algorithm } from '@node-rs/argon2'
import { GatewayError } from '../errors.ts'
import { loadArgon2 } from './argon2.ts'

// Algorithm.Argon2id; the package exports a const enum, which isolated modules cannot read.
const ARGON2ID = 2 as Algorithm

export interface HasherOptions {
  readonly memoryCost: number
  readonly timeCost: number
  readonly parallelism: number
  /** Verifications running at once; the rest wait in a bounded queue. */
  readonly concurrency: number
  readonly maxQueue: number
}

export class Hasher {
  private running = 0
  private readonly queue: Array<() => void> = []

  constructor(private readonly opts: HasherOptions) {}

  async hash(secret: string): Promise<string> {
    const { hash } = await loadArgon2()
    return hash(secret, {
      algorithm: ARGON2ID,
      memoryCost: this.opts.memoryCost,
      timeCost: this.opts.timeCost,
      parallelism: this.opts.parallelism,
    })
  }

  async verify(encoded: string, secret: string): Promise<boolean> {
    const { verify } = await loadArgon2()
    await this.acquire()
    try {
      return await verify(encoded, secret)
    } catch {
      return false
    } finally {
      this.release()
    }
  }

  private acquire(): Promise<void> {
    if (this.running < this.opts.concurrency) {
      this.running++
      return Promise.resolve()
    }
    if (this.queue.length >= this.opts.maxQueue) {
      return Promise.reject(
        new GatewayError('unavailable', 'too many key verifications in progress; retry shortly', { 'retry-after': '1' }),
      )
    }
    return new Promise((resolve) => this.queue.push(resolve))
  }

  private release(): void {
    const next = this.queue.shift()
    if (next) next()
    else this.running--
  }
}
