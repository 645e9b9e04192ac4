// SPEC §4.13: /docs/json is the OpenAPI document generated from the route schemas, with the bearer
// scheme so "Authorize" works; /docs is Swagger UI whose assets the gateway serves itself, so the page
// works with no internet (both @elysiajs/openapi providers load their UI from a public CDN).
import { openapi } from '@elysiajs/openapi'
import { Elysia } from 'elysia'
import { ENDPOINTS } from '../proxy/endpoints.ts'
import { wildcardPathsDoc } from '../proxy/examples.ts'
import type { Services } from '../services.ts'
import { VERSION } from '../version.ts'

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>neuronetz-gateway API</title>
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: '/docs/json', dom_id: '#swagger-ui', deepLinking: true, persistAuthorization: true, tryItOutEnabled: true })
  </script>
</body>
</html>`

const CONTENT_TYPES: Record<string, string> = { js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8', png: 'image/png' }

export function docsRoutes(services: Services) {
  return new Elysia({ name: 'docs' })
    .use(
      openapi({
        path: '/docs',
        specPath: '/docs/json',
        provider: null,
        documentation: {
          info: {
            title: 'neuronetz-gateway',
            version: VERSION,
            description:
              'An authenticated gateway in front of Ollama. Every Ollama (`/api/*`) and OpenAI-compatible (`/v1/*`) endpoint is proxied with streaming; request bodies are forwarded byte for byte, so the schemas here document and never filter. Authorize with a gateway key (`nnz_<id>_<secret>`).',
          },
          tags: [
            { name: 'ollama', description: 'The Ollama API, proxied' },
            { name: 'openai', description: 'The OpenAI-compatible API, proxied' },
            { name: 'admin', description: 'Key, audit, usage and backend administration (scope admin)' },
            { name: 'health', description: 'Liveness and readiness (no key)' },
            { name: 'operations', description: 'Metrics' },
          ],
          components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A gateway key: nnz_<id>_<secret>' } } },
          paths: wildcardPathsDoc(ENDPOINTS),
          security: [{ bearer: [] }],
        },
        exclude: { paths: ['/docs', '/docs/assets/*'] },
      }),
    )
    .get('/docs', () => new Response(PAGE, { headers: { 'content-type': 'text/html; charset=utf-8' } }), { detail: { hide: true } })
    .get(
      '/docs/assets/:name',
      ({ params, set }) => {
        const file = services.runtime.asset(params.name)
        if (!file) {
          set.status = 404
          return 'not found'
        }
        return new Response(file, {
          headers: {
            'content-type': CONTENT_TYPES[params.name.split('.').pop() ?? ''] ?? 'application/octet-stream',
            'cache-control': 'public, max-age=86400',
          },
        })
      },
      { detail: { hide: true } },
    )
}
