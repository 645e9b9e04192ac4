// ISO 8601 times for what is written often (log lines): most calls fall in the same
// second as the one before, so its prefix is made once and only the milliseconds are formatted.
let isoSecond = Number.NaN
let isoPrefix = ''

/** `new Date(ms).toISOString()` for an integer epoch-millisecond time, cheaper when called often. */
export function isoTime(ms: number): string {
  const second = Math.floor(ms / 1000)
  if (second !== isoSecond) {
    isoSecond = second
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20)
  }
  const rest = ms - second * 1000
  return `${isoPrefix}${rest < 100 ? (rest < 10 ? '00' : '0') : ''}${rest}Z`
}
