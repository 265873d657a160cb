// pgfeed/client must run in a browser: it bundles for the browser platform
// with no Node built-in (esbuild refuses node: imports there) and no Node
// global, and it is the package's `pgfeed/client` subpath, with typings.
import { build } from 'esbuild';
import ts from 'typescript';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The build `npm run build:browser` runs (without writing), of `entry` or of stdin `contents`. */
function bundle(input: { entry: string } | { contents: string }) {
  return build({
    ...('entry' in input ? { entryPoints: [input.entry] } : { stdin: { contents: input.contents, resolveDir: root, loader: 'ts' } }),
    absWorkingDir: root,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    write: false,
    logLevel: 'silent',
  });
}

t.test('src/client bundles for the browser, with no Node built-in or global', async (t) => {
  const out = await bundle({ entry: 'src/client/index.ts' });
  t.same(out.errors, []);
  const code = out.outputFiles[0].text;
  t.match(code, /function connect\(/, 'the bundle holds the client');
  t.notMatch(code, /\brequire\(|\bprocess\.|\bBuffer\b|from ["']node:/, 'nothing that exists only in Node');
});

t.test('the check fails when a Node import sneaks in', async (t) => {
  // The same build with one Node module added: it must be refused.
  await t.rejects(bundle({ contents: "export * from './src/client/index.ts';\nimport 'node:string_decoder';" }), /node:string_decoder/);
});

t.test('pgfeed/client is the package subpath, with typings', async (t) => {
  t.ok(existsSync(`${root}dist/client/index.d.ts`), 'npm run build emitted dist/client/index.d.ts');
  // Resolved at run time through package.json "exports", against the build
  // (a literal specifier would make the type-check depend on dist/ too).
  const subpath = 'pgfeed/client';
  const client = (await import(subpath)) as typeof import('../../src/client/index.js');
  t.type(client.connect, 'function');
  t.type(client.poll, 'function');
  t.type(client.SseParser, 'function');
});

t.test("the typings check in a browser project: DOM libs, no Node types, skipLibCheck off", async (t) => {
  // A program of one virtual file next to the package, as a page's code would import it.
  const file = `${root}test/client-probe.virtual.ts`;
  const source = [
    "import { connect, poll, type ChangeEvent, type ChangesPage } from 'pgfeed/client';",
    "const feed = connect({ url: 'http://127.0.0.1:8787', project: 'acme' });",
    "feed.on('unavailable', (u) => u.code satisfies 'over_capacity' | 'shutting_down' | 'database_unavailable' | 'subject_over_limit' | 'too_many_streams' | 'rate_limited');",
    'export async function f(): Promise<ChangesPage> { for await (const e of feed) { const x: ChangeEvent = e; void x; } return poll({ url: "http://x", project: "p" }); }',
  ].join('\n');
  const options: ts.CompilerOptions = {
    strict: true, noEmit: true, skipLibCheck: false, types: [], target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
  };
  const host = ts.createCompilerHost(options);
  const { getSourceFile, fileExists, readFile } = host;
  host.getSourceFile = (name, lang, ...rest) => (name === file ? ts.createSourceFile(name, source, lang) : getSourceFile.call(host, name, lang, ...rest));
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  host.readFile = (name) => (name === file ? source : readFile.call(host, name));
  const program = ts.createProgram([file], options, host);
  const problems = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n') + (d.file ? ` (${d.file.fileName})` : ''));
  t.same(problems, [], 'dist/client typings need nothing from Node');
});
