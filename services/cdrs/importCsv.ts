/**
 * CDR files (SPEC §6): the import endpoint, the spool directory and the CLI all
 * stream a file through here. The file is read chunk by chunk; a malformed line
 * is a MALFORMED reject naming its line, never an error of the whole file. Only
 * a native file whose header is wrong is refused (400), before anything is written.
 */
import { CsvDecoder, headerLineMessage, looksLikeHeader, type CsvReading } from '../shared/csvText.js';
import { ValidationError } from '../shared/errors.js';
import { loadTenantContext, type CdrDeps } from './context.js';
import { CsvReader, type CsvRecord } from './csv.js';
import { checkNativeHeader, detectSeparator, formatHint, recordToIncoming, type CdrFormat } from './formats.js';
import { Ingestor } from './ingest.js';
import type { Actor } from '../audit/audit.js';
import type { IngestSummary } from './types.js';

export interface CsvImportOptions {
  format: CdrFormat;
  source?: string;
  batchSize?: number;
  onProgress?: (records: number) => void;
  /** Who imports (a key or a person): one audit row per batch, with its counts. */
  actor?: Actor;
}

export async function importCdrCsv(
  deps: CdrDeps,
  tenantId: string,
  body: AsyncIterable<Uint8Array | string>,
  options: CsvImportOptions,
): Promise<IngestSummary & CsvReading> {
  const ctx = await loadTenantContext(deps, tenantId);
  const ingestor = new Ingestor(deps, ctx, {
    source: options.source ?? `import:${options.format}`,
    positionKind: 'line',
    batchSize: options.batchSize,
    onProgress: options.onProgress,
    actor: options.actor,
  });
  // the bytes as text, whatever a spreadsheet saved them as (a line error where it cannot be sure)
  const decoder = new CsvDecoder();
  let reader: CsvReader | undefined;
  let head = '';
  let headerSeen = options.format !== 'native';
  let first = true;

  const take = async (records: CsvRecord[]) => {
    for (const r of records) {
      if (!headerSeen) {
        headerSeen = true;
        first = false;
        const problem = r.error ?? checkNativeHeader(r.fields);
        if (problem !== undefined) {
          throw new ValidationError('not a native CDR file', [{ line: r.line, field: 'header', value: r.raw.slice(0, 200), message: problem + formatHint(r.fields) }]);
        }
        continue;
      }
      if (first) {
        first = false;
        // Master.csv and mod_cdr_csv have no header: one reject that says so, not a cryptic one
        if (r.error === undefined && looksLikeHeader(r.fields)) {
          const full = ingestor.push({ position: r.line, raw: r.raw, input: {}, error: { field: 'header', message: headerLineMessage(r.fields, options.format) } });
          if (full !== undefined) await full;
          continue;
        }
      }
      const full = ingestor.push(recordToIncoming(options.format, r));
      if (full !== undefined) await full;
    }
  };

  try {
    for await (const chunk of body) {
      const text = decoder.push(chunk);
      if (reader === undefined) {
        // the separator is decided on the first line
        head += text;
        const nl = head.indexOf('\n');
        if (nl === -1 && head.length < 65_536) continue;
        reader = new CsvReader(detectSeparator(nl === -1 ? head : head.slice(0, nl)));
        const first = head;
        head = '';
        await take(reader.push(first));
        continue;
      }
      await take(reader.push(text));
    }
    const tail = decoder.end();
    if (reader === undefined) {
      reader = new CsvReader(detectSeparator(head + tail));
      await take(reader.push(head + tail));
    } else if (tail !== '') await take(reader.push(tail));
    await take(reader.end());
    if (!headerSeen) throw new ValidationError('empty file', [{ line: 1, field: 'header', message: 'a native CDR file starts with its header' }]);
  } catch (err) {
    await ingestor.abandon();
    throw err;
  }
  return { ...(await ingestor.finish()), ...decoder.reading };
}
