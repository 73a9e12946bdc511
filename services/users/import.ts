// CSV import of the directory (SPEC §6): read and check the whole file while
// streaming its good lines into PostgreSQL (importFile.ts, importLine.ts),
// compare it with the directory there and decide every line (importPlan.ts),
// record the import (snapshot.ts), then write set-based: a handful of
// statements whatever the file size (importWrite.ts).
//
// The directory is read and written under the tenant's directory lock, in one
// transaction: a file is checked against exactly the state it is applied to.
import { isUniqueViolation } from '../../db/errors.js';
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { withTransaction, type Db } from '../../db/connection.js';
import { CsvDecoder, type CsvEncoding } from '../shared/csvText.js';
import { ConflictError } from '../shared/errors.js';
import { UsersCsvReader } from './csv.js';
import { NumberParser } from './fields.js';
import { ImportErrors } from './importErrors.js';
import { stageFile } from './importFile.js';
import { LineChecker } from './importLine.js';
import { Planner, type ImportPlan } from './importPlan.js';
import { writePlan } from './importWrite.js';
import { deferDirectoryUniqueness, directoryTenant, lockDirectory } from './repo.js';
import { recordImport } from './snapshot.js';
import { recordAudit, type Actor } from '../audit/audit.js';

export type ImportMode = 'append' | 'upsert' | 'sync';
export const importModes = ['append', 'upsert', 'sync'] as const satisfies readonly ImportMode[];

export interface ImportProgress {
  phase: 'validate' | 'write';
  done: number;
  total: number;
}

export type ImportStep = 'lock' | 'read' | 'compare' | 'plan' | 'snapshot' | 'write' | 'commit';

export interface ImportOptions {
  mode: ImportMode;
  dryRun?: boolean;
  createdBy?: string | null;
  /** Who imports, for the audit trail. */
  actor?: Actor;
  onProgress?: (p: ImportProgress) => void;
  /** Time spent in each step, in order (benchmarks). */
  onStep?: (step: ImportStep, ms: number) => void;
}

export interface ImportResult {
  /** null for a dry run: nothing was recorded. */
  importId: string | null;
  dryRun: boolean;
  created: number;
  updated: number;
  deleted: number;
  unchanged: number;
  /** The matricules of each group (dry runs only: a plan to read before importing). */
  matricules?: ImportPlan;
  /** How the file's bytes were read (services/shared/csvText.ts). */
  encoding: CsvEncoding;
  /** What reading the file did that the operator should know: a conversion, a BOM removed. */
  notes: string[];
}

/** Calls onStep with the time since the previous mark. */
function stepClock(onStep: ImportOptions['onStep']): (step: ImportStep) => void {
  let start = performance.now();
  return (step) => {
    if (!onStep) return;
    const now = performance.now();
    onStep(step, now - start);
    start = now;
  };
}

/**
 * Imports a users CSV into the tenant's directory. Throws ValidationError (every
 * line error), ConflictError LICENCE_LIMIT, or writes everything.
 */
export async function importUsers(db: Db, tenantId: string, file: string | Uint8Array, options: ImportOptions): Promise<ImportResult> {
  const mark = stepClock(options.onStep);
  // the bytes as text, in whatever encoding a spreadsheet saved them (or a line error)
  const decoder = new CsvDecoder();
  const csv = decoder.push(file) + decoder.end();
  const { encoding, notes } = decoder.reading;
  const { mode, onProgress } = options;
  const dryRun = options.dryRun ?? false;
  try {
    return await withTransaction(db, async (trx) => {
      const tenant = dryRun ? await directoryTenant(trx, tenantId) : await lockDirectory(trx, tenantId);
      mark('lock');
      const reader = new UsersCsvReader(csv);
      const parser = new NumberParser(tenant.country);
      const errors = new ImportErrors();
      const staged = await stageFile(trx, reader, new LineChecker(reader, parser, errors), errors, onProgress);
      mark('read');
      const planner = new Planner(tenant, mode, parser, errors);
      await planner.run(trx, staged.staged, () => mark('compare'));
      mark('plan');
      await planner.checkLicence(trx, staged.staged);
      const { plan } = planner;
      const counts = { created: plan.created.length, updated: plan.updated.length, deleted: plan.deleted.length, unchanged: staged.staged - plan.created.length - plan.updated.length };
      if (dryRun) return { importId: null, dryRun: true, ...counts, matricules: planner.listed(staged.matricules), encoding, notes };
      const importId = randomUUID();
      await deferDirectoryUniqueness(trx);
      await recordImport(trx, { tenantId, importId, mode, summary: { ...counts, rows: staged.staged }, created: planner.createdIds, createdBy: options.createdBy ?? null });
      mark('snapshot');
      if (options.actor) await recordAudit(trx, options.actor, { tenantId, action: 'users.import', targetType: 'import', targetId: importId, after: { mode, ...counts } });
      await writePlan(trx, tenant, importId, planner, onProgress);
      mark('write');
      return { importId, dryRun: false, ...counts, encoding, notes };
    }).finally(() => mark('commit'));
  } catch (err) {
    // deferred uniqueness is checked at commit: only a writer that bypassed the
    // directory lock can get here, and nothing was written
    if (isUniqueViolation(err)) throw new ConflictError('CONFLICT', 'the directory changed during the import; nothing was imported, try again');
    throw err;
  }
}
