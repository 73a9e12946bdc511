// The file of an import in PostgreSQL: every line without error, streamed by
// COPY into a temporary table while the rest of the file is still being read
// (PostgreSQL stores it meanwhile), for one join with the directory
// (importPlan.ts). The COPY runs on the import's transaction (rawSql).
import type { Writable } from 'node:stream';
import type { ColumnDataType } from 'kysely';
import { rawSql, type Trx } from '../../db/connection.js';
import type { User } from '../../db/schema.js';
import type { UsersCsvReader } from './csv.js';
import type { ImportErrors } from './importErrors.js';
import type { ImportProgress } from './import.js';
import type { LineChecker } from './importLine.js';
import type { LineIndex } from './lineIndex.js';

/** A line of the file without error, as the file writes it. */
export interface ImportFileTable {
  line: number;
  fullName: User['fullName'];
  matricule: User['matricule'];
  identifiant: User['identifiant'];
  /** the 10 number cells joined by commas, empty ones empty; as written, or already E.164 when they had to be parsed */
  numbers: string;
  /** null: the file leaves the field empty (the user's value, or the default, stays) */
  forfaitMinutes: User['forfaitMinutes'] | null;
  accountStatus: User['accountStatus'] | null;
  billingEnabled: User['billingEnabled'] | null;
}

/** The directory's tables and the file table, for the queries of an import. */
export function withFileTable(trx: Trx) {
  return trx.withTables<{ userImportFile: ImportFileTable }>();
}

/** The columns in the order of a row's COPY text (LineChecker.row). */
const fileColumns: { readonly [C in keyof ImportFileTable]: readonly [ColumnDataType, 'not null' | 'null'] } = {
  line: ['integer', 'not null'],
  fullName: ['text', 'not null'],
  matricule: ['text', 'not null'],
  identifiant: ['text', 'not null'],
  numbers: ['text', 'not null'],
  forfaitMinutes: ['integer', 'null'],
  accountStatus: ['text', 'null'],
  billingEnabled: ['boolean', 'null'],
};

export interface StagedFile {
  /** matricule → first line it is on (lines with errors included) */
  matricules: LineIndex;
  /** lines written to the file table */
  staged: number;
}

/** Creates the file table (dropped at commit) and stages every line without error in it. */
export async function stageFile(
  trx: Trx,
  reader: UsersCsvReader,
  checker: LineChecker,
  errors: ImportErrors,
  onProgress?: (p: ImportProgress) => void,
): Promise<StagedFile> {
  let create = trx.schema.createTable('userImportFile').temporary().onCommit('drop');
  for (const [name, [type, nulls]] of Object.entries(fileColumns)) create = create.addColumn(name, type, (c) => (nulls === 'not null' ? c.notNull() : c));
  await create.execute();
  const copy = await (await rawSql(trx))`COPY user_import_file FROM STDIN`.writable();
  const copied = new Promise<void>((resolve, reject) => {
    copy.on('finish', resolve);
    copy.on('error', reject);
  });
  copied.catch(() => undefined); // awaited below; a failed scan must not leave it unhandled
  let staged: number;
  try {
    staged = await copyLines(reader, copy, checker, errors, onProgress);
  } finally {
    copy.end();
  }
  await copied;
  return { matricules: checker.matricules, staged };
}

/** Resolves when the stream can take more, or has failed (its error surfaces where the COPY is awaited). */
function drained(stream: Writable): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}

/** Reads the file once: each line checked, the good ones written to the COPY stream in 256K-character chunks. */
async function copyLines(
  reader: UsersCsvReader,
  copy: Writable,
  checker: LineChecker,
  errors: ImportErrors,
  onProgress?: (p: ImportProgress) => void,
): Promise<number> {
  const total = onProgress ? reader.lineCount() : 0;
  let chunk = '';
  let staged = 0;
  let records = 0;
  const flush = async () => {
    if (chunk === '') return;
    const ok = copy.write(chunk);
    chunk = '';
    if (!ok) await drained(copy);
  };
  while (reader.next()) {
    if (onProgress && records % 5000 === 0) onProgress({ phase: 'validate', done: records, total: Math.max(total, records) });
    records++;
    const row = checker.row();
    if (row === undefined) continue;
    chunk += row;
    staged++;
    if (chunk.length > 1 << 18) await flush();
  }
  await flush();
  if (reader.error) errors.add({ line: reader.error.line, field: 'file', message: reader.error.message });
  onProgress?.({ phase: 'validate', done: records, total: records });
  return staged;
}
