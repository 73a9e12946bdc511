/**
 * SPEC §10: CDR files dropped in var/spool/cdr/<tenantId>/ are rated, then moved
 * to done/ (or failed/) with a JSON report beside them. The format comes from
 * the file name: Master.csv or *.asterisk.csv → asterisk, *.freeswitch.csv →
 * freeswitch, any other *.csv → native. A file is taken once it has not changed
 * for `settleMs` (a PBX may still be writing it). Idempotent: a file processed
 * again after a crash rates nothing twice (call ids), it only moves.
 */
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CdrDeps } from '../services/cdrs/context.js';
import type { CdrFormat } from '../services/cdrs/formats.js';
import { importCdrCsv } from '../services/cdrs/importCsv.js';
import { NotFoundError, ValidationError } from '../services/shared/errors.js';

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function spoolFormat(file: string): CdrFormat | undefined {
  const name = file.toLowerCase();
  if (!name.endsWith('.csv')) return undefined;
  if (name === 'master.csv' || name.endsWith('.asterisk.csv')) return 'asterisk';
  if (name.endsWith('.freeswitch.csv')) return 'freeswitch';
  return 'native';
}

export interface SpoolResult {
  files: number;
  done: number;
  failed: number;
}

async function moveWithReport(file: string, to: string, report: unknown): Promise<void> {
  await mkdir(to, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const target = path.join(to, `${stamp}-${path.basename(file)}`);
  await writeFile(`${target}.json`, JSON.stringify(report, null, 2) + '\n');
  await rename(file, target);
}

export async function ingestCdrSpool(deps: CdrDeps, root: string, options: { settleMs?: number; now?: number } = {}): Promise<SpoolResult> {
  const result: SpoolResult = { files: 0, done: 0, failed: 0 };
  const settle = options.settleMs ?? 5_000;
  const now = options.now ?? Date.now();
  let tenants: string[];
  try {
    tenants = (await readdir(root, { withFileTypes: true })).filter((d) => d.isDirectory() && UUID_RE.test(d.name)).map((d) => d.name);
  } catch {
    return result; // no spool directory: nothing dropped yet
  }
  for (const tenantId of tenants) {
    const dir = path.join(root, tenantId);
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const format = entry.isFile() ? spoolFormat(entry.name) : undefined;
      if (format === undefined || entry.name.startsWith('.')) continue;
      const file = path.join(dir, entry.name);
      const info = await stat(file).catch(() => undefined);
      if (!info || (settle > 0 && now - info.mtimeMs < settle)) continue;
      result.files++;
      const startedAt = new Date().toISOString();
      try {
        const summary = await importCdrCsv(deps, tenantId, createReadStream(file), { format, source: `spool:${format}` });
        await moveWithReport(file, path.join(dir, 'done'), { file: entry.name, format, startedAt, finishedAt: new Date().toISOString(), ...summary });
        result.done++;
      } catch (err) {
        if (!(err instanceof ValidationError || err instanceof NotFoundError)) throw err; // the database is down: try again next run
        const details = err instanceof ValidationError ? err.details : [];
        await moveWithReport(file, path.join(dir, 'failed'), { file: entry.name, format, startedAt, error: err.message, details });
        result.failed++;
      }
    }
  }
  return result;
}

/** var/spool/cdr under the data folder (FORFAIT_DATA_DIR, default ./var). */
export function defaultSpoolRoot(dataDir: string): string {
  return path.join(dataDir, 'spool', 'cdr');
}
