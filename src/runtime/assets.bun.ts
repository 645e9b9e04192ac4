// The Swagger UI files, embedded in the compiled binary by Bun (SPEC §4.13: the UI works offline).

import favicon from 'swagger-ui-dist/favicon-32x32.png' with { type: 'file' }
import css from 'swagger-ui-dist/swagger-ui.css' with { type: 'file' }
import bundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'file' }

export const SWAGGER_ASSETS: Record<string, string> = {
  'swagger-ui-bundle.js': bundle,
  'swagger-ui.css': css,
  'favicon-32x32.png': favicon,
}
