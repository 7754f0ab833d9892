// The README and docs/CONFIGURATION.md carry the configuration table generated from the option
// table (scripts/config-doc.ts); this keeps them true.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { flagOf, OPTIONS } from '../../src/config/config.js';

const read = (p: string): string => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

describe('documentation', () => {
  for (const file of ['README.md', 'docs/CONFIGURATION.md']) {
    it(`${file} documents every option with its flag and default`, () => {
      const text = read(file);
      for (const o of OPTIONS) {
        const row = text.split('\n').find((l) => l.startsWith(`| \`${o.env}\` |`));
        expect(row, o.env).toBeDefined();
        expect(row).toContain(`\`${flagOf(o.env)}\``);
        if (o.def !== undefined && o.def !== '') expect(row).toContain(`\`${o.def}\``);
      }
    });
  }

  it('README opens with the two set-up commands', () => {
    const text = read('README.md');
    expect(text).toContain('```sh\nnpm ci && npm start\n```');
    expect(text).toContain('```sh\nnpm test\n```');
    expect(read('.ci/run')).toMatch(/\nnpm test\n/);
  });
});
