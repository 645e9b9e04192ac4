import pkg from '../package.json' with { type: 'json' }

// Replaced by `bun build --define` in release builds (scripts/build.ts); source runs say "dev".
declare const __BUILD_COMMIT__: string | undefined

export const VERSION: string = pkg.version
export const COMMIT: string = typeof __BUILD_COMMIT__ === 'string' ? __BUILD_COMMIT__ : 'dev'
