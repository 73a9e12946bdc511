// Export of the directory in the import format (SPEC §6): sync-importing the
// exported file changes nothing. Numbers are written in the tenant's display
// format, which the import reads back to the same E.164 numbers.
import type { Db } from '../../db/connection.js';
import { numericCell, textCell } from './csv.js';
import { displayNumbers } from './fields.js';
import { directoryTenant } from './repo.js';

export type ExportFormat = 'full' | 'portal';

const pageSize = 5000;

/**
 * CSV lines (CRLF-terminated), a page of users at a time in matricule order.
 * `full` writes the 16 fields (forfait minutes, account status, billing
 * enabled after the portal's 13); `portal` the 13 the operator's portal reads.
 */
export async function* exportUsersCsv(db: Db, tenantId: string, format: ExportFormat = 'full'): AsyncGenerator<string> {
  const tenant = await directoryTenant(db, tenantId);
  let after: string | undefined;
  for (;;) {
    let q = db
      .selectFrom('users')
      .select(['matricule', 'fullName', 'identifiant', 'authorizedNumbers', 'forfaitMinutes', 'accountStatus', 'billingEnabled'])
      .where('tenantId', '=', tenantId)
      .orderBy('matricule')
      .limit(pageSize);
    if (after !== undefined) q = q.where('matricule', '>', after);
    const rows = await q.execute();
    if (rows.length === 0) return;
    let chunk = '';
    for (const u of rows) {
      const cells = [textCell(u.fullName), u.matricule, u.identifiant];
      for (const n of displayNumbers(u.authorizedNumbers, tenant)) cells.push(n === null ? '' : numericCell(n));
      if (format === 'full') cells.push(String(u.forfaitMinutes), u.accountStatus, u.billingEnabled ? '1' : '0');
      chunk += cells.join(',') + '\r\n';
    }
    yield chunk;
    after = rows[rows.length - 1]!.matricule;
    if (rows.length < pageSize) return;
  }
}
