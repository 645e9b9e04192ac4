// Migrations are plain SQL files, applied in order; text imports embed them in the compiled binary.
import pg001 from './migrations/postgres/001_keys.sql' with { type: 'text' }
import lite001 from './migrations/sqlite/001_keys.sql' with { type: 'text' }

export interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: string
}

export const POSTGRES_MIGRATIONS: readonly Migration[] = [{ version: 1, name: '001_keys', sql: pg001 }]
export const SQLITE_MIGRATIONS: readonly Migration[] = [{ version: 1, name: '001_keys', sql: lite001 }]
