// Audit inserts of the embedded store (SPEC §4.10, §7). SQLite works on the thread that calls it, and
// a batch of 100 events held the server's event loop for about 0.7 ms (7 µs an event): at 2k req/s
// that was about 0.6 ms of the p99 (bench/RESULTS.md). The server therefore hands its batches
// to a worker thread with a connection of its own, as one JSON string (about 1.3 µs an event to make
// and post, against 5 µs to clone the objects). The inserter below is the same code on either side:
// the worker runs it, and so does the store itself where there is no worker (the CLI, or a worker
// that could not start).
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite'
import { AUDIT_COLUMNS, type AuditEvent } from '../audit/event.ts'

/** One multi-row statement per 100 rows (22 columns each, well under SQLite's variable limit). */
const ROWS_PER_STATEMENT = 100

/** Opens the store's file as the store does: WAL, normal sync, and a wait for the other connection's locks. */
export function openSqlite(file: string): DatabaseSync {
  const db = new DatabaseSync(file)
  db.exec('pragma journal_mode = wal; pragma busy_timeout = 5000; pragma synchronous = normal;')
  return db
}

export class AuditInserter {
  /** Prepared multi-row inserts, by row count. */
  private readonly statements = new Map<number, StatementSync>()

  constructor(private readonly db: DatabaseSync) {}

  /** One transaction; ids already stored are skipped (`insert or ignore`), so a batch may repeat. */
  insert(events: readonly AuditEvent[]): void {
    if (events.length === 0) return
    const params: SQLInputValue[] = []
    this.db.exec('begin')
    try {
      for (let i = 0; i < events.length; i += ROWS_PER_STATEMENT) {
        const chunk = events.slice(i, i + ROWS_PER_STATEMENT)
        params.length = 0
        for (const e of chunk)
          for (const c of AUDIT_COLUMNS) params.push(c === 'tokens_partial' ? (e.tokens_partial ? 1 : 0) : (e[c] as SQLInputValue))
        this.statement(chunk.length).run(...params)
      }
      this.db.exec('commit')
    } catch (err) {
      this.db.exec('rollback')
      throw err
    }
  }

  private statement(rows: number): StatementSync {
    let stmt = this.statements.get(rows)
    if (!stmt) {
      const row = `(${AUDIT_COLUMNS.map(() => '?').join(', ')})`
      stmt = this.db.prepare(`insert or ignore into audit_events (${AUDIT_COLUMNS.join(', ')}) values ${Array(rows).fill(row).join(', ')}`)
      this.statements.set(rows, stmt)
    }
    return stmt
  }
}

/** Main thread → worker. */
export type AuditThreadRequest =
  | { readonly type: 'open'; readonly file: string }
  | { readonly type: 'insert'; readonly id: number; readonly events: string }
  | { readonly type: 'close'; readonly id: number }
/** Worker → main thread: the request `id` is done, or failed with `error`. `id` 0 answers `open`. */
export interface AuditThreadReply {
  readonly id: number
  readonly error?: string
}

/**
 * The worker thread that inserts the store's audit batches. A batch is done when the worker has
 * committed it; until then it stays the writer's (audit/writer.ts), which puts a failed one back.
 * If the thread dies, every batch in flight fails and `failed` is set: the store inserts inline from then on.
 */
export class AuditThread {
  failed?: Error
  private readonly worker: Worker
  private readonly pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>()
  private nextId = 1

  /** `onFailure` hears of the thread's death (not of its closing). */
  constructor(
    url: string,
    file: string,
    private readonly onFailure: (err: Error) => void = () => {},
  ) {
    this.worker = new Worker(url, { type: 'module' })
    this.worker.onmessage = (e: MessageEvent<AuditThreadReply>) => this.settle(e.data)
    this.worker.onerror = (e: ErrorEvent) => {
      e.preventDefault()
      this.fail(new Error(`audit thread failed: ${e.message}`))
    }
    // A failure to open the file answers request 0, which fails the thread.
    this.pending.set(0, { resolve: () => {}, reject: (err) => this.fail(err) })
    this.post({ type: 'open', file })
  }

  insert(events: readonly AuditEvent[]): Promise<void> {
    return this.request((id) => ({ type: 'insert', id, events: JSON.stringify(events) }))
  }

  /** Closes the worker's connection and ends the thread; a thread that does not answer within 2 s is ended anyway. */
  async close(): Promise<void> {
    if (!this.failed) {
      const closed = this.request((id) => ({ type: 'close', id })).catch(() => {})
      let timer: ReturnType<typeof setTimeout> | undefined
      const late = new Promise((resolve) => {
        timer = setTimeout(resolve, 2000)
      })
      await Promise.race([closed, late])
      clearTimeout(timer)
    }
    this.fail(new Error('audit thread closed'), false)
  }

  private request(message: (id: number) => AuditThreadRequest): Promise<void> {
    if (this.failed) return Promise.reject(this.failed)
    const id = this.nextId++
    return new Promise<void>((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.post(message(id))
    })
  }

  private post(message: AuditThreadRequest): void {
    this.worker.postMessage(message)
  }

  private settle(reply: AuditThreadReply): void {
    const waiting = this.pending.get(reply.id)
    if (!waiting) return
    this.pending.delete(reply.id)
    if (reply.error === undefined) waiting.resolve()
    else waiting.reject(new Error(reply.error))
  }

  private fail(err: Error, unexpected = true): void {
    if (this.failed) return
    this.failed = err
    this.worker.terminate()
    for (const waiting of this.pending.values()) waiting.reject(err)
    this.pending.clear()
    if (unexpected) this.onFailure(err)
  }
}
