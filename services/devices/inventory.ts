// The device inventory (issue 21): add, read, list, change, retire. A device
// is checked by draft.ts (the one rule) and written here; its status comes from
// the registrar's reports (status.ts). Writes of a reseller's devices are
// serialised by one advisory lock, so a MAC is checked free against exactly
// the state it is written to (the partial unique index is the last guard).
import { sql } from 'kysely';
import { validate as isUuid } from 'uuid';
import { isUniqueViolation } from '../../db/errors.js';
import { withTransaction, type Db, type Trx } from '../../db/connection.js';
import { recordAudit, type Actor } from '../audit/audit.js';
import { displayMac, normalizeMac } from '../../engine/mac.js';
import type { DeviceStatus } from '../../engine/deviceStatus.js';
import { ConflictError, NotFoundError, ValidationError } from '../shared/errors.js';
import { loadCatalog, type DeviceTypeView } from './catalog.js';
import { checkDraft, identifiantsOf, type CheckedDevice, type DeviceDraft, type DirectoryEntry } from './draft.js';
import { latestRegistrations, statusCondition, statusOf, type RegistrationView } from './status.js';

export interface DeviceLineView {
  port: number;
  userId: string;
  identifiant: string;
  fullName: string;
}

export interface DeviceView {
  id: string;
  /** 12 lowercase hex digits */
  mac: string;
  /** 00:1a:2b:3c:4d:5e */
  macDisplay: string;
  deviceType: Omit<DeviceTypeView, 'id'>;
  site: { id: string; name: string };
  lines: DeviceLineView[];
  /** ports without a line */
  linesAvailable: number;
  dectStationId: string | null;
  notes: string | null;
  status: DeviceStatus;
  lastRegistration: RegistrationView | null;
  createdAt: string;
  updatedAt: string;
  retiredAt: string | null;
}

/** One writer of a reseller's devices at a time (MAC uniqueness is reseller-wide). */
export async function lockDevices(trx: Trx, resellerId: string): Promise<void> {
  await sql`SELECT pg_advisory_xact_lock(hashtextextended('forfait:devices:' || ${resellerId}, 0))`.execute(trx);
}

/** The users of the tenant with these identifiants. */
export async function directoryEntries(db: Db | Trx, tenantId: string, identifiants: readonly string[]): Promise<Map<string, DirectoryEntry>> {
  if (identifiants.length === 0) return new Map();
  const rows = await db
    .selectFrom('users')
    .select(['id', 'identifiant', 'fullName'])
    .where('tenantId', '=', tenantId)
    .where('identifiant', '=', sql<string>`ANY(${sql.val(identifiants)}::text[])`)
    .execute();
  return new Map(rows.map((r) => [r.identifiant, { id: r.id, fullName: r.fullName }]));
}

/** The live device of the reseller with this MAC (any tenant), if any. */
export async function liveDeviceByMac(db: Db | Trx, resellerId: string, mac: string) {
  return db
    .selectFrom('devices')
    .select(['tenantId', 'id'])
    .where('resellerId', '=', resellerId)
    .where('mac', '=', mac)
    .where('retiredAt', 'is', null)
    .executeTakeFirst();
}

function deviceQuery(db: Db | Trx, tenantId: string) {
  return db
    .selectFrom('devices')
    .innerJoin('deviceTypes', 'deviceTypes.id', 'devices.deviceTypeId')
    .innerJoin('sites', (j) => j.onRef('sites.tenantId', '=', 'devices.tenantId').onRef('sites.id', '=', 'devices.siteId'))
    .select([
      'devices.id',
      'devices.mac',
      'devices.dectStationId',
      'devices.notes',
      'devices.createdAt',
      'devices.updatedAt',
      'devices.retiredAt',
      'deviceTypes.code',
      'deviceTypes.vendor',
      'deviceTypes.model',
      'deviceTypes.ports',
      'deviceTypes.dect',
      'sites.id as siteId',
      'sites.name as siteName',
    ])
    .where('devices.tenantId', '=', tenantId);
}

type DeviceRowOut = Awaited<ReturnType<ReturnType<typeof deviceQuery>['execute']>>[number];

async function linesOf(db: Db | Trx, tenantId: string, deviceIds: readonly string[]): Promise<Map<string, DeviceLineView[]>> {
  const out = new Map<string, DeviceLineView[]>();
  if (deviceIds.length === 0) return out;
  const rows = await db
    .selectFrom('deviceLines')
    .innerJoin('users', (j) => j.onRef('users.tenantId', '=', 'deviceLines.tenantId').onRef('users.id', '=', 'deviceLines.userId'))
    .select(['deviceLines.deviceId', 'deviceLines.port', 'deviceLines.userId', 'users.identifiant', 'users.fullName'])
    .where('deviceLines.tenantId', '=', tenantId)
    .where('deviceLines.deviceId', '=', sql<string>`ANY(${sql.val(deviceIds)}::uuid[])`)
    .orderBy('deviceLines.deviceId')
    .orderBy('deviceLines.port')
    .execute();
  for (const r of rows) {
    const line = { port: r.port, userId: r.userId, identifiant: r.identifiant, fullName: r.fullName };
    const list = out.get(r.deviceId);
    if (list) list.push(line);
    else out.set(r.deviceId, [line]);
  }
  return out;
}

/** Devices as the API shows them, with their lines and status at `now`. */
export async function deviceViews(db: Db | Trx, tenantId: string, rows: DeviceRowOut[], now: Date): Promise<DeviceView[]> {
  const ids = rows.map((r) => r.id);
  const [lines, registrations] = await Promise.all([linesOf(db, tenantId, ids), latestRegistrations(db, tenantId, ids)]);
  return rows.map((r) => {
    const own = lines.get(r.id) ?? [];
    const reg = registrations.get(r.id) ?? null;
    return {
      id: r.id,
      mac: r.mac,
      macDisplay: displayMac(r.mac),
      deviceType: { code: r.code, vendor: r.vendor, model: r.model, ports: r.ports, dect: r.dect },
      site: { id: r.siteId, name: r.siteName },
      lines: own,
      linesAvailable: r.ports - own.length,
      dectStationId: r.dectStationId,
      notes: r.notes,
      status: statusOf(reg, now),
      lastRegistration: reg,
      createdAt: r.createdAt.toISOString(),
      updatedAt: r.updatedAt.toISOString(),
      retiredAt: r.retiredAt?.toISOString() ?? null,
    };
  });
}

export async function getDevice(db: Db | Trx, tenantId: string, id: string, now: Date): Promise<DeviceView> {
  if (!isUuid(id)) throw new NotFoundError('device');
  const row = await deviceQuery(db, tenantId).where('devices.id', '=', id).executeTakeFirst();
  if (!row) throw new NotFoundError('device');
  return (await deviceViews(db, tenantId, [row], now))[0]!;
}

export interface DeviceFilters {
  site?: string;
  status?: DeviceStatus;
  /** a part of the MAC (any form), of the type code or model, or an identifiant on a line */
  q?: string;
  retired?: boolean;
  limit: number;
  cursor?: string;
}

/** Devices in MAC order; retired ones only with `retired: true`. */
export async function listDevices(db: Db | Trx, tenantId: string, f: DeviceFilters, now: Date): Promise<{ items: DeviceView[]; nextCursor: string | null }> {
  let q = deviceQuery(db, tenantId).where('devices.retiredAt', f.retired ? 'is not' : 'is', null);
  if (f.site !== undefined) q = q.where('sites.name', '=', f.site);
  if (f.cursor !== undefined) q = q.where(sql<boolean>`(devices.mac, devices.id::text) > (${f.cursor.split('/')[0] ?? ''}, ${f.cursor.split('/')[1] ?? ''})`);
  if (f.q !== undefined && f.q.trim() !== '') {
    const text = f.q.trim().toLowerCase();
    const hex = text.replace(/[:.-]/g, '');
    q = q.where((eb) =>
      eb.or([
        eb('devices.mac', 'like', `%${hex.replace(/[%_\\]/g, '')}%`),
        eb('deviceTypes.code', 'like', `%${text.replace(/[%_\\]/g, '')}%`),
        eb(sql`lower(${sql.ref('deviceTypes.model')})`, 'like', `%${text.replace(/[%_\\]/g, '')}%`),
        eb.exists(
          eb
            .selectFrom('deviceLines as l')
            .innerJoin('users as u', (j) => j.onRef('u.tenantId', '=', 'l.tenantId').onRef('u.id', '=', 'l.userId'))
            .select(sql`1`.as('one'))
            .whereRef('l.tenantId', '=', 'devices.tenantId')
            .whereRef('l.deviceId', '=', 'devices.id')
            .where('u.identifiant', '=', text),
        ),
      ]),
    );
  }
  if (f.status !== undefined) q = q.where(sql<boolean>`${statusCondition(f.status, now)}`);
  const rows = await q.orderBy('devices.mac').orderBy(sql`devices.id::text`).limit(f.limit + 1).execute();
  const more = rows.length > f.limit;
  const page = rows.slice(0, f.limit);
  const last = page.at(-1);
  return { items: await deviceViews(db, tenantId, page, now), nextCursor: more && last ? `${last.mac}/${last.id}` : null };
}

export interface DevicePatch {
  deviceType?: string;
  site?: string;
  lines?: { port: number; identifiant: string }[];
  dectStationId?: string | null;
  notes?: string | null;
}

/** The draft a patch makes of a device as it is. */
function patched(current: DeviceView, patch: DevicePatch): DeviceDraft {
  return {
    mac: current.mac,
    deviceType: patch.deviceType ?? current.deviceType.code,
    site: patch.site ?? current.site.name,
    lines: patch.lines ?? current.lines.map((l) => ({ port: l.port, identifiant: l.identifiant })),
    dectStationId: patch.dectStationId !== undefined ? patch.dectStationId : current.dectStationId,
    notes: patch.notes !== undefined ? patch.notes : current.notes,
  };
}

async function checked(trx: Trx, tenantId: string, draft: DeviceDraft): Promise<{ device: CheckedDevice; resellerId: string }> {
  const catalog = await loadCatalog(trx, tenantId);
  const users = await directoryEntries(trx, tenantId, identifiantsOf([draft]));
  const r = checkDraft(draft, catalog, users);
  if (!r.ok) throw new ValidationError('invalid device', r.errors);
  return { device: r.device, resellerId: catalog.resellerId };
}

/** Rows inserted per statement by insertDevices. */
const INSERT_CHUNK = 1000;

/**
 * Inserts checked devices, a statement per 1,000 devices and one for their
 * lines (the caller holds the reseller's device lock; the MACs are distinct).
 * Answers their ids in the order given.
 */
export async function insertDevices(trx: Trx, tenantId: string, resellerId: string, devices: readonly CheckedDevice[], now: Date): Promise<string[]> {
  const ids: string[] = [];
  for (let from = 0; from < devices.length; from += INSERT_CHUNK) {
    const chunk = devices.slice(from, from + INSERT_CHUNK);
    const rows = await trx
      .insertInto('devices')
      .values(chunk.map((d) => ({ tenantId, resellerId, mac: d.mac, deviceTypeId: d.type.id, siteId: d.siteId, dectStationId: d.dectStationId, notes: d.notes, createdAt: now, updatedAt: now })))
      .returning(['id', 'mac'])
      .execute();
    const byMac = new Map(rows.map((r) => [r.mac, r.id]));
    const lines = chunk.flatMap((d) => d.lines.map((l) => ({ tenantId, deviceId: byMac.get(d.mac)!, port: l.port, userId: l.userId })));
    for (let at = 0; at < lines.length; at += INSERT_CHUNK) await trx.insertInto('deviceLines').values(lines.slice(at, at + INSERT_CHUNK)).execute();
    ids.push(...chunk.map((d) => byMac.get(d.mac)!));
  }
  return ids;
}

/** Rewrites a device's fields and lines (the caller holds the lock). */
export async function replaceDevice(trx: Trx, tenantId: string, id: string, d: CheckedDevice, now: Date): Promise<void> {
  await trx
    .updateTable('devices')
    .set({ deviceTypeId: d.type.id, siteId: d.siteId, dectStationId: d.dectStationId, notes: d.notes, updatedAt: now })
    .where('tenantId', '=', tenantId)
    .where('id', '=', id)
    .execute();
  await trx.deleteFrom('deviceLines').where('tenantId', '=', tenantId).where('deviceId', '=', id).execute();
  await writeLines(trx, tenantId, id, d);
}

async function writeLines(trx: Trx, tenantId: string, deviceId: string, d: CheckedDevice): Promise<void> {
  if (d.lines.length === 0) return;
  await trx
    .insertInto('deviceLines')
    .values(d.lines.map((l) => ({ tenantId, deviceId, port: l.port, userId: l.userId })))
    .execute();
}

function macTaken(mac: string): ConflictError {
  return new ConflictError('CONFLICT', `MAC ${displayMac(mac)} is already in use by another device`, [{ field: 'mac', value: displayMac(mac), message: 'in use' }]);
}

export async function createDevice(db: Db, tenantId: string, draft: DeviceDraft, now: Date, actor?: Actor): Promise<DeviceView> {
  try {
    return await withTransaction(db, async (trx) => {
      const { device, resellerId } = await checked(trx, tenantId, draft);
      await lockDevices(trx, resellerId);
      if (await liveDeviceByMac(trx, resellerId, device.mac)) throw macTaken(device.mac);
      const [id] = await insertDevices(trx, tenantId, resellerId, [device], now);
      const view = await getDevice(trx, tenantId, id!, now);
      if (actor) await recordAudit(trx, actor, { tenantId, action: 'device.create', targetType: 'device', targetId: id!, after: auditedDevice(view) });
      return view;
    });
  } catch (err) {
    const mac = normalizeMac(draft.mac);
    if (isUniqueViolation(err, 'devices_live_mac_uq') && mac.ok) throw macTaken(mac.mac);
    throw err;
  }
}

async function liveForChange(trx: Trx, tenantId: string, id: string, now: Date): Promise<DeviceView> {
  const current = await getDevice(trx, tenantId, id, now);
  await trx.selectFrom('devices').select('id').where('tenantId', '=', tenantId).where('id', '=', id).forUpdate().execute();
  if (current.retiredAt !== null) throw new ConflictError('CONFLICT', 'the device is retired: add it again to use it');
  return current;
}

export async function updateDevice(db: Db, tenantId: string, id: string, patch: DevicePatch, now: Date, actor?: Actor): Promise<DeviceView> {
  return withTransaction(db, async (trx) => {
    const current = await liveForChange(trx, tenantId, id, now);
    const { device } = await checked(trx, tenantId, patched(current, patch));
    await replaceDevice(trx, tenantId, id, device, now);
    const view = await getDevice(trx, tenantId, id, now);
    if (actor) await recordAudit(trx, actor, { tenantId, action: 'device.update', targetType: 'device', targetId: id, before: auditedDevice(current), after: auditedDevice(view) });
    return view;
  });
}

/** A device in the audit trail: what a person changes, not its registration status of the moment. */
function auditedDevice(d: DeviceView) {
  const { status: _status, lastRegistration: _lastRegistration, ...kept } = d;
  return kept;
}

/** Retires a device: kept with its lines as history, its MAC free for a new device. */
export async function retireDevice(db: Db, tenantId: string, id: string, now: Date, actor?: Actor): Promise<DeviceView> {
  return withTransaction(db, async (trx) => {
    const current = await liveForChange(trx, tenantId, id, now);
    await trx.updateTable('devices').set({ retiredAt: now, updatedAt: now }).where('tenantId', '=', tenantId).where('id', '=', id).execute();
    const view = await getDevice(trx, tenantId, id, now);
    if (actor) await recordAudit(trx, actor, { tenantId, action: 'device.retire', targetType: 'device', targetId: id, before: auditedDevice(current), after: auditedDevice(view) });
    return view;
  });
}
