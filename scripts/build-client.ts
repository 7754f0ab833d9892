// The part of `npm run build` that tsc does not do for wsgate/client:
//   dist/src/client/*.d.ts      declarations, for the package's `wsgate/client` export (tsconfig.json
//                               emits none); with those of the protocol types they import
//   dist/wsgate-client.min.js   browser bundle (esbuild), classic <script>: a global `wsgate`
//   dist/wsgate-client.min.mjs  browser bundle, ES module: import { connect } from '.../wsgate-client.min.mjs'
// and prints the bundles' sizes, minified and gzipped. The bundle's entry is src/client/index.ts
// (standard WebSocket, token in the subprotocol list); Node's entry (node.ts, `ws`) is not in it.
//
//   node dist/scripts/build-client.js            build into dist/
//   node dist/scripts/build-client.js --measure  also weigh the MessagePack options (docs/CLIENT.md)
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { build, type BuildOptions } from 'esbuild';
import ts from 'typescript';

/** The repository root, whether this runs compiled (dist/scripts) or from source (scripts/). */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return dir;
}

export const ROOT = findRoot();
export const BUNDLE = { iife: 'wsgate-client.min.js', esm: 'wsgate-client.min.mjs' } as const;
/** Browsers with WebSocket, TextEncoder, BigInt and DataView 64-bit accessors: 2020 on. */
const TARGET = ['es2020'];

export interface BundleFile {
  readonly file: string;
  readonly bytes: number;
  readonly gzipBytes: number;
}

export interface BuiltClient {
  readonly files: readonly BundleFile[];
  /** every source file in the bundle, relative to the repository root */
  readonly inputs: readonly string[];
}

const common = (): BuildOptions => ({
  bundle: true,
  minify: true,
  target: TARGET,
  platform: 'browser',
  sourcemap: 'linked',
  metafile: true,
  logLevel: 'warning',
  absWorkingDir: ROOT,
});

async function weigh(file: string): Promise<BundleFile> {
  const text = await readFile(file);
  return { file, bytes: text.length, gzipBytes: gzipSync(text, { level: 9 }).length };
}

/** Builds both bundle formats into `outdir`. */
export async function buildClient(outdir: string): Promise<BuiltClient> {
  const entry = join(ROOT, 'src/client/index.ts');
  const version = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  const banner = { js: `/*! wsgate/client ${version} | Apache-2.0 */` };
  const [iife, esm] = await Promise.all([
    build({ ...common(), entryPoints: [entry], format: 'iife', globalName: 'wsgate', outfile: join(outdir, BUNDLE.iife), banner }),
    build({ ...common(), entryPoints: [entry], format: 'esm', outfile: join(outdir, BUNDLE.esm), banner }),
  ]);
  const inputs = new Set([...Object.keys(iife.metafile!.inputs), ...Object.keys(esm.metafile!.inputs)]);
  return {
    files: await Promise.all([weigh(join(outdir, BUNDLE.iife)), weigh(join(outdir, BUNDLE.esm))]),
    inputs: [...inputs].sort(),
  };
}

/** Emits the declarations of the client's two entries (and what they import) into `outdir`, as tsconfig.json lays out files. */
export function emitDeclarations(outdir: string): void {
  const configFile = ts.findConfigFile(ROOT, ts.sys.fileExists, 'tsconfig.json')!;
  const parsed = ts.parseJsonConfigFileContent(ts.readConfigFile(configFile, ts.sys.readFile).config, ts.sys, ROOT);
  const entries = ['src/client/index.ts', 'src/client/node.ts'].map((f) => join(ROOT, f));
  const program = ts.createProgram(entries, { ...parsed.options, outDir: outdir, declaration: true, emitDeclarationOnly: true, sourceMap: false, declarationMap: false, noEmit: false });
  const result = program.emit();
  const errors = [...ts.getPreEmitDiagnostics(program), ...result.diagnostics].filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length > 0) throw new Error(ts.formatDiagnostics(errors, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => ROOT, getNewLine: () => '\n' }));
}

// The MessagePack options, each as the same client (ESM, minified) with a different codec.
const core = `import { WsgateClient } from './src/client/client.ts'; import { standardSocket } from './src/client/transport.ts';`;
const VARIANTS: ReadonlyArray<{ name: string; source: string }> = [
  { name: 'JSON only (no MessagePack)', source: `${core} export const connect = (o) => new WsgateClient(o, standardSocket(WebSocket));` },
  { name: 'own codec (src/client/msgpack.ts), shipped', source: `export { connect } from './src/client/index.ts';` },
  {
    name: 'msgpackr 1.12 (browser build)',
    source: `${core} import { Packr, Unpackr } from 'msgpackr';
      const p = new Packr({ useRecords: false, bundleStrings: false, moreTypes: false, encodeUndefinedAsNil: true });
      const u = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
      export const connect = (o) => new WsgateClient(o, standardSocket(WebSocket), { encode: (v) => p.pack(v), decode: (b) => u.unpack(b) });`,
  },
  {
    name: '@msgpack/msgpack 3.1',
    source: `${core} import { encode, decode } from '@msgpack/msgpack';
      export const connect = (o) => new WsgateClient(o, standardSocket(WebSocket), { encode, decode });`,
  },
];

export async function measureCodecs(): Promise<Array<{ name: string; bytes: number; gzipBytes: number }>> {
  const rows = [];
  for (const v of VARIANTS) {
    const r = await build({ ...common(), sourcemap: false, format: 'esm', write: false, stdin: { contents: v.source, resolveDir: ROOT, loader: 'ts', sourcefile: 'variant.ts' } });
    const out = r.outputFiles[0]!.contents;
    rows.push({ name: v.name, bytes: out.length, gzipBytes: gzipSync(out, { level: 9 }).length });
  }
  return rows;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { measure: { type: 'boolean', default: false }, outdir: { type: 'string', default: join(ROOT, 'dist') } }, strict: true });
  emitDeclarations(values.outdir);
  const built = await buildClient(values.outdir);
  for (const f of built.files) process.stdout.write(`client bundle ${relative(ROOT, f.file)}: ${f.bytes} B minified, ${f.gzipBytes} B gzipped\n`);
  if (values.measure) {
    process.stdout.write('\n| client with | minified | gzipped |\n|---|---|---|\n');
    for (const r of await measureCodecs()) process.stdout.write(`| ${r.name} | ${r.bytes} B | ${r.gzipBytes} B |\n`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
