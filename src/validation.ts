// SPEC §5: a request the admin API's schemas reject gets a message that names the field, says what it
// must be and shows what came ("field 'limits.rpm' must be an integer of at least 1; got -1"). The
// schemas are the single source (STYLE 4): the words are made from them, not written per route. The
// summaries Elysia makes itself name JSON types, not the values allowed ("should be one of: 'string',
// 'string', 'string'" for the scopes).
import { ValueErrorType } from '@sinclair/typebox/errors'

type Schema = Readonly<Record<string, unknown>>

/** One entry of an Elysia `ValidationError`'s `all`: TypeBox's value error, path as a JSON pointer. */
interface Issue {
  readonly type: number
  readonly path: string
  readonly schema: Schema
  readonly value?: unknown
}

/** What Elysia's `ValidationError` carries that a message needs. */
interface Rejection {
  /** Which part of the request: `body`, `query`, `params`, `headers`; `property` for a value Elysia converted first. */
  readonly type?: string
  /** That part, as parsed. */
  readonly value?: unknown
  readonly all?: readonly Issue[]
}

/**
 * Elysia accepts numbers and booleans in a query or a body as strings too: it adds a string branch of
 * one of these formats beside the schema. It is the same value, so it is not said twice.
 */
const COERCED_FORMATS = new Set(['integer', 'numeric', 'boolean', 'ObjectString', 'ArrayString'])
const SHOWN_CHARS = 60

/** Bodies read for schema'd routes (adminPlugin), kept for the message of a rejection (see locate). */
const sentBodies = new WeakMap<Request, unknown>()

/** Keeps `body` as the one `request` sent, for validationMessage. */
export function rememberBody(request: Request, body: unknown): void {
  sentBodies.set(request, body)
}

export function validationMessage(error: unknown, request: Request): string {
  const rejection = error as Rejection
  let part = rejection.type ?? 'body'
  if (part === 'body' && !isPlainObject(rejection.value)) return 'request body must be a JSON object'
  const issue = rejection.all?.[0]
  if (!issue) return `invalid request ${part}`
  let name = issue.path.slice(1).replaceAll('/', '.')
  if (part === 'property') {
    // A number sent as a string ("limit=0") is checked after Elysia converts it, and that error names
    // no field: the field is found by its value, when one alone holds it.
    const query = Object.fromEntries(new URL(request.url).searchParams)
    const found = locate(issue.value, { query, body: sentBodies.get(request) })
    if (!found) return `a value must be ${describe(issue.schema)}; got ${show(issue.value)}`
    ;[part, name] = found
  }
  const noun = part === 'query' ? 'query parameter' : part === 'params' ? 'path parameter' : part === 'headers' ? 'header' : 'field'
  if (issue.type === ValueErrorType.ObjectAdditionalProperties) {
    const known = Object.keys((issue.schema.properties as Schema | undefined) ?? {})
    return `unknown ${noun} '${name}'${known.length > 0 ? `; known: ${known.join(', ')}` : ''}`
  }
  if (issue.type === ValueErrorType.ObjectRequiredProperty) return `${noun} '${name}' is required`
  return `${noun} '${name}' must be ${describe(issue.schema)}; got ${show(issue.value)}`
}

/** What a value must be, in words, from its JSON schema. */
export function describe(schema: Schema): string {
  if (Array.isArray(schema.anyOf)) {
    const branches = (schema.anyOf as Schema[]).filter((b) => !(b.type === 'string' && COERCED_FORMATS.has(b.format as string)))
    if (branches.every((b) => 'const' in b)) return `one of ${either(branches.map((b) => quote(b.const)))}`
    return either(branches.map(describe))
  }
  if ('const' in schema) return quote(schema.const)
  switch (schema.type) {
    case 'string':
      return describeString(schema)
    case 'integer':
      return describeNumber('an integer', schema)
    case 'number':
      return describeNumber('a number', schema)
    case 'boolean':
      return 'true or false'
    case 'null':
      return 'null'
    case 'array':
      return describeArray(schema)
    case 'object':
      return 'a JSON object'
    default:
      return typeof schema.description === 'string' ? schema.description : 'a valid value'
  }
}

function describeString(schema: Schema): string {
  if (schema.format === 'date-time') return 'an ISO 8601 date-time such as 2027-01-31T12:00:00Z'
  if (typeof schema.pattern === 'string') {
    return typeof schema.description === 'string' ? schema.description : `a string matching ${schema.pattern}`
  }
  const min = schema.minLength as number | undefined
  const max = schema.maxLength as number | undefined
  if (max !== undefined) return `a string of ${min ?? 0} to ${max} characters`
  if (min === 1) return 'a non-empty string'
  return min !== undefined ? `a string of at least ${min} characters` : 'a string'
}

function describeNumber(kind: string, schema: Schema): string {
  const min = schema.minimum as number | undefined
  const max = schema.maximum as number | undefined
  if (min !== undefined && max !== undefined) return `${kind} from ${min} to ${max}`
  if (min !== undefined) return `${kind} of at least ${min}`
  return max !== undefined ? `${kind} of at most ${max}` : kind
}

function describeArray(schema: Schema): string {
  const min = (schema.minItems as number | undefined) ?? 0
  const max = schema.maxItems as number | undefined
  let text = 'a list'
  if (max !== undefined) text = `a list of ${min} to ${max} items`
  else if (min === 1) text = 'a non-empty list'
  else if (min > 1) text = `a list of at least ${min} items`
  if (schema.items && typeof schema.items === 'object') text += `, each ${describe(schema.items as Schema)}`
  if (schema.uniqueItems === true) text += ', without repeats'
  return text
}

/** `'a'`, `'a' or 'b'`, `'a', 'b' or 'c'`. */
function either(words: string[]): string {
  const unique = [...new Set(words)]
  return unique.length <= 1 ? (unique[0] ?? 'a valid value') : `${unique.slice(0, -1).join(', ')} or ${unique.at(-1)}`
}

function quote(value: unknown): string {
  return `'${String(value)}'`
}

/** The value that came, as JSON, cut short: enough to recognise it, never a whole document. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing'
  const text = JSON.stringify(value) ?? String(value)
  return text.length > SHOWN_CHARS ? `${text.slice(0, SHOWN_CHARS)}…` : text
}

/** The part ('query' or 'body') and dotted name of the one field that holds `value`, or its string form. */
function locate(value: unknown, sent: { query: unknown; body: unknown }): [string, string] | undefined {
  const found: Array<[string, string]> = []
  const walk = (part: string, node: unknown, path: string) => {
    if (typeof node === 'object' && node !== null) {
      for (const [key, child] of Object.entries(node)) walk(part, child, path ? `${path}.${key}` : key)
    } else if (node === value || (typeof node === 'string' && node.trim() !== '' && Number(node) === value)) {
      found.push([part, path])
    }
  }
  walk('query', sent.query, '')
  walk('body', sent.body, '')
  return found.length === 1 ? found[0] : undefined
}

function isPlainObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}
