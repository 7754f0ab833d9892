// The README and docs/CONFIGURATION.md carry the configuration table generated from the option
// table (scripts/config-doc.ts); this keeps them true.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { flagOf, OPTIONS } from '../../src/config/config.js';
import { CONFIG_DOCS, configTable, tableIn } from '../../scripts/config-doc.js';

const read = (p: string): string => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

describe('documentation', () => {
  for (const file of CONFIG_DOCS) {
    it(`${file} carries exactly the generated configuration table (node dist/scripts/config-doc.js --write)`, () => {
      expect(tableIn(read(file))).toBe(configTable());
    });
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

describe('docs/PROTOCOL.md', () => {
  const text = read('docs/PROTOCOL.md');

  it('lists exactly the reply errors and close codes the gateway emits', async () => {
    const { Close, ReplyError } = await import('../../src/errors/codes.js');
    const replyRows = [...text.matchAll(/^\| `([A-Z_]+)` \| ([^|]+) \|/gm)].map((m) => `${m[1]}:${m[2]!.trim()}`);
    expect(replyRows.sort()).toEqual(Object.values(ReplyError).map((e) => `${e.code}:${e.message}`).sort());
    const closeRows = [...text.matchAll(/^\| ((?:4\d{3})|1011) \| ([^|]+) \|/gm)].map((m) => `${m[1]}:${m[2]!.trim()}`);
    expect(closeRows.sort()).toEqual(Object.values(Close).map((c) => `${c.code}:${c.reason}`).sort());
    for (const c of Object.values(Close)) expect(Buffer.byteLength(c.reason)).toBeLessThanOrEqual(123);
  });

  it('every MessagePack example decodes to the JSON example above it', async () => {
    const { decode } = await import('@msgpack/msgpack');
    const pairs = [...text.matchAll(/```json\n(.+?)\n```\n\n```msgpack-hex\n([\s\S]+?)\n```/g)];
    expect(pairs.length).toBeGreaterThanOrEqual(15);
    for (const [, json, hexText] of pairs) {
      const bytes = Buffer.from(hexText!.replace(/\s+/g, ''), 'hex');
      expect(decode(bytes)).toEqual(JSON.parse(json!));
    }
  });

  it('documents every request and push type', () => {
    for (const t of ['join', 'leave', 'publish', 'presence', 'token:refresh', 'ping', 'connected', 'ack', 'token:refreshed', 'error', 'message', 'token:expiring']) {
      expect(text).toContain(`\`${t}\``);
    }
  });
});
