// The devices CSV (issue 21, seed 003): the template, the bulk import and the
// export. One format for the three, read by its header:
//
//   mac,device_type,lines_available,site,lines,dect_station_id,notes
//
// mac, device_type and site are required; lines is `port:identifiant` pairs
// separated by spaces (`1:1234567 2:7654321`); lines_available (the seed's
// "lignes disponibles": ports without a line) is written by the export and
// ignored on import. Lines starting with # are comments (the template lists
// the sites and the device types each approves that way). `,` or `;`.
//
// Reading the file is the one function readDeviceCsv (the shared reader,
// services/shared/csvRecords.ts), so a shared encoding and header detector
// can replace it in one place.
import { randomUUID } from 'node:crypto';
import { writeToString } from 'fast-csv';
import { sql } from 'kysely';
import { withTransaction, type Db } from '../../db/connection.js';
import { recordAudit, type Actor } from '../audit/audit.js';
import { displayMac } from '../../engine/mac.js';
import { tariffCsvText } from '../../engine/index.js';
import { readCsvRecords } from '../shared/csvRecords.js';
import { ValidationError, type FieldError } from '../shared/errors.js';
import { guardText, unguardText } from '../exports/csvCells.js';
import { hasControlCharacter, CONTROL_CHARACTER_MESSAGE } from '../../engine/input.js';
import { loadCatalog, type Catalog } from './catalog.js';
import { checkDraft, identifiantsOf, type CheckedDevice, type DeviceDraft } from './draft.js';
import { directoryEntries, insertDevices, lockDevices, replaceDevice } from './inventory.js';

export const DEVICE_CSV_COLUMNS = ['mac', 'device_type', 'lines_available', 'site', 'lines', 'dect_station_id', 'notes'] as const;
type Column = (typeof DEVICE_CSV_COLUMNS)[number];
const REQUIRED: readonly Column[] = ['mac', 'device_type', 'site'];
/** The most line errors one answer lists (the count says how many there were). */
export const MAX_LISTED_ERRORS = 1000;

export interface CsvDraft {
  line: number;
  draft: DeviceDraft;
}

/** `1:1234567 2:7654321` → lines; errors name the cell's line. */
function parseLines(cell: string, line: number, errors: FieldError[]): DeviceDraft['lines'] {
  const out: DeviceDraft['lines'] = [];
  for (const part of cell.split(/[\s|]+/).filter((p) => p !== '')) {
    const m = /^(\d{1,3})[:=](.+)$/.exec(part);
    if (!m) {
      errors.push({ line, field: 'lines', value: part.slice(0, 100), message: 'a line is port:identifiant, e.g. 1:1234567' });
      continue;
    }
    out.push({ port: Number(m[1]), identifiant: m[2]! });
  }
  return out;
}

/** The drafts of a devices CSV, or the errors of its structure (header, cells), each with its line. */
export async function readDeviceCsv(text: string): Promise<{ drafts: CsvDraft[]; errors: FieldError[] }> {
  const { body, delimiter } = tariffCsvText(text);
  const errors: FieldError[] = [];
  const drafts: CsvDraft[] = [];
  let columns: Map<Column, number> | undefined;
  for (const record of await readCsvRecords(body, delimiter)) {
    if (!('cells' in record)) {
      errors.push({ line: record.line, field: record.field, value: record.value, message: record.message });
      continue;
    }
    const { line, cells } = record;
    if (cells.every((c) => c.trim() === '') || cells[0]?.trimStart().startsWith('#')) continue;
    const bad = cells.find(hasControlCharacter);
    if (bad !== undefined) {
      errors.push({ line, field: 'row', value: JSON.stringify(bad.slice(0, 100)).slice(1, -1), message: CONTROL_CHARACTER_MESSAGE });
      continue;
    }
    if (columns === undefined) {
      columns = new Map();
      for (const [i, raw] of cells.entries()) {
        const name = raw.trim().toLowerCase() as Column;
        if (!DEVICE_CSV_COLUMNS.includes(name)) errors.push({ line, field: 'header', value: raw, message: `unknown column "${raw}"` });
        else if (columns.has(name)) errors.push({ line, field: 'header', value: raw, message: `column "${raw}" appears twice` });
        else columns.set(name, i);
      }
      for (const c of REQUIRED) if (!columns.has(c)) errors.push({ line, field: 'header', value: cells.join(delimiter).slice(0, 200), message: `missing column "${c}"` });
      if (errors.length) return { drafts, errors };
      continue;
    }
    if (cells.length > columns.size) {
      errors.push({ line, field: 'row', message: `${cells.length} cells for ${columns.size} columns` });
      continue;
    }
    const cell = (c: Column) => {
      const i = columns!.get(c);
      return i === undefined ? '' : unguardText((cells[i] ?? '').trim());
    };
    drafts.push({
      line,
      draft: {
        mac: cell('mac'),
        deviceType: cell('device_type'),
        site: cell('site'),
        lines: parseLines(cell('lines'), line, errors),
        dectStationId: cell('dect_station_id') || null,
        notes: cell('notes') || null,
      },
    });
  }
  if (columns === undefined) errors.push({ line: 1, field: 'header', message: `no header: the first line names the columns (${DEVICE_CSV_COLUMNS.join(',')})` });
  return { drafts, errors };
}

export interface DeviceImportResult {
  importId: string | null;
  dryRun: boolean;
  created: number;
  updated: number;
  unchanged: number;
  /** the MACs of each group (00:1a:2b:3c:4d:5e) */
  macs: { created: string[]; updated: string[]; unchanged: string[] };
}

function sameDevice(d: CheckedDevice, current: CurrentDevice): boolean {
  return (
    d.type.id === current.deviceTypeId &&
    d.siteId === current.siteId &&
    d.dectStationId === current.dectStationId &&
    d.notes === current.notes &&
    d.lines.map((l) => `${l.port}:${l.userId}`).join(' ') === current.lines
  );
}

interface CurrentDevice {
  tenantId: string;
  id: string;
  deviceTypeId: string;
  siteId: string;
  dectStationId: string | null;
  notes: string | null;
  /** `port:userId` in port order */
  lines: string;
}

/**
 * Imports a devices CSV: every line checked first (MAC, site, type approved
 * for the site, ports within the type, identifiants known, a MAC not on two
 * lines nor on another tenant's live device), then all written or nothing
 * (ValidationError listing every line error). A MAC of one of the tenant's
 * live devices updates it; an unchanged line writes nothing.
 */
export async function importDevicesCsv(db: Db, tenantId: string, text: string, o: { dryRun: boolean; now: Date; actor?: Actor }): Promise<DeviceImportResult> {
  const { drafts, errors } = await readDeviceCsv(text);
  return withTransaction(db, async (trx) => {
    const catalog: Catalog = await loadCatalog(trx, tenantId);
    if (!o.dryRun) await lockDevices(trx, catalog.resellerId);
    const users = await directoryEntries(trx, tenantId, identifiantsOf(drafts.map((d) => d.draft)));
    const good: { line: number; device: CheckedDevice }[] = [];
    const seen = new Map<string, number>();
    for (const { line, draft } of drafts) {
      const r = checkDraft(draft, catalog, users, line);
      if (!r.ok) {
        errors.push(...r.errors);
        continue;
      }
      const first = seen.get(r.device.mac);
      if (first !== undefined) {
        errors.push({ line, field: 'mac', value: displayMac(r.device.mac), message: `the same device as line ${first}` });
        continue;
      }
      seen.set(r.device.mac, line);
      good.push({ line, device: r.device });
    }
    const macs = good.map((g) => g.device.mac);
    const current = new Map<string, CurrentDevice>();
    if (macs.length) {
      const rows = await trx
        .selectFrom('devices')
        .select(['devices.tenantId', 'devices.id', 'devices.mac', 'devices.deviceTypeId', 'devices.siteId', 'devices.dectStationId', 'devices.notes'])
        .where('devices.resellerId', '=', catalog.resellerId)
        .where('devices.retiredAt', 'is', null)
        .where('devices.mac', '=', sql<string>`ANY(${sql.val(macs)}::text[])`)
        .execute();
      const lines = await trx
        .selectFrom('deviceLines')
        .select(['deviceId', 'port', 'userId'])
        .where('tenantId', '=', tenantId)
        .where('deviceId', '=', sql<string>`ANY(${sql.val(rows.map((r) => r.id))}::uuid[])`)
        .orderBy('deviceId')
        .orderBy('port')
        .execute();
      for (const r of rows) {
        const own = lines.filter((l) => l.deviceId === r.id).map((l) => `${l.port}:${l.userId}`);
        current.set(r.mac, { tenantId: r.tenantId, id: r.id, deviceTypeId: r.deviceTypeId, siteId: r.siteId, dectStationId: r.dectStationId, notes: r.notes, lines: own.join(' ') });
      }
    }
    const plan = { create: [] as CheckedDevice[], update: [] as { id: string; device: CheckedDevice }[], unchanged: [] as CheckedDevice[] };
    for (const { line, device } of good) {
      const now = current.get(device.mac);
      if (now === undefined) plan.create.push(device);
      else if (now.tenantId !== tenantId) errors.push({ line, field: 'mac', value: displayMac(device.mac), message: 'already in use by another device' });
      else if (sameDevice(device, now)) plan.unchanged.push(device);
      else plan.update.push({ id: now.id, device });
    }
    if (errors.length) {
      errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
      const listed = errors.slice(0, MAX_LISTED_ERRORS);
      throw new ValidationError(`${errors.length} error${errors.length > 1 ? 's' : ''} in the file: nothing was imported`, listed);
    }
    const result: DeviceImportResult = {
      importId: o.dryRun ? null : randomUUID(),
      dryRun: o.dryRun,
      created: plan.create.length,
      updated: plan.update.length,
      unchanged: plan.unchanged.length,
      macs: {
        created: plan.create.map((d) => displayMac(d.mac)),
        updated: plan.update.map((u) => displayMac(u.device.mac)),
        unchanged: plan.unchanged.map((d) => displayMac(d.mac)),
      },
    };
    if (o.dryRun) return result;
    await insertDevices(trx, tenantId, catalog.resellerId, plan.create, o.now);
    for (const u of plan.update) await replaceDevice(trx, tenantId, u.id, u.device, o.now);
    // one row per import, with its counts and MACs (a dry run changes nothing and leaves none)
    if (o.actor) {
      const { importId, dryRun: _dryRun, ...counts } = result;
      await recordAudit(trx, o.actor, { tenantId, action: 'device.import', targetType: 'deviceImport', targetId: importId, after: counts });
    }
    return result;
  });
}

const linesCell = (lines: readonly { port: number; identifiant: string }[]) => lines.map((l) => `${l.port}:${l.identifiant}`).join(' ');

/** The tenant's live devices as the import reads them (site, then MAC order): importing it again changes nothing. */
export async function exportDevicesCsv(db: Db, tenantId: string, site?: string): Promise<string> {
  let q = db
    .selectFrom('devices')
    .innerJoin('deviceTypes', 'deviceTypes.id', 'devices.deviceTypeId')
    .innerJoin('sites', (j) => j.onRef('sites.tenantId', '=', 'devices.tenantId').onRef('sites.id', '=', 'devices.siteId'))
    .select(['devices.id', 'devices.mac', 'deviceTypes.code', 'deviceTypes.ports', 'sites.name as site', 'devices.dectStationId', 'devices.notes'])
    .where('devices.tenantId', '=', tenantId)
    .where('devices.retiredAt', 'is', null);
  if (site !== undefined) q = q.where('sites.name', '=', site);
  const rows = await q.orderBy('sites.name').orderBy('devices.mac').execute();
  const lines = await db
    .selectFrom('deviceLines')
    .innerJoin('users', (j) => j.onRef('users.tenantId', '=', 'deviceLines.tenantId').onRef('users.id', '=', 'deviceLines.userId'))
    .innerJoin('devices', (j) => j.onRef('devices.tenantId', '=', 'deviceLines.tenantId').onRef('devices.id', '=', 'deviceLines.deviceId'))
    .select(['deviceLines.deviceId', 'deviceLines.port', 'users.identifiant'])
    .where('deviceLines.tenantId', '=', tenantId)
    .where('devices.retiredAt', 'is', null)
    .orderBy('deviceLines.port')
    .execute();
  const byDevice = new Map<string, { port: number; identifiant: string }[]>();
  for (const l of lines) {
    const list = byDevice.get(l.deviceId);
    if (list) list.push(l);
    else byDevice.set(l.deviceId, [l]);
  }
  const out = rows.map((r) => {
    const own = byDevice.get(r.id) ?? [];
    return [displayMac(r.mac), r.code, String(r.ports - own.length), guardText(r.site), linesCell(own), guardText(r.dectStationId), guardText(r.notes)];
  });
  return writeToString([[...DEVICE_CSV_COLUMNS], ...out], { rowDelimiter: '\r\n', includeEndRowDelimiter: true });
}

/** The template (seed 003's modèle.csv): the header, then as comments how to fill it, the sites and the device types each approves. */
export async function deviceCsvTemplate(db: Db, tenantId: string): Promise<string> {
  const catalog = await loadCatalog(db, tenantId);
  const rows: string[][] = [[...DEVICE_CSV_COLUMNS]];
  rows.push(['# one device per line; mac as 00:1A:2B:3C:4D:5E, 00-1a-2b-3c-4d-5e, 001a.2b3c.4d5e or 001a2b3c4d5e']);
  rows.push(['# lines: port:identifiant pairs separated by spaces (1:1234567 2:7654321); lines_available is ignored on import']);
  rows.push(['# dect_station_id: the DECT multicell station id, for DECT types only; lines starting with # are ignored']);
  rows.push(['# site', 'device_type', 'vendor', 'model', 'ports', 'dect']);
  for (const site of catalog.sites.values()) {
    if (site.types.size === 0) rows.push([`# ${guardText(site.name)}`, '(no approved device type)']);
    for (const t of site.types.values()) rows.push([`# ${guardText(site.name)}`, t.code, guardText(t.vendor), guardText(t.model), String(t.ports), t.dect ? 'yes' : 'no']);
  }
  return writeToString(rows, { rowDelimiter: '\r\n', includeEndRowDelimiter: true });
}
