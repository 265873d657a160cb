// pgfeed/client must run in a browser: it bundles for the browser platform
// with no Node built-in (esbuild refuses node: imports there) and no Node
// global, and it is the package's `pgfeed/client` subpath, with typings.
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import t from 'tap';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The build `npm run build:client-bundle` runs, of `entry` or of stdin `contents`. */
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
  const client = await import('pgfeed/client');
  t.type(client.connect, 'function');
  t.type(client.poll, 'function');
  t.type(client.SseParser, 'function');
});
