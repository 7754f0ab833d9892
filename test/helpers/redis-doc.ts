// docs/REDIS.md's key and channel tables as patterns: the tests check that every key and channel
// the gateway uses is documented there, and that what is documented is in use.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface Documented {
  readonly name: string;
  readonly pattern: RegExp;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The first column of the table under `## <section>`, each as a pattern for the given key prefix. */
export function documented(section: 'Keys' | 'Channels', prefix: string): Documented[] {
  const text = readFileSync(fileURLToPath(new URL('../../docs/REDIS.md', import.meta.url)), 'utf8');
  const start = text.indexOf(`\n## ${section}\n`);
  if (start < 0) throw new Error(`docs/REDIS.md has no "## ${section}" section`);
  const body = text.slice(start + 1).split('\n## ')[0]!;
  const rows = body.split('\n').filter((l) => l.startsWith('| `'));
  return rows.map((row) => {
    const name = /^\| `([^`]+)`/.exec(row)![1]!;
    let re = esc(name).replace(esc('<p>'), esc(prefix));
    re = re.replace(/\\\{[NRT]\\\}/g, '\\{\\d+:[^}]*\\}');
    re = re.replace(/<[^>]+>/g, '.+');
    return { name, pattern: new RegExp(`^${re}$`) };
  });
}

/** Keys (or channels) no documented pattern matches, and documented names nothing matched. */
export function compare(actual: readonly string[], docs: readonly Documented[]): { undocumented: string[]; unused: string[] } {
  const used = new Set<string>();
  const undocumented: string[] = [];
  for (const k of actual) {
    const d = docs.find((x) => x.pattern.test(k));
    if (d) used.add(d.name);
    else undocumented.push(k);
  }
  return { undocumented, unused: docs.map((d) => d.name).filter((n) => !used.has(n)) };
}
