/** One sample of the Prometheus text exposition format 0.0.4. */
export interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

/** A scrape, parsed: the samples and the `# TYPE` of each family. */
export interface Exposition {
  samples: Sample[]
  types: Map<string, string>
  /** The value of the sample with exactly these labels, if any. */
  value(name: string, labels?: Record<string, string>): number | undefined
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g
const unescapeLabel = (s: string): string => s.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c))

/** Parses what prom-client writes; throws on a line it does not recognise. */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice('# TYPE '.length).split(' ')
      types.set(name!, type!)
      continue
    }
    const m = SAMPLE.exec(line)
    if (m === null) throw new Error(`not an exposition line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = unescapeLabel(l[2]!)
    samples.push({ name: m[1]!, labels, value: Number(m[3]) })
  }
  const same = (a: Record<string, string>, b: Record<string, string>): boolean =>
    Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v)
  return {
    samples,
    types,
    value: (name, labels = {}) => samples.find((s) => s.name === name && same(s.labels, labels))?.value,
  }
}
