// Migrations are plain SQL files, applied in order; text imports embed them in the compiled binary.
import pg001 from './migrations/postgres/001_keys.sql' with { type: 'text' }
import pg002 from './migrations/postgres/002_audit.sql' with { type: 'text' }
import pg003 from './migrations/postgres/003_audit_by_event_id.sql' with { type: 'text' }
import lite001 from './migrations/sqlite/001_keys.sql' with { type: 'text' }
import lite002 from './migrations/sqlite/002_audit.sql' with { type: 'text' }
import lite003 from './migrations/sqlite/003_audit_by_event_id.sql' with { type: 'text' }
import lite004 from './migrations/sqlite/004_key_changes.sql' with { type: 'text' }

export interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: string
}

export const POSTGRES_MIGRATIONS: readonly Migration[] = [
  { version: 1, name: '001_keys', sql: pg001 },
  { version: 2, name: '002_audit', sql: pg002 },
  { version: 3, name: '003_audit_by_event_id', sql: pg003 },
]
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  { version: 1, name: '001_keys', sql: lite001 },
  { version: 2, name: '002_audit', sql: lite002 },
  { version: 3, name: '003_audit_by_event_id', sql: lite003 },
  { version: 4, name: '004_key_changes', sql: lite004 },
]
