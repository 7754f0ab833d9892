// The configuration table (Markdown) from the one option table in src/config/config.ts.
// docs/CONFIGURATION.md and the README carry it; test/unit/docs.test.ts checks they carry exactly
// this table. `node dist/scripts/config-doc.js --write` rewrites it in both files.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { flagOf, OPTIONS } from '../src/config/config.js';

export function configTable(): string {
  const rows = OPTIONS.map((o) => `| \`${o.env}\` | \`${flagOf(o.env)}\` | ${o.def === undefined ? '(unset)' : o.def === '' ? '""' : `\`${o.def}\``} | ${o.help.replace(/\|/g, '\\|')} |`);
  return ['| Variable | Flag | Default | Meaning |', '|---|---|---|---|', ...rows].join('\n');
}

/** The table as it stands in a Markdown text (from its header row to the first line that is not a row). */
export function tableIn(text: string): string | undefined {
  const lines = text.split('\n');
  const start = lines.indexOf('| Variable | Flag | Default | Meaning |');
  if (start < 0) return undefined;
  let end = start;
  while (end < lines.length && lines[end]!.startsWith('|')) end++;
  return lines.slice(start, end).join('\n');
}

export const CONFIG_DOCS = ['README.md', 'docs/CONFIGURATION.md'];

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--write')) {
    for (const f of CONFIG_DOCS) {
      const path = fileURLToPath(new URL(`../../${f}`, import.meta.url));
      const text = readFileSync(path, 'utf8');
      const old = tableIn(text);
      if (old === undefined) throw new Error(`${f}: no configuration table`);
      writeFileSync(path, text.replace(old, configTable()));
      process.stdout.write(`rewrote the table in ${f}\n`);
    }
  } else {
    process.stdout.write(configTable() + '\n');
  }
}
