// UPSTREAM §5: `[host/][namespace/]model[:tag][@digest]` with defaults registry.ollama.ai, library,
// latest. `llama3`, `llama3:latest`, `library/llama3:latest` and the full form are one model.
const DEFAULT_HOST = 'registry.ollama.ai'
const DEFAULT_NAMESPACE = 'library'
const DEFAULT_TAG = 'latest'

/** The canonical, lower-cased full name: `host/namespace/model:tag`. The digest is not part of identity. */
export function normalizeModel(name: string): string {
  let rest = name.trim().toLowerCase()
  const at = rest.indexOf('@')
  if (at !== -1) rest = rest.slice(0, at)
  const parts = rest.split('/')
  let last = parts.pop() ?? ''
  let tag = DEFAULT_TAG
  const colon = last.lastIndexOf(':')
  if (colon !== -1) {
    tag = last.slice(colon + 1) || DEFAULT_TAG
    last = last.slice(0, colon)
  }
  const namespace = parts.pop() ?? DEFAULT_NAMESPACE
  const host = parts.length > 0 ? parts.join('/') : DEFAULT_HOST
  return `${host}/${namespace}/${last}:${tag}`
}

/** The shortest form, as `/api/tags` shows it (tag always present). */
export function shortModel(name: string): string {
  const full = normalizeModel(name)
  if (full.startsWith(`${DEFAULT_HOST}/${DEFAULT_NAMESPACE}/`)) return full.slice(DEFAULT_HOST.length + DEFAULT_NAMESPACE.length + 2)
  if (full.startsWith(`${DEFAULT_HOST}/`)) return full.slice(DEFAULT_HOST.length + 1)
  return full
}

/**
 * `fn` of a model name, remembered: clients name the same few models on every request. Bounded: the
 * names come from request bodies, so the memory is emptied when it fills.
 */
export function remembered(fn: (name: string) => string, max = 1024): (name: string) => string {
  const seen = new Map<string, string>()
  return (name) => {
    let value = seen.get(name)
    if (value === undefined) {
      if (seen.size >= max) seen.clear()
      value = fn(name)
      seen.set(name, value)
    }
    return value
  }
}
