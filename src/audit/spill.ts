// SPEC §4.10: when the in-memory buffer is full (or at shutdown with the store down), events go to an
// append-only NDJSON file in DATA_DIR/audit-spill/, replayed into the store when it is back.
import { appendFileSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync } from 'node:fs'
import { appendFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AuditEvent } from './event.ts'

export class SpillFile {
  private readonly dir: string
  private current: string
  private chain: Promise<void> = Promise.resolve()
  private pendingWrites = 0
  /**
   * Some spill file may be waiting: found at start (left by an earlier run) or written since. Kept in
   * memory so the writer's check on every flush pass is not a directory read (five system calls, on
   * the hot loop's thread, twenty times a second).
   */
  private mayHaveFiles: boolean

  constructor(dataDir: string) {
    this.dir = join(dataDir, 'audit-spill')
    mkdirSync(this.dir, { recursive: true })
    this.current = this.newName()
    this.mayHaveFiles = this.files().length > 0
  }

  private newName(): string {
    return join(this.dir, `spill-${Date.now()}-${process.pid}.ndjson`)
  }

  /** Appends in the background, in order; never blocks the caller. */
  append(events: readonly AuditEvent[], onError: (err: unknown) => void): void {
    const text = `${events.map((e) => JSON.stringify(e)).join('\n')}\n`
    const file = this.current
    this.mayHaveFiles = true
    this.pendingWrites++
    this.chain = this.chain
      .then(() => appendFile(file, text))
      .catch(onError)
      .finally(() => {
        this.pendingWrites--
      })
  }

  /** Shutdown path: write now, synchronously, after whatever is queued. */
  async appendNow(events: readonly AuditEvent[]): Promise<void> {
    await this.chain
    if (events.length === 0) return
    this.mayHaveFiles = true
    appendFileSync(this.current, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`)
  }

  async settled(): Promise<void> {
    await this.chain
  }

  /** Spill files waiting to be replayed (the one being written included, once its writes settle). */
  hasPending(): boolean {
    return this.mayHaveFiles
  }

  private files(): string[] {
    return readdirSync(this.dir)
      .filter((f) => f.endsWith('.ndjson') || f.endsWith('.replaying'))
      .sort()
      .map((f) => join(this.dir, f))
  }

  /**
   * Hands every spilled event to `insert`, file by file. New spills go to a fresh file meanwhile; a
   * file is deleted only after all its events are stored, and event ids make a repeated replay harmless.
   */
  async replay(insert: (events: AuditEvent[]) => Promise<void>, batchSize: number): Promise<number> {
    await this.chain
    this.current = this.newName()
    let replayed = 0
    for (const file of this.files()) {
      const claimed = file.endsWith('.replaying') ? file : `${file}.replaying`
      if (claimed !== file) renameSync(file, claimed)
      const events: AuditEvent[] = []
      for (const line of readFileSync(claimed, 'utf8').split('\n')) {
        if (!line) continue
        try {
          events.push(JSON.parse(line))
        } catch {
          // A line cut short by a crash mid-write: the rest of the file is still good.
        }
      }
      for (let i = 0; i < events.length; i += batchSize) await insert(events.slice(i, i + batchSize))
      unlinkSync(claimed)
      replayed += events.length
    }
    // Spills made while this ran went to the new file; a replay that failed midway left its files.
    this.mayHaveFiles = this.pendingWrites > 0 || this.files().length > 0
    return replayed
  }
}
