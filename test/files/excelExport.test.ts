import { describe, expect, it } from 'vitest';
import { testApp } from '../support/app.js';
import { cdrTenant, cdrUser } from '../cdrs/helpers.js';
import { parseCsv as rows, postCdrs } from '../invoices/helpers.js';

const app = testApp();

async function bytes(path: string, key: string): Promise<{ status: number; body: Buffer; type: string | null }> {
  const res = await app.app.request(path, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()), type: res.headers.get('content-type') };
}

describe('CSV exports for French Excel: ?excel=1 (issue 18)', () => {
  for (const numberDisplay of ['international', 'national'] as const) {
    it(`a UTF-8 BOM, ";" between cells, the decimal comma, ISO 8601 times with offset (${numberDisplay} numbers)`, async () => {
      const t = await cdrTenant(app, { numberDisplay, reference: 'Société Générale; Paris' });
      const u = await cdrUser(t.id, { balance: '10' });
      await postCdrs(app, t.adminKey, [
        { callId: 'xl-1', identifiant: u.identifiant, callee: '0612345678', startedAt: '2026-11-03T10:05:00+01:00', durationSeconds: 85, disposition: 'answered', site: 'Château-Thierry' },
      ]);
      const excel = await bytes('/v1/cdrs/export.csv?excel=1', t.adminKey);
      expect(excel.status).toBe(200);
      expect([...excel.body.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      const text = excel.body.subarray(3).toString('utf8');
      expect(text.split('\n')[0]).toBe(
        'reference;call_id;identifiant;caller;callee;direction;started_at;answered_at;duration_seconds;disposition;site;line;destination;class;billable_seconds;forfait_seconds;charged_seconds;cost',
      );
      const [row] = await rows(text, ';');
      expect(row).toMatchObject({ reference: 'Société Générale; Paris', call_id: 'xl-1', started_at: '2026-11-03T10:05:00+01:00', site: 'Château-Thierry', cost: '0,6417' });

      // without it: the plain RFC 4180 file, no BOM, the same times
      const plain = await bytes('/v1/cdrs/export.csv', t.adminKey);
      expect(plain.body[0]).not.toBe(0xef);
      const [same] = await rows(plain.body.toString('utf8'), ',');
      expect(same).toMatchObject({ started_at: '2026-11-03T10:05:00+01:00', cost: '0.6417' });

      // one user's calls take it too
      const mine = await bytes(`/v1/users/${u.id}/calls.csv?excel=1`, t.adminKey);
      expect([...mine.body.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
      expect((await rows(mine.body.subarray(3).toString('utf8'), ';'))[0]).toMatchObject({ cost: '0,6417' });
    });
  }
});
