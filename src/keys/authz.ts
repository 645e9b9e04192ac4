// SPEC §4.3: scopes and allowed models. `admin` implies every scope. Allowed models are glob patterns
// on normalised names (UPSTREAM §5); empty = all models.
import { normalizeModel, shortModel } from '../backends/model-name.ts'
import type { Scope } from '../proxy/endpoints.ts'
import type { KeyRecord } from '../store/store.ts'

export const SCOPES: readonly Scope[] = ['inference', 'models:write', 'admin']

export function hasScope(key: Pick<KeyRecord, 'scopes'>, scope: Scope): boolean {
  return key.scopes.includes(scope) || key.scopes.includes('admin')
}

/**
 * What an `allowed_models` entry may hold: the characters of model names (UPSTREAM §5: host, namespace,
 * tag, digest) and the wildcards. A space or comma means several names run together, which would
 * silently match nothing.
 */
export const MODEL_PATTERN = '^[A-Za-z0-9_.:/@*?-]+$'
export const MODEL_PATTERN_DESCRIPTION = 'a model name or glob such as llama3.2 or qwen3:* (letters, digits and _ . - : / @ * ?)'

type Matcher = (model: string) => boolean
const compiled = new WeakMap<readonly string[], Matcher>()

/**
 * A pattern without `*` or `?` names one model: `llama3` allows exactly `llama3:latest` in any
 * spelling. A pattern with wildcards is matched, case-insensitively, against both the short form
 * (`llama3.2:3b`, `hf.co/org/repo:q4`) and the full form (`registry.ollama.ai/library/llama3.2:3b`).
 */
export function compileAllowedModels(patterns: readonly string[]): Matcher {
  if (patterns.length === 0) return () => true
  const exact = new Set<string>()
  const globs: RegExp[] = []
  for (const p of patterns) {
    if (/[*?]/.test(p)) {
      const source = p
        .toLowerCase()
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')
      globs.push(new RegExp(`^${source}$`))
    } else {
      exact.add(normalizeModel(p))
    }
  }
  return (model) => {
    const full = normalizeModel(model)
    if (exact.has(full)) return true
    if (globs.length === 0) return false
    const short = shortModel(model)
    return globs.some((g) => g.test(short) || g.test(full))
  }
}

export function modelAllowed(key: Pick<KeyRecord, 'allowedModels'>, model: string): boolean {
  let matcher = compiled.get(key.allowedModels)
  if (!matcher) {
    matcher = compileAllowedModels(key.allowedModels)
    compiled.set(key.allowedModels, matcher)
  }
  return matcher(model)
}
