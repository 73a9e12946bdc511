/**
 * The "ingest CDRs" verb. Records are normalized as they arrive and written in
 * batches (services/cdrs/batch.ts, one transaction each); while one batch is in
 * the database the next one is being read and checked, so parsing and writing
 * overlap. Exactly once is per call id and tenant, whatever the batching.
 */
import { writeBatch, type BatchState } from './batch.js';
import type { Actor } from '../audit/audit.js';
import { loadTenantContext, type CdrDeps, type TenantContext } from './context.js';
import { isRejection, normalizeCdr } from './normalize.js';
import { countUnknownRange } from '../shared/numberChecks.js';
import type { CdrInput, CdrRow, IncomingCdr, IngestSummary, NormalizedCdr, Rejection, RejectedItem, UnknownRangeItem } from './types.js';

export const DEFAULT_BATCH_SIZE = 50_000;
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
  /** Batches written at once (default 2); 1 keeps a whole input in one transaction. */
  lanes?: number;
  /**
   * Look for stored call ids before writing each batch (default: only once a batch
   * met one). For inputs likely to repeat calls already rated, such as reprocessing.
   */
  checkStored?: boolean;
  /** Who sends the CDRs (a key or a person): each batch leaves one audit row with its counts. */
  actor?: Actor;
}

/**
 * Lanes: a caller's CDRs always go to the same lane, and each lane writes its
 * batches one after the other, so a user's calls are rated in order and two
 * lanes never wait on each other's row locks. Lanes write concurrently on
 * separate connections: the database, not this process, is what limits an import.
 */
interface Lane {
  cdrs: NormalizedCdr[];
  malformed: Rejection[];
  inFlight: Promise<void> | undefined;
}

export const DEFAULT_LANES = 2;

function laneOf(key: string, lanes: number): number {
  let h = 0;
  for (let i = 0; i < key.length; i++) h = (h * 31 + key.charCodeAt(i)) | 0;
  return (h >>> 0) % lanes;
}

export class Ingestor {
  private readonly lanes: Lane[];
  private failure: unknown;
  private readonly batchSize: number;
  readonly rows: CdrRow[] = [];
  private read = 0;
  private accepted = 0;
  private duplicates = 0;
  private rejectedCount = 0;
  private readonly rejected: RejectedItem[] = [];
  private unknownRangeCount = 0;
  private readonly unknownRange: UnknownRangeItem[] = [];
  private readonly state: BatchState;

  constructor(
    private readonly deps: CdrDeps,
    readonly ctx: TenantContext,
    private readonly options: IngestorOptions,
  ) {
    this.batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.state = { checkStored: options.checkStored ?? false };
    const lanes = Math.max(1, options.lanes ?? DEFAULT_LANES);
    this.lanes = Array.from({ length: lanes }, () => ({ cdrs: [], malformed: [], inFlight: undefined }));
  }

  /**
   * Adds one record. Returns a promise only when a batch was handed to the
   * database: the caller awaits it before pushing more (at most one batch per
   * lane waits for the database). Most records return nothing, which spares a
   * promise and a turn of the event loop per record.
   */
  push(rec: IncomingCdr): Promise<void> | undefined {
    this.read++;
    const n = normalizeCdr(rec, this.ctx);
    let lane: Lane;
    if (isRejection(n)) {
      lane = this.lanes[0]!;
      lane.malformed.push(n);
    } else {
      if (n.numberCheck !== null) this.noteUnknownRange(n);
      lane = this.lanes.length === 1 ? this.lanes[0]! : this.lanes[laneOf(n.identifiant ?? n.callId, this.lanes.length)]!;
      lane.cdrs.push(n);
    }
    if (lane.cdrs.length + lane.malformed.length >= this.batchSize) return this.flush(lane);
    return undefined;
  }

  /** Writes what is buffered and waits for every batch; the summary of the whole ingestion. */
  async finish(): Promise<IngestSummary> {
    for (const lane of this.lanes) await this.flush(lane);
    await Promise.all(this.lanes.map((l) => l.inFlight));
    if (this.failure !== undefined) throw this.failure;
    // lanes finish in any order: list the rejects in input order
    this.rejected.sort((a, b) => (a.line ?? a.index ?? 0) - (b.line ?? b.index ?? 0));
    countUnknownRange('cdrs', this.unknownRangeCount);
    return {
      accepted: this.accepted,
      duplicates: this.duplicates,
      rejected: this.rejected,
      rejectedCount: this.rejectedCount,
      unknownRange: this.unknownRange,
      unknownRangeCount: this.unknownRangeCount,
    };
  }

  private noteUnknownRange(n: NormalizedCdr): void {
    this.unknownRangeCount++;
    if (this.unknownRange.length >= MAX_LISTED_REJECTS) return;
    this.unknownRange.push({
      ...(this.options.positionKind === 'index' ? { index: n.position } : { line: n.position }),
      callId: n.callId,
      callee: n.callee,
      message: `callee ${n.callee} is outside the number ranges known to the metadata: rated by its longest tariff prefix`,
    });
  }

  /** Stops after a failure of the input (the batches already committed stay: they are whole). */
  async abandon(): Promise<void> {
    for (const lane of this.lanes) {
      lane.cdrs = [];
      lane.malformed = [];
    }
    await Promise.all(this.lanes.map((l) => l.inFlight?.catch(() => undefined)));
  }

  private async flush(lane: Lane): Promise<void> {
    // each lane: wait for its previous batch before sending the next
    await lane.inFlight;
    if (this.failure !== undefined) throw this.failure;
    if (lane.cdrs.length === 0 && lane.malformed.length === 0) return;
    const cdrs = lane.cdrs;
    const malformed = lane.malformed;
    lane.cdrs = [];
    lane.malformed = [];
    const readSoFar = this.read;
    lane.inFlight = writeBatch(this.deps.db, this.ctx, cdrs, malformed, { source: this.options.source, wantRows: this.options.keepRows, state: this.state, actor: this.options.actor }).then(
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
        this.failure ??= err;
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
export async function ingestCdrs(deps: CdrDeps, tenantId: string, cdrs: readonly CdrInput[], source: string, actor?: Actor): Promise<IngestResult> {
  const ctx = await loadTenantContext(deps, tenantId);
  const ingestor = new Ingestor(deps, ctx, { source, positionKind: 'index', batchSize: Math.max(1, cdrs.length), keepRows: true, lanes: 1, actor });
  for (let i = 0; i < cdrs.length; i++) {
    const input = cdrs[i]!;
    await ingestor.push({ position: i, raw: JSON.stringify(input), input });
  }
  const summary = await ingestor.finish();
  return { ...summary, rated: ingestor.rows };
}
