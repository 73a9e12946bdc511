/**
 * CDR export (SPEC §6 "CDR export", §7 filters): a header, then one row per CDR
 * with its rating fields and the tenant's reference, numbers in the tenant's
 * display, times in the tenant's zone with their offset, amounts with 4
 * decimals, text cells guarded against formula injection.
 *
 * The rows are written by PostgreSQL itself, `COPY (SELECT …) TO STDOUT (FORMAT
 * csv)`, and the bytes go to the client as they come: no row ever becomes a JS
 * object, memory stays constant, and the export runs close to a raw COPY.
 *
 * Each export has its own connection, opened with the tenant's zone as its
 * TimeZone (and DateStyle ISO): a timestamptz is then printed by PostgreSQL's
 * own output function as local time with offset (`2026-10-01 00:00:02+02`),
 * which costs nothing over a raw COPY, where formatting it in SQL (to_char,
 * to_json) costs 25–40 % of the throughput (measured, benchmarks/RESULTS.md).
 * The connection is closed when the export ends or the client goes away, so no
 * session setting can leak into the shared pool.
 *
 * COPY takes no bind parameters, so the filter values and the reference reach
 * the SELECT as settings of that session: one statement binds them
 * (`set_config(name, value)` over two array parameters) and the SELECT reads
 * each once, `(SELECT current_setting('forfait_export.from')::timestamptz)`:
 * an InitPlan, which an index scan uses like a constant. No value is ever
 * written into SQL text. (The planner does not see the values when it
 * estimates: a tenant is taken to hold its average share of the table.)
 *
 * Only the `national` number display needs libphonenumber: then the same SELECT
 * is read through a cursor (1,000 rows at a time), the two number columns are
 * formatted in JS (through a bounded cache) and fast-csv writes the lines.
 */
import { Readable } from 'node:stream';
import { format } from 'fast-csv';
import postgres from 'postgres';
import { CONTROL_CHARACTER_MESSAGE, formatNumber, hasControlCharacter, tenantCountry } from '../../engine/index.js';
import { textArray } from '../../db/arrays.js';
import { periodRange, type CdrFilters, type TenantDisplay } from '../cdrs/view.js';
import { ValidationError } from '../shared/errors.js';
import { EXCEL, guardText, guardTextSql, withExcelBom } from './csvCells.js';

export const CDR_EXPORT_COLUMNS = [
  'reference', 'call_id', 'identifiant', 'caller', 'callee', 'direction', 'started_at', 'answered_at', 'duration_seconds',
  'disposition', 'site', 'line', 'destination', 'class', 'billable_seconds', 'forfait_seconds', 'charged_seconds', 'cost',
] as const;

export type ExportTenant = TenantDisplay & { id: string; reference: string | null };

/** SPEC §7 filters of GET /v1/cdrs, as received (from/to are dates or date-times in the tenant's zone). */
export type CdrExportFilters = Omit<CdrFilters, 'limit' | 'cursor'> & {
  /** `1`: for French Excel (csvCells.ts excelDialect): a BOM, `;` between cells, a decimal comma. */
  excel?: '0' | '1';
};

/** The SELECT both paths run, and the values it reads: session settings, each bound as a parameter. */
export interface ExportQuery {
  text: string;
  /** Setting name (forfait_export.*) → value. */
  settings: Map<string, string>;
  /** For French Excel (excelDialect). */
  excel: boolean;
}

/** The filter columns the SELECT compares for equality (a setting each when given). */
const EQUALITY_FILTERS = ['identifiant', 'site', 'line', 'class', 'direction'] as const;

/**
 * The SELECT and its values. From/to are checked first (400 naming the field);
 * so is a control character in a text filter (engine/input.ts: no text field holds one).
 */
export function cdrExportQuery(tenant: ExportTenant, f: CdrExportFilters): ExportQuery {
  const settings = new Map<string, string>();
  // An InitPlan: read once per statement, and usable by an index scan. A bare
  // current_setting() would be called again for every row a scan filters
  // (measured: 1,000,000 rows, 0.53 s instead of 0.18 s).
  const value = (name: string, v: string, type = '') => {
    settings.set(`forfait_export.${name}`, v);
    return `(SELECT current_setting('forfait_export.${name}')${type})`;
  };
  const where = [`tenant_id = ${value('tenant', tenant.id, '::uuid')}`];
  const { from, to } = periodRange(f, tenant.timezone);
  if (from !== undefined) where.push(`started_at >= ${value('from', from.toISOString(), '::timestamptz')}`);
  if (to !== undefined) where.push(`started_at < ${value('to', to.toISOString(), '::timestamptz')}`);
  for (const field of EQUALITY_FILTERS) {
    const v = f[field];
    if (v === undefined) continue;
    if (hasControlCharacter(v)) throw new ValidationError(`invalid ${field}`, [{ field, message: `${field} ${CONTROL_CHARACTER_MESSAGE}` }]);
    where.push(`${field} = ${value(field, v)}`);
  }
  if (f.userId !== undefined) where.push(`user_id = ${value('user_id', f.userId, '::uuid')}`);
  const reference = value('reference', guardText(tenant.reference?.trim() || tenant.id));
  // times as text, ISO 8601 with the offset of the session's zone (the tenant's), as every export and the API write them
  const excel = f.excel === '1';
  const text = `SELECT ${reference} AS reference, ${guardTextSql('call_id')} AS call_id, ${guardTextSql('identifiant')} AS identifiant,
      caller, callee, direction, ${ISO_SQL('started_at')} AS started_at, ${ISO_SQL('answered_at')} AS answered_at,
      duration_seconds, disposition, ${guardTextSql('site')} AS site, ${guardTextSql('line')} AS line,
      ${guardTextSql('destination')} AS destination, class, billable_seconds, forfait_seconds, charged_seconds,
      ${excel ? `replace(cost::text, '.', '${EXCEL.decimal}')` : 'cost'} AS cost
    FROM cdrs WHERE ${where.join(' AND ')}
    ORDER BY started_at, id`;
  return { text, settings, excel };
}

/** A timestamptz as ISO 8601 with its offset (2026-11-03T10:15:00+01:00) in the session's zone. */
const ISO_SQL = (column: string) => `to_char(${column}, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM')`;

/**
 * COPY … TO STDOUT as a stream. PostgreSQL may refuse the statement in the same
 * packet that starts the COPY (a value it cannot cast at the first row): then
 * postgres.js creates the stream and destroys it with the error before any
 * reader holds it, and an 'error' event nobody listens to ends the process.
 * A listener from the stream's creation (postgres.js resolves the query with
 * it, as db/copy.ts watches its reject) keeps the error on the stream
 * (`stream.errored`), where its reader finds it.
 */
export async function copyOut(session: postgres.Sql, select: string, delimiter = ','): Promise<Readable> {
  return copyStream(session, `COPY (${select}) TO STDOUT WITH (FORMAT csv, HEADER true, DELIMITER '${delimiter}')`);
}

/** Any `COPY … TO STDOUT` statement as a stream, its errors kept on the stream (see copyOut). */
export async function copyStream(session: postgres.Sql, statement: string): Promise<Readable> {
  const query = session.unsafe(statement) as unknown as postgres.PendingQuery<postgres.Row[]> & {
    resolve?: (value: unknown) => void;
  };
  const resolve = query.resolve;
  if (typeof resolve === 'function') {
    query.resolve = (value: unknown) => {
      if (value instanceof Readable) value.on('error', () => undefined);
      resolve.call(query, value);
    };
  }
  return (await query.readable()) as unknown as Readable;
}

/** A one-connection client on the same server, its session in the tenant's zone. */
function exportSession(shared: postgres.Sql, zone: string): postgres.Sql {
  const o = shared.options;
  // the typings take one host and port; several are given as "h1:p1,h2:p2" (what postgres.js parses)
  const where = o.host.length === 1 ? { host: o.host[0], port: o.port[0] } : { host: o.host.map((h, i) => `${h}:${o.port[i] ?? o.port[0]}`).join(',') };
  return postgres({
    ...where,
    ...(o.path ? { path: o.path } : {}),
    database: o.database,
    user: o.user,
    pass: o.pass as unknown as string,
    ssl: o.ssl,
    max: 1,
    prepare: false,
    fetch_types: false,
    onnotice: () => undefined,
    connection: { application_name: 'forfait-export', TimeZone: zone, DateStyle: 'ISO, YMD' },
  });
}

type ExportRow = Record<(typeof CDR_EXPORT_COLUMNS)[number], string | number | null>;

/** National display: the rows through a cursor, numbers formatted in JS, lines by fast-csv. */
function nationalExport(session: postgres.Sql, tenant: ExportTenant, query: ExportQuery): Readable {
  const country = tenantCountry(tenant.country);
  const cache = new Map<string, string>();
  const show = (n: string | number | null): string => {
    if (n === null) return '';
    const s = String(n);
    let hit = cache.get(s);
    if (hit === undefined) {
      hit = formatNumber(s, 'national', country);
      if (cache.size >= 100_000) cache.clear();
      cache.set(s, hit);
    }
    return hit;
  };
  async function* rows(): AsyncGenerator<ExportRow> {
    for await (const batch of session.unsafe<ExportRow[]>(query.text).cursor(1000)) {
      for (const r of batch) {
        r.caller = show(r.caller);
        r.callee = show(r.callee);
        yield r;
      }
    }
  }
  const source = Readable.from(rows());
  const csv = format<ExportRow, ExportRow>({ headers: [...CDR_EXPORT_COLUMNS], delimiter: query.excel ? EXCEL.delimiter : ',' });
  source.once('error', (err) => csv.destroy(err));
  csv.once('close', () => source.destroy());
  return source.pipe(csv);
}

export interface OpenExport {
  /** CSV bytes. */
  stream: Readable;
  /** Closes the export's connection once the stream ended (complete) or failed or was abandoned (not complete). */
  close(complete: boolean): Promise<void>;
}

/**
 * The export as a stream of CSV bytes. Validation errors (a bad `from`) are
 * thrown here, before the first byte, so they still get the JSON error envelope.
 */
export async function openCdrExport(shared: postgres.Sql, tenant: ExportTenant, filters: CdrExportFilters): Promise<OpenExport> {
  const query = cdrExportQuery(tenant, filters);
  const session = exportSession(shared, tenant.timezone);
  let closed: Promise<void> | undefined;
  let pid: number | undefined;
  // An abandoned COPY cannot be ended from its own connection: the backend is
  // blocked writing rows nobody reads and reads no message (not even a cancel)
  // until then. Terminating that backend (our own, from the shared pool) ends it.
  const close = (complete: boolean) =>
    (closed ??= (async () => {
      if (!complete && pid !== undefined) await shared`SELECT pg_terminate_backend(${pid})`.catch(() => undefined);
      await session.end({ timeout: 0 }).catch(() => undefined);
    })());
  try {
    // the session's settings: every value of the SELECT, bound
    const names = [...query.settings.keys()];
    const values = [...query.settings.values()];
    [{ pid }] = (await session<{ pid: number }[]>`
      SELECT pg_backend_pid() AS pid, set_config(s.name, s.value, false)
        FROM unnest(${textArray(names)}::text[], ${textArray(values)}::text[]) AS s(name, value)`) as unknown as [{ pid: number }];
    const rows = tenant.numberDisplay === 'national' ? nationalExport(session, tenant, query) : await copyOut(session, query.text, query.excel ? EXCEL.delimiter : ',');
    return { stream: query.excel ? withExcelBom(rows) : rows, close };
  } catch (err) {
    await close(false);
    throw err;
  }
}
