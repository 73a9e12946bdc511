import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

// `npm run bench -- <name>` runs benchmarks/<name>.ts; `npm run bench` runs them all
// (support.ts is shared; forward.ts is the forwarding hop inside `authorize`).
// Ctrl-C or a timeout's SIGTERM still ends through process.exit, so the
// benchmark databases (ephemeral) are stopped with it.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
const dir = import.meta.dirname;
const available = (await readdir(dir))
  .filter((f) => f.endsWith('.ts') && !['run.ts', 'support.ts', 'forward.ts'].includes(f))
  .map((f) => f.slice(0, -3))
  .sort();
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = wanted.filter((w) => !available.includes(w));
if (unknown.length) {
  process.stderr.write(`unknown benchmark(s): ${unknown.join(', ')}; available: ${available.join(', ')}\n`);
  process.exit(2);
}
for (const name of wanted.length ? wanted : available) {
  process.stdout.write(`\n== ${name} ==\n`);
  const mod = (await import(pathToFileURL(path.join(dir, `${name}.ts`)).href)) as { main?: () => Promise<void> };
  if (!mod.main) throw new Error(`benchmarks/${name}.ts exports no main()`);
  await mod.main();
}
