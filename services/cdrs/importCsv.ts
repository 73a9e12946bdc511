/**
 * CDR files (SPEC §6): the import endpoint, the spool directory and the CLI all
 * stream a file through here. The file is read chunk by chunk; a malformed line
 * is a MALFORMED reject naming its line, never an error of the whole file. Only
 * a native file whose header is wrong is refused (400), before anything is written.
 */
import { ValidationError } from '../shared/errors.js';
import { loadTenantContext, type CdrDeps } from './context.js';
import { CsvReader, type CsvRecord } from './csv.js';
import { checkNativeHeader, detectSeparator, recordToIncoming, type CdrFormat } from './formats.js';
import { Ingestor } from './ingest.js';
import type { IngestSummary } from './types.js';

export interface CsvImportOptions {
  format: CdrFormat;
  source?: string;
  batchSize?: number;
  onProgress?: (records: number) => void;
}

export async function importCdrCsv(
  deps: CdrDeps,
  tenantId: string,
  body: AsyncIterable<Uint8Array | string>,
  options: CsvImportOptions,
): Promise<IngestSummary> {
  const ctx = await loadTenantContext(deps, tenantId);
  const ingestor = new Ingestor(deps, ctx, {
    source: options.source ?? `import:${options.format}`,
    positionKind: 'line',
    batchSize: options.batchSize,
    onProgress: options.onProgress,
  });
  const decoder = new TextDecoder('utf-8');
  let reader: CsvReader | undefined;
  let head = '';
  let headerSeen = options.format !== 'native';

  const take = async (records: CsvRecord[]) => {
    for (const r of records) {
      if (!headerSeen) {
        headerSeen = true;
        const problem = r.error ?? checkNativeHeader(r.fields);
        if (problem !== undefined) {
          throw new ValidationError('not a native CDR file', [{ line: r.line, field: 'header', value: r.raw.slice(0, 200), message: problem }]);
        }
        continue;
      }
      const full = ingestor.push(recordToIncoming(options.format, r));
      if (full !== undefined) await full;
    }
  };

  try {
    for await (const chunk of body) {
      const text = typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
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
    const tail = decoder.decode();
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
  return ingestor.finish();
}
