// Issue #24: the thread that answers the PBX does not load the report
// libraries. pdfkit and @e-invoice-eu/core (with pdf-lib and fontkit) put ~31 MB
// on a heap whose every major collection pauses authorizations; they belong to
// the report workers (reports/renderWorker.ts), which draw the PDFs and write the
// Factur-X XML. A child process imports what `forfait serve` imports and logs
// every module it resolves; the same child importing a drawing module shows the
// log sees those libraries when they are loaded.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const REPORT_LIBRARIES = /\/node_modules\/(pdfkit|@e-invoice-eu\/core|pdf-lib|fontkit|@pdf-lib)\//;
let dir: string | undefined;

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** The module URLs a fresh process resolves while importing `modules` (paths from the repository's root). */
async function resolvedBy(modules: string[]): Promise<string[]> {
  dir ??= await mkdtemp(path.join(tmpdir(), 'forfait-imports-'));
  const log = path.join(dir, `${modules.length}-${Date.now()}.log`);
  const register = `import { register } from 'node:module'; register(${JSON.stringify(new URL('../support/resolveLog.mjs', import.meta.url).href)});`;
  const body = modules.map((m) => `await import(${JSON.stringify(path.join(root, m))});`).join(' ');
  await promisify(execFile)(process.execPath, ['--import', 'tsx', '--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', body], {
    cwd: root,
    env: { ...process.env, RESOLVE_LOG: log },
    timeout: 60_000,
  });
  return (await readFile(log, 'utf8')).split('\n').filter(Boolean);
}

describe('the server thread’s modules', () => {
  it('include neither pdfkit nor the Factur-X library: the report workers load them', async () => {
    const urls = await resolvedBy(['cli/serve.ts', 'api/app.ts', 'reports/renderPool.ts']);
    expect(urls.some((u) => u.endsWith('/api/app.ts'))).toBe(true);
    expect(urls.filter((u) => REPORT_LIBRARIES.test(u))).toEqual([]);
  }, 90_000);

  it('are seen by the log when a drawing module is imported (the check can fail)', async () => {
    const urls = await resolvedBy(['reports/invoicePdf.ts', 'services/invoices/facturx.ts']);
    expect(urls.some((u) => /\/node_modules\/pdfkit\//.test(u))).toBe(true);
    expect(urls.some((u) => /\/node_modules\/@e-invoice-eu\/core\//.test(u))).toBe(true);
  }, 90_000);
});
