// The file of an import in PostgreSQL: every line without error, streamed by
// COPY into a temporary table while the rest of the file is still being read
// (PostgreSQL stores it meanwhile), for one join with the directory
// (importPlan.ts). The COPY runs on the import's transaction (rawSql).
import type { ColumnDataType } from 'kysely';
import { rawSql, type Trx } from '../../db/connection.js';
import { copyIn, CopyBuffer } from '../../db/copy.js';
import type { User } from '../../db/schema.js';
import type { UsersCsvReader } from './csv.js';
import { headerLineMessage, looksLikeHeader } from '../shared/csvText.js';
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
  // copyIn: a failure anywhere (a line PostgreSQL refuses, the reader throwing)
  // ends the COPY and gives the connection back in a state to roll back
  const counted = { staged: 0 };
  await copyIn(await rawSql(trx), 'COPY user_import_file FROM STDIN', copyLines(reader, checker, errors, counted, onProgress));
  return { matricules: checker.matricules, staged: counted.staged };
}

/** Reads the file once: each line checked, the good ones as COPY text in chunks of about 256 KB. */
function* copyLines(
  reader: UsersCsvReader,
  checker: LineChecker,
  errors: ImportErrors,
  counted: { staged: number },
  onProgress?: (p: ImportProgress) => void,
): Generator<Buffer> {
  const total = onProgress ? reader.lineCount() : 0;
  const out = new CopyBuffer();
  let records = 0;
  while (reader.next()) {
    if (onProgress && records % 5000 === 0) onProgress({ phase: 'validate', done: records, total: Math.max(total, records) });
    records++;
    // a header line (SPEC §6: the format has none) is one error, not one per field
    if (records === 1 && looksLikeHeader(reader.readFields())) {
      const cells = reader.readFields();
      errors.add({ line: reader.line, field: 'header', value: cells.slice(0, 3).join(reader.delimiter), message: headerLineMessage(cells, 'users') });
      continue;
    }
    const row = checker.row();
    if (row === undefined) continue;
    counted.staged++;
    const full = out.add(row);
    if (full !== undefined) yield full;
  }
  const last = out.take();
  if (last !== undefined) yield last;
  if (reader.error) errors.add({ line: reader.error.line, field: 'file', message: reader.error.message });
  onProgress?.({ phase: 'validate', done: records, total: records });
}
