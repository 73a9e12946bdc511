// The line-state report (issue 21, seed 003 "États des lignes"): one row per
// port of every live device of a site, or of all sites: site, MAC, type, port,
// the user and identifiant on it (empty for a free port), the line's
// registration status and when it last registered, in the tenant's zone.
// The route runs it under the export limits (queue, spacing, shared result).
import { writeToString } from 'fast-csv';
import { DateTime } from 'luxon';
import type { Db } from '../../db/connection.js';
import type { DeviceStatus } from '../../engine/deviceStatus.js';
import { guardText } from '../exports/csvCells.js';
import { NotFoundError } from '../shared/errors.js';
import { listDevices, type DeviceView } from './inventory.js';
import { lineRegistrations, statusOf, type RegistrationView } from './status.js';

export const LINE_STATE_COLUMNS = ['site', 'mac', 'device_type', 'port', 'user', 'identifiant', 'status', 'last_seen'] as const;

const PAGE = 1000;

/** Every live device matching the filters, in MAC order. */
export async function allDevices(db: Db, tenantId: string, f: { site?: string; status?: DeviceStatus }, now: Date): Promise<DeviceView[]> {
  const out: DeviceView[] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await listDevices(db, tenantId, { ...f, limit: PAGE, ...(cursor !== undefined ? { cursor } : {}) }, now);
    out.push(...page.items);
    if (page.nextCursor === null) return out;
    cursor = page.nextCursor;
  }
}

/**
 * The report. A port with a line has the line's own status and last
 * registration (its identifiant's, on this phone); a free port has the
 * device's. `status` keeps the rows of that status.
 */
export async function lineStatesCsv(db: Db, tenantId: string, f: { site?: string; status?: DeviceStatus }, now: Date): Promise<string> {
  const tenant = await db.selectFrom('tenants').select('timezone').where('id', '=', tenantId).executeTakeFirst();
  if (!tenant) throw new NotFoundError('tenant');
  const devices = await allDevices(db, tenantId, f.site !== undefined ? { site: f.site } : {}, now);
  devices.sort((a, b) => a.site.name.localeCompare(b.site.name) || a.mac.localeCompare(b.mac));
  const lines = await lineRegistrations(db, tenantId, devices.map((d) => d.id));
  const seen = (reg: RegistrationView | null) =>
    reg ? (DateTime.fromISO(reg.registeredAt, { zone: tenant.timezone }).toISO({ suppressMilliseconds: true }) ?? '') : '';
  const rows: string[][] = [[...LINE_STATE_COLUMNS]];
  for (const d of devices) {
    for (let port = 1; port <= d.deviceType.ports; port++) {
      const line = d.lines.find((l) => l.port === port);
      const reg = line ? (lines.get(d.id)?.get(port) ?? null) : d.lastRegistration;
      const status = statusOf(reg, now);
      if (f.status !== undefined && status !== f.status) continue;
      rows.push([guardText(d.site.name), d.macDisplay, d.deviceType.code, String(port), guardText(line?.fullName), line?.identifiant ?? '', status, seen(reg)]);
    }
  }
  return writeToString(rows, { rowDelimiter: '\r\n', includeEndRowDelimiter: true });
}
