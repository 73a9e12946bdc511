import { execFileSync } from 'node:child_process';
import { parseString } from 'fast-csv';
import { Decimal } from 'decimal.js';
import type { App } from '../../api/app.js';
import { call, testDb } from '../support/app.js';

/**
 * The text of a PDF as poppler's pdftotext reads it (-raw: in the order it is
 * drawn; a label and its value on one baseline share a line), pages separated
 * by form feeds, non-breaking spaces as spaces. An independent reader: the
 * reports embed their fonts (glyph ids in the content, the text through each
 * font's ToUnicode map), which only a real PDF reader turns back into text.
 */
export function pdfText(pdf: Buffer): string {
  return execFileSync('pdftotext', ['-raw', '-enc', 'UTF-8', '-', '-'], { input: pdf }).toString('utf8').replaceAll('\u00a0', ' ');
}

export function pageCount(pdf: Buffer): number {
  return (pdf.toString('latin1').match(/\/Type \/Page\b/g) ?? []).length;
}

export async function parseCsv(text: string, delimiter = ','): Promise<Record<string, string>[]> {
  return new Promise((resolve, reject) => {
    const rows: Record<string, string>[] = [];
    parseString(text, { headers: true, delimiter })
      .on('data', (r: Record<string, string>) => rows.push(r))
      .on('error', reject)
      .on('end', () => resolve(rows));
  });
}

/** Half-up to cents with decimal.js (independent of the engine's money helpers). */
export function round2(d: Decimal.Value): string {
  return new Decimal(d).toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2);
}

/** A user's status history moved back in time, as if it had been enabled since `at`. */
export async function enabledSince(tenantId: string, at: string): Promise<void> {
  await statusEventsAt(tenantId, at);
}

/**
 * Status events (enabled, disabled, deleted) moved to `at`: all of the tenant's, or
 * only those of some users and statuses. Tests bill a fixed month, so what they do
 * "now" is put back into that month's story whatever today's date is.
 */
export async function statusEventsAt(tenantId: string, at: string, only: { userIds?: string[]; statuses?: string[] } = {}): Promise<void> {
  const { sql } = testDb();
  await sql`UPDATE user_status_events SET at = ${at}
             WHERE tenant_id = ${tenantId}
               AND (${only.userIds ?? null}::uuid[] IS NULL OR user_id = ANY(${only.userIds ?? null}::uuid[]))
               AND (${only.statuses ?? null}::text[] IS NULL OR status = ANY(${only.statuses ?? null}::text[]))`;
}

export async function postCdrs(app: App, key: string, cdrs: unknown[]): Promise<void> {
  const res = await call(app, 'POST', '/v1/cdrs', { key, json: cdrs });
  if (res.status !== 200 || res.json.rejectedCount !== 0) throw new Error(`CDRs: ${res.status} ${res.text}`);
}
