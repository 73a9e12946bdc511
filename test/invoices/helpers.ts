import { parseString } from 'fast-csv';
import { Decimal } from 'decimal.js';
import type { App } from '../../api/app.js';
import { call, testDb } from '../support/app.js';

/** WinAnsi bytes 0x80–0x9F that differ from Latin-1 (what pdfkit's standard fonts encode). */
const winAnsi: Record<number, string> = { 128: '€', 133: '…', 145: '‘', 146: '’', 147: '“', 148: '”', 150: '–', 151: '—', 140: 'Œ', 156: 'œ' };

/**
 * The text of an uncompressed pdfkit PDF (compress: false): each text object's
 * TJ/Tj strings decoded from WinAnsi, one line per text object, pages separated
 * by form feeds. Enough for pdfkit's output, not a general PDF reader.
 */
export function pdfText(pdf: Buffer): string {
  const s = pdf.toString('latin1');
  const pages: string[] = [];
  for (const stream of s.split(/stream\r?\n/).slice(1)) {
    const body = stream.slice(0, stream.indexOf('endstream'));
    const blocks = body.match(/BT[\s\S]*?ET/g);
    if (!blocks) continue;
    pages.push(
      blocks
        .map((b) =>
          [...b.matchAll(/<([0-9a-fA-F]*)>/g)]
            .map((m) => Buffer.from(m[1]!, 'hex'))
            .map((bytes) => [...bytes].map((c) => winAnsi[c] ?? String.fromCharCode(c)).join(''))
            .join(''),
        )
        .join('\n')
        .replaceAll('\u00a0', ' '),
    );
  }
  return pages.join('\f');
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
