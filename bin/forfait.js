#!/usr/bin/env node
// `npx forfait`: the compiled CLI (dist/, which `npm run build` makes and
// `npm install` and `npm start` run first). `npm run forfait` runs the
// TypeScript sources through tsx instead, for development.
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write('forfait: dist/ is missing; run `npm run build` first\n');
  process.exit(1);
}
await import(main.href);
