#!/usr/bin/env -S node --single-threaded-gc
// `npx forfait`: the compiled CLI (dist/, which `npm run build` makes and
// `npm install` and `npm start` run first). `npm run forfait` runs the
// TypeScript sources through tsx instead, for development. V8's garbage
// collector runs on each JavaScript thread itself (--single-threaded-gc, as
// `npm start` runs it): docs/operations.md says why.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('forfait: dist/ is missing; run `npm run build` first\n');
  process.exit(1);
}
await import(main.href);
