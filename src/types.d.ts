declare module '*.sql' {
  const text: string
  export default text
}

// Files Bun embeds in the compiled binary (`with { type: 'file' }` gives their path).
declare module 'swagger-ui-dist/swagger-ui-bundle.js' {
  const path: string
  export default path
}
declare module 'swagger-ui-dist/swagger-ui.css' {
  const path: string
  export default path
}
declare module 'swagger-ui-dist/favicon-32x32.png' {
  const path: string
  export default path
}
