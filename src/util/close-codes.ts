/** RFC 6455 §7.4.1: whether a close code may be sent in a close frame (1005, 1006 and 1015 are reserved). */
export function isSendableClose(code: number): boolean {
  return (
    code === 1000 ||
    (code >= 1001 && code <= 1014 && code !== 1005 && code !== 1006) ||
    (code >= 3000 && code < 5000)
  )
}

/** The code itself when it may be sent, else 1000 (a mirrored 1006 becomes a normal close). */
export function sendableClose(code: number): number {
  return isSendableClose(code) ? code : 1000
}
