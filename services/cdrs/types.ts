/** The CDR pipeline's shapes: what comes in, what is rated, what is rejected. */
import type { CdrTable } from '../../db/schema.js';

export type Direction = CdrTable['direction'];
/** What the number metadata said of a rated CDR's callee: null when its range is known. */
export type NumberCheck = 'unknown_range' | null;
export type Disposition = CdrTable['disposition'];
export const DISPOSITIONS: readonly Disposition[] = ['answered', 'no_answer', 'busy', 'failed'];

/** Why a CDR was not rated. Stored in rejected_cdrs.reason. */
export type RejectReason = 'UNKNOWN_USER' | 'NO_RATE' | 'MALFORMED';

/** Reasons a later change (a new user, a new rate) can cure: reprocess retries these. */
export const CURABLE_REASONS: readonly RejectReason[] = ['UNKNOWN_USER', 'NO_RATE'];

/** A CDR as received (SPEC §2 field names): JSON values, or the text of CSV cells. */
export interface CdrInput {
  callId?: unknown;
  identifiant?: unknown;
  caller?: unknown;
  callee?: unknown;
  direction?: unknown;
  startedAt?: unknown;
  answeredAt?: unknown;
  durationSeconds?: unknown;
  disposition?: unknown;
  site?: unknown;
  line?: unknown;
}

/** One record of a request or file, before validation. */
export interface IncomingCdr {
  /** Index in a JSON array / NDJSON stream, or the CSV line. */
  position: number;
  /** The record as received: a CSV line or the JSON text of the object. */
  raw: string;
  input: CdrInput;
  /** When reprocessing: the rejected_cdrs row this record came from. */
  rejectId?: string;
  /** A reading error found before mapping (bad CSV quoting, wrong field count, bad JSON). */
  error?: { field?: string; message: string };
}

/** A valid CDR, numbers in E.164 and times in epoch ms, not rated yet. */
export interface NormalizedCdr {
  position: number;
  raw: string;
  rejectId?: string;
  callId: string;
  identifiant: string | null;
  caller: string | null;
  callee: string;
  /** 'unknown_range': the callee has a possible length but lies outside the ranges the metadata knows (rated all the same). */
  numberCheck: NumberCheck;
  direction: Direction;
  startedAtMs: number;
  answeredAtMs: number | null;
  durationSeconds: number;
  disposition: Disposition;
  site: string | null;
  line: string | null;
}

export interface Rejection {
  position: number;
  callId: string | null;
  reason: RejectReason;
  field?: string;
  message: string;
  raw: string;
  rejectId?: string;
}

/** One rejected record in an answer: `index` for JSON, `line` for CSV. */
export interface RejectedItem {
  index?: number;
  line?: number;
  callId: string | null;
  reason: RejectReason;
  field?: string;
  message: string;
}

/** A stored CDR row with its rating: the columns of `cdrs` (db/schema.ts). */
export type { CdrRow } from '../../db/repositories/cdrs.js';

/** A record rated whose callee lies outside the ranges the metadata knows: `index` for JSON, `line` for CSV. */
export interface UnknownRangeItem {
  index?: number;
  line?: number;
  callId: string;
  callee: string;
  message: string;
}

export interface IngestSummary {
  accepted: number;
  duplicates: number;
  /** Every rejected record, up to `maxListedRejects`; `rejectedCount` counts them all. */
  rejected: RejectedItem[];
  rejectedCount: number;
  /** Records whose callee is outside the known number ranges (rated all the same), up to `maxListedRejects`. */
  unknownRange: UnknownRangeItem[];
  unknownRangeCount: number;
}
