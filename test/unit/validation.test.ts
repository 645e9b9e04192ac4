// SPEC §5: what an admin field must be, in words made from its schema (src/validation.ts). The messages
// as clients get them are tested through the front door in test/keys.test.ts.
import { expect, describe as group, test } from 'bun:test'
import { t } from 'elysia'
import { describe } from '../../src/validation.ts'

group('a schema in words', () => {
  test.each([
    [t.Union([t.Literal('a'), t.Literal('b'), t.Literal('c')]), "one of 'a', 'b' or 'c'"],
    [t.Literal('only'), "'only'"],
    [t.Union([t.String({ format: 'date-time' }), t.Null()]), 'an ISO 8601 date-time such as 2027-01-31T12:00:00Z or null'],
    [t.Integer({ minimum: 1, maximum: 9 }), 'an integer from 1 to 9'],
    [t.Number({ maximum: 0.5 }), 'a number of at most 0.5'],
    [t.Number(), 'a number'],
    [t.Boolean(), 'true or false'],
    [t.String(), 'a string'],
    [t.String({ minLength: 1 }), 'a non-empty string'],
    [t.String({ minLength: 3 }), 'a string of at least 3 characters'],
    [t.String({ maxLength: 8 }), 'a string of 0 to 8 characters'],
    [t.String({ pattern: '^x+$' }), 'a string matching ^x+$'],
    [t.String({ pattern: '^x+$', description: 'a run of x' }), 'a run of x'],
    [t.Array(t.String(), { minItems: 2 }), 'a list of at least 2 items, each a string'],
    [t.Array(t.Integer(), { maxItems: 3, uniqueItems: true }), 'a list of 0 to 3 items, each an integer, without repeats'],
    [t.Record(t.String(), t.Unknown()), 'a JSON object'],
  ])('%j', (schema, words) => {
    expect(describe(schema as unknown as Record<string, unknown>)).toBe(words)
  })

  test("Elysia's string form of a number is not said twice", () => {
    const coerced = {
      anyOf: [
        { type: 'string', format: 'integer' },
        { type: 'integer', minimum: 1 },
      ],
    }
    expect(describe(coerced)).toBe('an integer of at least 1')
  })
})
