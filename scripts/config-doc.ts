// Prints the configuration table (Markdown) from the one option table in src/config/config.ts.
// docs/CONFIGURATION.md and the README carry its output; test/unit/docs.test.ts keeps them in step.
import { flagOf, OPTIONS } from '../src/config/config.js';

const rows = OPTIONS.map((o) => `| \`${o.env}\` | \`${flagOf(o.env)}\` | ${o.def === undefined ? '(unset)' : o.def === '' ? '""' : `\`${o.def}\``} | ${o.help.replace(/\|/g, '\\|')} |`);
process.stdout.write(['| Variable | Flag | Default | Meaning |', '|---|---|---|---|', ...rows].join('\n') + '\n');
