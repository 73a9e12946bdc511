/**
 * Reprocessing rejected CDRs: the ones rejected as UNKNOWN_USER or NO_RATE are
 * read again from their raw record and go through the same batches as any
 * import. Those rated now (or found rated meanwhile) are marked reprocessed_at
 * in the batch's transaction; the others stay pending. Running it again, or two
 * at once, rates nothing twice: the call id decides.
 */
import { pendingRejects } from '../../db/repositories/cdrs.js';
import { loadTenantContext, type CdrDeps } from './context.js';
import { splitRecord } from './csv.js';
import { CDR_FORMATS, detectSeparator, recordToIncoming, type CdrFormat } from './formats.js';
import { Ingestor } from './ingest.js';
import type { Actor } from '../audit/audit.js';
import { CURABLE_REASONS, type CdrInput, type IncomingCdr } from './types.js';

const CHUNK = 10_000;

/** The CSV format a source names ("import:asterisk", "spool:native"), or undefined for JSON sources. */
function csvFormatOf(source: string): CdrFormat | undefined {
  const last = source.split(':').pop() ?? '';
  return (CDR_FORMATS as readonly string[]).includes(last) ? (last as CdrFormat) : undefined;
}

/** The record again, from its raw text. */
export function incomingFromRaw(id: string, source: string, raw: string, position: number): IncomingCdr {
  const format = csvFormatOf(source);
  if (format !== undefined) {
    const fields = splitRecord(raw, detectSeparator(raw)) ?? [];
    return { ...recordToIncoming(format, { line: position, fields, raw }), rejectId: id };
  }
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      return { position, raw, input: parsed as CdrInput, rejectId: id };
    }
  } catch {
    // fall through: kept as malformed
  }
  return { position, raw, input: {}, rejectId: id, error: { message: 'the stored record is not a JSON object' } };
}

export interface ReprocessResult {
  examined: number;
  accepted: number;
  duplicates: number;
  stillRejected: number;
}

export async function reprocessRejects(deps: CdrDeps, tenantId: string, actor?: Actor): Promise<ReprocessResult> {
  const ctx = await loadTenantContext(deps, tenantId, { freshTariff: true });
  const total: ReprocessResult = { examined: 0, accepted: 0, duplicates: 0, stillRejected: 0 };
  let after = '0';
  for (;;) {
    const rows = await pendingRejects(deps.db, tenantId, CURABLE_REASONS, after, CHUNK);
    if (rows.length === 0) return total;
    const ingestor = new Ingestor(deps, ctx, { source: 'reprocess', positionKind: 'index', batchSize: CHUNK, checkStored: true, actor });
    for (const r of rows) await ingestor.push(incomingFromRaw(r.id, r.source, r.raw, Number(r.id)));
    const s = await ingestor.finish();
    total.examined += rows.length;
    total.accepted += s.accepted;
    total.duplicates += s.duplicates;
    total.stillRejected += s.rejectedCount;
    after = rows[rows.length - 1]!.id;
  }
}
