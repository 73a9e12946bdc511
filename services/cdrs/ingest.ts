/**
 * The "ingest CDRs" verb. Records are normalized as they arrive and written in
 * batches (services/cdrs/batch.ts, one transaction each); while one batch is in
 * the database the next one is being read and checked, so parsing and writing
 * overlap. Exactly once is per call id and tenant, whatever the batching.
 */
import { writeBatch } from './batch.js';
import { loadTenantContext, type CdrDeps, type TenantContext } from './context.js';
import { isRejection, normalizeCdr } from './normalize.js';
import type { CdrInput, CdrRow, IncomingCdr, IngestSummary, NormalizedCdr, Rejection, RejectedItem } from './types.js';

export const DEFAULT_BATCH_SIZE = 20_000;
/** An answer lists at most this many rejects (all are stored; `rejectedCount` counts them all). */
export const MAX_LISTED_REJECTS = 10_000;

export interface IngestorOptions {
  /** Stored with each reject and as the ledger entries' created_by: "api", "import:asterisk", "spool:<file>"… */
  source: string;
  /** Rejects are listed with `index` (JSON) or `line` (CSV). */
  positionKind: 'index' | 'line';
  batchSize?: number;
  /** Keep the rated rows (small inputs only: the JSON API, call end). */
  keepRows?: boolean;
  /** Called after each committed batch with the records read so far. */
  onProgress?: (done: number) => void;
}

export class Ingestor {
  private cdrs: NormalizedCdr[] = [];
  private malformed: Rejection[] = [];
  private inFlight: Promise<void> | undefined;
  private failure: unknown;
  private readonly batchSize: number;
  readonly rows: CdrRow[] = [];
  private read = 0;
  private accepted = 0;
  private duplicates = 0;
  private rejectedCount = 0;
  private readonly rejected: RejectedItem[] = [];

  constructor(
    private readonly deps: CdrDeps,
    readonly ctx: TenantContext,
    private readonly options: IngestorOptions,
  ) {
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
  }

  /** Adds one record; resolves when it may take more (at most one batch waits for the database). */
  async push(rec: IncomingCdr): Promise<void> {
    this.read++;
    const n = normalizeCdr(rec, this.ctx, this.ctx.numbers);
    if (isRejection(n)) this.malformed.push(n);
    else this.cdrs.push(n);
    if (this.cdrs.length + this.malformed.length >= this.batchSize) await this.flush();
  }

  /** Writes what is buffered and waits for every batch; the summary of the whole ingestion. */
  async finish(): Promise<IngestSummary> {
    await this.flush();
    await this.inFlight;
    if (this.failure !== undefined) throw this.failure;
    return { accepted: this.accepted, duplicates: this.duplicates, rejected: this.rejected, rejectedCount: this.rejectedCount };
  }

  /** Stops waiting on the database after a failure of the input (the committed batches stay). */
  async abandon(): Promise<void> {
    this.cdrs = [];
    this.malformed = [];
    await this.inFlight?.catch(() => undefined);
  }

  private async flush(): Promise<void> {
    // pipeline depth 1: wait for the previous batch before sending this one
    await this.inFlight;
    if (this.failure !== undefined) throw this.failure;
    if (this.cdrs.length === 0 && this.malformed.length === 0) return;
    const cdrs = this.cdrs;
    const malformed = this.malformed;
    this.cdrs = [];
    this.malformed = [];
    const readSoFar = this.read;
    this.inFlight = writeBatch(this.deps.sql, this.ctx, cdrs, malformed, { source: this.options.source, wantRows: this.options.keepRows }).then(
      (r) => {
        this.accepted += r.accepted;
        this.duplicates += r.duplicates;
        this.rejectedCount += r.rejections.length;
        for (const x of r.rejections) {
          if (this.rejected.length >= MAX_LISTED_REJECTS) break;
          this.rejected.push(rejectedItem(x, this.options.positionKind));
        }
        if (this.options.keepRows) this.rows.push(...r.rows);
        this.options.onProgress?.(readSoFar);
      },
      (err: unknown) => {
        this.failure = err;
      },
    );
  }
}

function rejectedItem(r: Rejection, kind: 'index' | 'line'): RejectedItem {
  return {
    ...(kind === 'index' ? { index: r.position } : { line: r.position }),
    callId: r.callId,
    reason: r.reason,
    ...(r.field !== undefined ? { field: r.field } : {}),
    message: r.message,
  };
}

export interface IngestResult extends IngestSummary {
  /** The CDRs rated by this call (not the duplicates), as stored. */
  rated: CdrRow[];
}

/**
 * Rates CDRs given as objects (SPEC §2 fields) in one transaction: the JSON API
 * and the call-end route use it. Positions in `rejected` are indexes in `cdrs`.
 */
export async function ingestCdrs(deps: CdrDeps, tenantId: string, cdrs: readonly CdrInput[], source: string): Promise<IngestResult> {
  const ctx = await loadTenantContext(deps, tenantId);
  const ingestor = new Ingestor(deps, ctx, { source, positionKind: 'index', batchSize: Math.max(1, cdrs.length), keepRows: true });
  for (let i = 0; i < cdrs.length; i++) {
    const input = cdrs[i]!;
    await ingestor.push({ position: i, raw: JSON.stringify(input), input });
  }
  const summary = await ingestor.finish();
  return { ...summary, rated: ingestor.rows };
}
