// SPEC §4.10 on the embedded store: how audit events become SQLite rows. The inserts run on the event
// loop; with time-ordered event ids (newEventId) a batch of 100 takes about half a millisecond.
import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite'
import { AUDIT_COLUMNS, type AuditEvent } from '../audit/event.ts'

/** 22 columns per row: 100 rows stay well under SQLite's limit on bound variables. */
const ROWS_PER_STATEMENT = 100

/** The pragmas every connection to the embedded database uses. */
export const SQLITE_PRAGMAS = 'pragma journal_mode = wal; pragma busy_timeout = 5000; pragma synchronous = normal;'

export class AuditInserter {
  private readonly statements = new Map<number, StatementSync>()
  private readonly params: SQLInputValue[] = []

  constructor(private readonly db: DatabaseSync) {}

  /** One transaction; multi-row statements, far cheaper than one statement per row. */
  insert(events: readonly AuditEvent[]): void {
    if (events.length === 0) return
    const params = this.params
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
