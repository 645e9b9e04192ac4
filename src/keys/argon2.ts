// The argon2 native addon, loaded on first use. A compiled binary unpacks it into the temporary
// directory at run time (STACK); when that is not writable the load fails, and this says why in one
// line instead of a stack trace.
type Argon2 = typeof import('@node-rs/argon2')

let loading: Promise<Argon2> | undefined

export class Argon2LoadError extends Error {
  constructor(cause: unknown) {
    const tmp = process.env.TMPDIR || '/tmp'
    // The addon's own message blames npm; the usual cause for a compiled binary is the temp directory.
    super(
      `cannot load the argon2 native addon: the gateway unpacks it into the temporary directory at start; make ${tmp} exist and be writable, or set TMPDIR to a directory that is`,
    )
    this.name = 'Argon2LoadError'
    this.cause = cause
  }
}

export function loadArgon2(): Promise<Argon2> {
  loading ??= import('@node-rs/argon2').catch((err) => {
    loading = undefined
    throw new Argon2LoadError(err)
  })
  return loading
}
