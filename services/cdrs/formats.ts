/**
 * CDR CSV formats (SPEC §6) and how each maps to a CDR: `native` (with a
 * header), Asterisk `Master.csv` (cdr_csv) and FreeSWITCH `mod_cdr_csv` with its
 * default template. docs/cdrs.md explains every mapping choice.
 */
import { createHash } from 'node:crypto';
import type { CsvRecord } from './csv.js';
import type { CdrInput, Disposition, IncomingCdr } from './types.js';

export const CDR_FORMATS = ['native', 'asterisk', 'freeswitch'] as const;
export type CdrFormat = (typeof CDR_FORMATS)[number];

export const NATIVE_COLUMNS = [
  'call_id', 'identifiant', 'caller', 'callee', 'direction', 'started_at',
  'answered_at', 'duration_seconds', 'disposition', 'site', 'line',
] as const;

/** `;` when the first line uses it and no comma (a French spreadsheet), else `,`. */
export function detectSeparator(firstLine: string): ',' | ';' {
  const unquoted = firstLine.replace(/"[^"]*"/g, '');
  return unquoted.includes(';') && !unquoted.includes(',') ? ';' : ',';
}

/** undefined when the header is the native one, else what is wrong with it. */
export function checkNativeHeader(fields: string[]): string | undefined {
  const names = fields.map((f) => f.trim().toLowerCase());
  const expected = NATIVE_COLUMNS.join(',');
  if (names.join(',') !== expected) return `the header must be: ${expected}`;
  return undefined;
}

function native(r: CsvRecord): IncomingCdr {
  const f = r.fields;
  if (f.length !== NATIVE_COLUMNS.length) {
    return { position: r.line, raw: r.raw, input: {}, error: { field: 'row', message: `expected ${NATIVE_COLUMNS.length} fields, got ${f.length}` } };
  }
  const input: CdrInput = {
    callId: f[0], identifiant: f[1], caller: f[2], callee: f[3], direction: f[4], startedAt: f[5],
    answeredAt: f[6], durationSeconds: f[7], disposition: f[8], site: f[9], line: f[10],
  };
  return { position: r.line, raw: r.raw, input };
}

const ASTERISK_DISPOSITIONS: Record<string, Disposition> = {
  ANSWERED: 'answered',
  'NO ANSWER': 'no_answer',
  BUSY: 'busy',
  FAILED: 'failed',
  CONGESTION: 'failed',
};

/** A stable call id for a row logged without uniqueid: the hash of the whole row (SPEC §6). */
export function rowHashCallId(raw: string): string {
  return `ast-${createHash('sha256').update(raw).digest('hex').slice(0, 40)}`;
}

/**
 * cdr_csv: accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp,
 * lastdata, start, answer, end, duration, billsec, disposition, amaflags
 * [, uniqueid [, userfield [, peeraccount, linkedid, sequence]]].
 */
function asterisk(r: CsvRecord): IncomingCdr {
  const f = r.fields;
  if (f.length < 16 || f.length > 21) {
    return { position: r.line, raw: r.raw, input: {}, error: { field: 'row', message: `an Asterisk Master.csv row has 16 to 21 fields, got ${f.length}` } };
  }
  const disp = (f[14] ?? '').trim().toUpperCase();
  const disposition = ASTERISK_DISPOSITIONS[disp];
  if (disposition === undefined) {
    return { position: r.line, raw: r.raw, input: {}, error: { field: 'disposition', message: `unknown Asterisk disposition "${f[14]}"` } };
  }
  const uniqueid = (f[16] ?? '').trim();
  const input: CdrInput = {
    callId: uniqueid !== '' ? uniqueid : rowHashCallId(r.raw),
    identifiant: f[0],
    caller: f[1],
    callee: f[2],
    direction: 'out',
    startedAt: f[9],
    answeredAt: f[10],
    durationSeconds: f[13],
    disposition,
  };
  return { position: r.line, raw: r.raw, input };
}

/** SPEC §6: the hangup cause decides, and NORMAL_CLEARING is answered only with billsec > 0. */
export function freeswitchDisposition(cause: string, billsec: string): Disposition {
  const c = cause.trim().toUpperCase();
  if (c === 'NORMAL_CLEARING') return /^\d+$/.test(billsec.trim()) && Number(billsec) > 0 ? 'answered' : 'failed';
  if (c === 'NO_ANSWER' || c === 'NO_USER_RESPONSE' || c === 'ORIGINATOR_CANCEL') return 'no_answer';
  if (c === 'USER_BUSY') return 'busy';
  return 'failed';
}

/**
 * mod_cdr_csv default template: caller_id_name, caller_id_number,
 * destination_number, context, start_stamp, answer_stamp, end_stamp, duration,
 * billsec, hangup_cause, uuid, bleg_uuid, accountcode [, read_codec, write_codec].
 */
function freeswitch(r: CsvRecord): IncomingCdr {
  const f = r.fields;
  if (f.length !== 13 && f.length !== 15) {
    return { position: r.line, raw: r.raw, input: {}, error: { field: 'row', message: `a mod_cdr_csv row has 13 or 15 fields, got ${f.length}` } };
  }
  const input: CdrInput = {
    callId: f[10],
    identifiant: f[12],
    caller: f[1],
    callee: f[2],
    direction: 'out',
    startedAt: f[4],
    answeredAt: f[5],
    durationSeconds: f[8],
    disposition: freeswitchDisposition(f[9] ?? '', f[8] ?? ''),
  };
  return { position: r.line, raw: r.raw, input };
}

const HANGUP_CAUSE_RE = /^[A-Z][A-Z_]+$/;

/**
 * The PBX format a record looks like, when it looks like one: an Asterisk
 * Master.csv line (16 to 21 fields, a cdr_csv disposition 15th) or a FreeSWITCH
 * mod_cdr_csv one (13 or 15 fields, a hangup cause 10th). For the message of a
 * file imported with the wrong format.
 */
export function guessFormat(fields: readonly string[]): Exclude<CdrFormat, 'native'> | undefined {
  const n = fields.length;
  if (n >= 16 && n <= 21 && ASTERISK_DISPOSITIONS[(fields[14] ?? '').trim().toUpperCase()] !== undefined) return 'asterisk';
  if ((n === 13 || n === 15) && HANGUP_CAUSE_RE.test((fields[9] ?? '').trim())) return 'freeswitch';
  return undefined;
}

/** What to say of a first line that is not the native header but another format's record. */
export function formatHint(fields: readonly string[]): string {
  const guess = guessFormat(fields);
  if (guess === undefined) return '';
  const name = guess === 'asterisk' ? 'an Asterisk Master.csv' : 'a FreeSWITCH mod_cdr_csv';
  return `; this line looks like ${name} record: import the file with format=${guess} (CLI: --format ${guess})`;
}

/** A CSV record of `format` as a received CDR (a reading error is kept on it, to be rejected as MALFORMED). */
export function recordToIncoming(format: CdrFormat, r: CsvRecord): IncomingCdr {
  if (r.error) return { position: r.line, raw: r.raw, input: {}, error: { field: 'row', message: r.error } };
  if (format === 'native') return native(r);
  if (format === 'asterisk') return asterisk(r);
  return freeswitch(r);
}
