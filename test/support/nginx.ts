import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './ws-sink.ts'

export const NGINX = '/usr/sbin/nginx'

export interface NginxOptions {
  /** Where the shipped upstream snippet is pointed (the shadow tracker's port). */
  shadowPort: number | string
  /** The shipped switch as it is (off) or flipped on. */
  switchedOn: boolean
  /** More directives for the `server` block, after the shipped locations. */
  server?: string
}

/** The snippets an operator edits: where the shadow listens, and the /ts/ switch. */
export type Snippet = 'upstream.conf' | 'switch.conf'

export interface RunningNginx {
  url: string
  /** A snippet as nginx reads it now. */
  read(snippet: Snippet): string
  /** Rewrites a snippet, reloads nginx (SIGHUP) and waits until `/ts/api-version` answers `status`. */
  reconfigure(snippet: Snippet, text: string, status: number): Promise<void>
  close(): Promise<void>
}

/**
 * A real nginx running the shipped snippets (nginx/shadow-*.conf) as an operator installs them:
 * upstream and switch at http level, the locations inside a `server` block.
 */
export async function startNginx(o: NginxOptions): Promise<RunningNginx> {
  const dir = mkdtempSync(join(tmpdir(), 'overlord-nginx-'))
  const upstream = readFileSync('nginx/shadow-upstream.conf', 'utf8')
  writeFileSync(
    join(dir, 'upstream.conf'),
    upstream.replace(/server 127\.0\.0\.1:\d+;/, `server 127.0.0.1:${o.shadowPort};`),
  )
  const shipped = readFileSync('nginx/shadow-switch.conf', 'utf8')
  writeFileSync(
    join(dir, 'switch.conf'),
    o.switchedOn ? shipped.replace('default off;', 'default on;') : shipped,
  )
  writeFileSync(join(dir, 'locations.conf'), readFileSync('nginx/shadow-locations.conf', 'utf8'))
  const port = await freePort()
  writeFileSync(
    join(dir, 'nginx.conf'),
    `daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  include ${dir}/upstream.conf;
  include ${dir}/switch.conf;
  server {
    listen 127.0.0.1:${port};
    include ${dir}/locations.conf;
    ${o.server ?? ''}
  }
}
`,
  )
  const nginx: ChildProcess = spawn(NGINX, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'inherit' })
  const exited = new Promise((resolve) => nginx.once('exit', resolve))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    try {
      await fetch(`${url}/ts/api-version`)
      break
    } catch (err) {
      if (i > 200 || nginx.exitCode !== null) throw new Error('nginx did not start', { cause: err })
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return {
    url,
    read: (snippet) => readFileSync(join(dir, snippet), 'utf8'),
    async reconfigure(snippet, text, status) {
      writeFileSync(join(dir, snippet), text)
      nginx.kill('SIGHUP')
      for (let seen = 0; seen < 3; ) {
        const res = await fetch(`${url}/ts/api-version`).catch(() => undefined)
        seen = res?.status === status ? seen + 1 : 0
        await new Promise((r) => setTimeout(r, 50))
      }
    },
    async close() {
      nginx.kill('SIGQUIT')
      await exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/**
 * An nginx.conf for a sandbox in `dir` (pid, logs and temp paths inside it; one worker whose old
 * generation hands its WebSockets over within 2 s of a reload), listening on `port`, including
 * `http` at http level and `server` inside the one server block. Returns the file's path.
 */
export function writeSandboxNginxConf(o: {
  dir: string
  port: number
  http: readonly string[]
  server: readonly string[]
  serverExtra?: string
}): string {
  const file = join(o.dir, 'nginx.conf')
  writeFileSync(
    file,
    `pid ${o.dir}/nginx.pid;
error_log ${o.dir}/error.log;
worker_processes 1;
worker_shutdown_timeout 2s;
events {}
http {
  access_log off;
  client_body_temp_path ${o.dir}/body; proxy_temp_path ${o.dir}/proxy;
  fastcgi_temp_path ${o.dir}/fcgi; uwsgi_temp_path ${o.dir}/uwsgi; scgi_temp_path ${o.dir}/scgi;
${o.http.map((f) => `  include ${f};`).join('\n')}
  server {
    listen 127.0.0.1:${o.port};
${o.server.map((f) => `    include ${f};`).join('\n')}
    ${o.serverExtra ?? ''}
  }
}
`,
  )
  return file
}
