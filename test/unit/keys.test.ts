// Pure pieces of SPEC §4.2, §4.3 and UPSTREAM §5, unit-tested.
import { describe, expect, test } from 'bun:test'
import { createHash } from 'node:crypto'
import { normalizeModel, shortModel } from '../../src/backends/model-name.ts'
import { compileAllowedModels, hasScope } from '../../src/keys/authz.ts'
import { newKey, parseKey, sameDigest, secretDigest, tokenFrom } from '../../src/keys/format.ts'
import { FailureThrottle } from '../../src/keys/throttle.ts'

describe('model names (UPSTREAM §5)', () => {
  test('every spelling of one model normalises to the same name', () => {
    const same = [
      'llama3',
      'llama3:latest',
      'library/llama3:latest',
      'registry.ollama.ai/library/llama3:latest',
      'LLaMA3',
      'llama3@sha256:abc',
    ]
    for (const name of same) expect(normalizeModel(name)).toBe('registry.ollama.ai/library/llama3:latest')
    expect(normalizeModel('user/model:tag')).toBe('registry.ollama.ai/user/model:tag')
    expect(normalizeModel('hf.co/org/repo:Q4_K_M')).toBe('hf.co/org/repo:q4_k_m')
    expect(normalizeModel('gpt-oss:20b-cloud')).toBe('registry.ollama.ai/library/gpt-oss:20b-cloud')
  })
  test('the short form is what /api/tags shows', () => {
    expect(shortModel('registry.ollama.ai/library/llama3.2')).toBe('llama3.2:latest')
    expect(shortModel('user/model')).toBe('user/model:latest')
    expect(shortModel('hf.co/org/repo:q4')).toBe('hf.co/org/repo:q4')
    expect(shortModel('qwen3:cloud')).toBe('qwen3:cloud')
  })
})

describe('allowed models (SPEC §4.3)', () => {
  test('an empty list allows everything', () => {
    expect(compileAllowedModels([])('anything:at-all')).toBe(true)
  })
  test('a plain name is one model in any spelling, and only that tag', () => {
    const allow = compileAllowedModels(['llama3.2'])
    expect(allow('llama3.2')).toBe(true)
    expect(allow('library/llama3.2:latest')).toBe(true)
    expect(allow('LLAMA3.2:latest')).toBe(true)
    expect(allow('llama3.2:1b')).toBe(false)
    expect(allow('llama3.21')).toBe(false)
  })
  test('globs match the short or the full form', () => {
    const allow = compileAllowedModels(['qwen3:*', 'hf.co/org/*', '*-embed-*'])
    expect(allow('qwen3:0.6b')).toBe(true)
    expect(allow('qwen3')).toBe(true)
    expect(allow('qwen2:7b')).toBe(false)
    expect(allow('hf.co/org/repo:Q4_K_M')).toBe(true)
    expect(allow('hf.co/other/repo')).toBe(false)
    expect(allow('nomic-embed-text')).toBe(true)
    expect(compileAllowedModels(['registry.ollama.ai/library/*'])('llama3')).toBe(true)
    expect(compileAllowedModels(['llama3.?'])('llama3.2')).toBe(false) // `?` matches one character, tag still required
    expect(compileAllowedModels(['llama3.?:*'])('llama3.2')).toBe(true)
  })
  test('admin implies every scope', () => {
    expect(hasScope({ scopes: ['admin'] }, 'models:write')).toBe(true)
    expect(hasScope({ scopes: ['inference'] }, 'models:write')).toBe(false)
  })
})

describe('key format (SPEC §4.2)', () => {
  test('keys are nnz_<12 base62>_<43 base62> and parse back', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 200; i++) {
      const k = newKey()
      expect(k.token).toMatch(/^nnz_[0-9A-Za-z]{12}_[0-9A-Za-z]{43}$/)
      expect(parseKey(k.token)).toEqual({ id: k.id, secret: k.secret })
      seen.add(k.id)
    }
    expect(seen.size).toBe(200)
  })
  test('anything else does not parse', () => {
    for (const bad of [
      '',
      'nnz_',
      'nnz_abc_def',
      `sk-${'a'.repeat(40)}`,
      `nnz_${'a'.repeat(12)}_${'b'.repeat(43)} `,
      `nnz_${'a'.repeat(11)}!_${'b'.repeat(43)}`,
    ]) {
      expect(parseKey(bad)).toBeUndefined()
    }
  })
  test("the cache's secret digest is SHA-256 (the runtime's native hash agrees with node:crypto)", () => {
    for (const secret of [newKey().secret, newKey().secret, 'ünïcödé secret']) {
      const digest = secretDigest(secret)
      expect(digest.toString('hex')).toBe(createHash('sha256').update(secret).digest('hex'))
      expect(sameDigest(digest, secretDigest(secret))).toBe(true)
    }
    expect(sameDigest(secretDigest('a'), secretDigest('b'))).toBe(false)
  })
  test('the token comes from Authorization: Bearer or x-api-key', () => {
    expect(tokenFrom(new Headers({ authorization: 'Bearer abc' }))).toBe('abc')
    expect(tokenFrom(new Headers({ authorization: 'bearer  abc ' }))).toBe('abc')
    expect(tokenFrom(new Headers({ 'x-api-key': 'xyz' }))).toBe('xyz')
    expect(tokenFrom(new Headers({}))).toBeUndefined()
  })
})

describe('failure throttle (SPEC §4.2)', () => {
  test('blocks an address after N failures in a window, and frees it when the window ends', () => {
    const t = new FailureThrottle(3, 60_000)
    for (let i = 0; i < 3; i++) t.fail('1.2.3.4', 1000)
    expect(t.blockedFor('1.2.3.4', 2000)).toBe(59)
    expect(t.blockedFor('5.6.7.8', 2000)).toBe(0)
    expect(t.blockedFor('1.2.3.4', 61_001)).toBe(0)
  })
})
