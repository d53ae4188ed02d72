/** A request as it arrives through nginx: never internal trust (CONTRACT.md §5). */
export const PROXIED = { 'x-forwarded-for': '203.0.113.7' } as const

export interface LoginAnswer {
  status: number
  body: any
  /** `name=value` of the session cookie set, if any, ready for a `Cookie` header. */
  cookie: string | undefined
  setCookie: string | null
}

/** `POST /login` as JSON, through "nginx" (a forwarded request). */
export async function login(
  url: string,
  username: string,
  password: string,
  headers: Record<string, string> = {},
): Promise<LoginAnswer> {
  const res = await fetch(`${url}/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...PROXIED, ...headers },
    body: JSON.stringify({ username, password }),
  })
  const setCookie = res.headers.get('set-cookie')
  return {
    status: res.status,
    body: await res.json(),
    cookie: setCookie?.split(';')[0],
    setCookie,
  }
}

/** A forwarded request carrying `cookie`. */
export async function asUser(
  url: string,
  cookie: string | undefined,
  init: RequestInit = {},
): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    ...init,
    headers: { ...PROXIED, ...(cookie === undefined ? {} : { cookie }), ...(init.headers as object) },
  })
  const text = await res.text()
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) }
}
