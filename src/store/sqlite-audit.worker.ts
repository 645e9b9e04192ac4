// The embedded store's audit thread (see sqlite-audit.ts): its own connection to the store's file,
// one request at a time, each answered once it is committed or has failed.
import type { DatabaseSync } from 'node:sqlite'
import type { AuditEvent } from '../audit/event.ts'
import { AuditInserter, type AuditThreadReply, type AuditThreadRequest, openSqlite } from './sqlite-audit.ts'

const port = globalThis as unknown as {
  onmessage: ((e: MessageEvent<AuditThreadRequest>) => void) | null
  postMessage(reply: AuditThreadReply): void
}

let db: DatabaseSync | undefined
let inserter: AuditInserter | undefined

port.onmessage = ({ data: request }) => {
  const id = request.type === 'open' ? 0 : request.id
  try {
    if (request.type === 'open') {
      db = openSqlite(request.file)
      inserter = new AuditInserter(db)
    } else if (request.type === 'insert') {
      if (!inserter) throw new Error('the audit thread has no open store')
      inserter.insert(JSON.parse(request.events) as AuditEvent[])
    } else if (db?.isOpen) db.close()
    port.postMessage({ id })
  } catch (err) {
    port.postMessage({ id, error: err instanceof Error ? err.message : String(err) })
  }
}
