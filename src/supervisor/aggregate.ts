// One gateway's /metrics and /healthz from its workers' (docs/WORKERS.md#metrics-and-health). Pure.
//
// /metrics: every family the workers render, once, with the host's value (the sum of the workers',
// except where a sum means nothing: the worst event-loop delay, the cache hit ratio recomputed from
// the summed counts); then each worker's own series under `wsgate_worker_<name>{node="<node id>"}`.
// The host's series keep their names and labels, so dashboards and the bench read one gateway as
// before; a sum over the per-worker families never double-counts, since they are other families.

export interface WorkerMetrics {
  readonly node: string;
  readonly text: string;
}

interface Family {
  readonly name: string;
  help: string | undefined;
  type: string | undefined;
  /** sample key (name + labels) -> values per worker */
  readonly samples: Map<string, { name: string; labels: string; values: number[] }>;
}

/** How the host's value of a gauge comes from its workers'; default: the sum. */
const COMBINE: Record<string, (values: number[]) => number> = {
  wsgate_event_loop_delay_p99_ms: (v) => Math.max(...v),
  wsgate_event_loop_delay_max_ms: (v) => Math.max(...v),
  wsgate_draining: (v) => Math.max(...v),
  wsgate_revocation_mirror_ready: (v) => Math.min(...v),
};

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$/;

function parse(text: string, worker: number, workers: number, families: Map<string, Family>): void {
  const family = (name: string): Family => {
    let f = families.get(name);
    if (!f) families.set(name, (f = { name, help: undefined, type: undefined, samples: new Map() }));
    return f;
  };
  for (const line of text.split('\n')) {
    if (line.startsWith('# HELP ')) {
      const [name, ...rest] = line.slice(7).split(' ');
      family(name!).help ??= rest.join(' ');
    } else if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      family(name!).type ??= type;
    } else if (line !== '' && !line.startsWith('#')) {
      const m = SAMPLE.exec(line);
      if (!m) continue;
      const [, name, labels = '', value] = m;
      const f = family(name!);
      const key = name! + labels;
      let s = f.samples.get(key);
      if (!s) f.samples.set(key, (s = { name: name!, labels, values: new Array<number>(workers).fill(0) }));
      s.values[worker] = Number(value);
    }
  }
}

const withNode = (labels: string, node: string): string => {
  const n = `node="${node.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  return labels === '' ? `{${n}}` : `{${n},${labels.slice(1)}`;
};

const perWorkerName = (name: string): string => name.replace(/^wsgate_/, 'wsgate_worker_');

/** The host's /metrics from its workers' texts, followed by `extra` (the supervisor's own families). */
export function aggregateMetrics(workers: readonly WorkerMetrics[], extra = ''): string {
  const families = new Map<string, Family>();
  workers.forEach((w, i) => parse(w.text, i, workers.length, families));
  const sums = new Map<string, number>();
  const lines: string[] = [];
  for (const f of families.values()) {
    if (f.help !== undefined) lines.push(`# HELP ${f.name} ${f.help}`);
    if (f.type !== undefined) lines.push(`# TYPE ${f.name} ${f.type}`);
    for (const [key, s] of f.samples) {
      const combine = COMBINE[s.name] ?? ((v: number[]) => v.reduce((a, b) => a + b, 0));
      const v = combine(s.values);
      sums.set(key, v);
      lines.push(`${key} ${v}`);
    }
  }
  // A ratio is not a sum: recomputed from the summed counts.
  const hits = sums.get('wsgate_jwt_cache_hits');
  const lookups = sums.get('wsgate_jwt_cache_lookups');
  if (hits !== undefined && lookups !== undefined) {
    const i = lines.findIndex((l) => l.startsWith('wsgate_jwt_cache_hit_ratio '));
    if (i >= 0) lines[i] = `wsgate_jwt_cache_hit_ratio ${lookups === 0 ? 0 : hits / lookups}`;
  }
  for (const f of families.values()) {
    const name = perWorkerName(f.name);
    if (f.help !== undefined) lines.push(`# HELP ${name} ${f.help} (per worker)`);
    if (f.type !== undefined) lines.push(`# TYPE ${name} ${f.type}`);
    for (const s of f.samples.values()) workers.forEach((w, i) => lines.push(`${perWorkerName(s.name)}${withNode(s.labels, w.node)} ${s.values[i]}`));
  }
  return lines.join('\n') + '\n' + extra;
}

/** A value of an unlabelled series (`wsgate_<name> <value>`) in a metrics text; undefined when absent. */
export function metricValue(text: string, name: string): number | undefined {
  const m = new RegExp(`^wsgate_${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}
