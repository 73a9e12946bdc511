// A device's status from the registrar (issue 21): the reports Kamailio makes
// of each REGISTER (kept one row per address-of-record and contact), and which
// of them are a device's: those carrying its MAC (found in the phone's
// User-Agent or +sip.instance), or, for a report without a MAC, those of an
// identifiant on one of its lines. The status rule itself is
// engine/deviceStatus.ts; `now` always comes from the caller's clock.
import { isIP } from 'node:net';
import { sql, type RawBuilder } from 'kysely';
import { withTransaction, type Db, type Trx } from '../../db/connection.js';
import { deviceStatus, statusRange, type DeviceStatus } from '../../engine/deviceStatus.js';
import { macInText } from '../../engine/mac.js';
import { ValidationError } from '../shared/errors.js';

export interface RegistrationView {
  identifiant: string;
  contact: string;
  registeredAt: string;
  expiresAt: string;
  userAgent: string | null;
  ip: string | null;
  port: number | null;
}

/** A registration forgotten this long after it expired (the status is `unregistered` long before). */
export const KEEP_REGISTRATIONS_MS = 30 * 24 * 60 * 60 * 1000;
/** The longest registration a report may state (a week). */
export const MAX_EXPIRES_SECONDS = 7 * 24 * 3600;

/** The registrations of the device `d` (an alias of devices in the enclosing query), as a FROM-able subquery body. */
function matching(d: string): RawBuilder<unknown> {
  const ref = sql.ref(d);
  return sql`FROM device_registrations r
    WHERE r.tenant_id = ${ref}.tenant_id
      AND (r.mac = ${ref}.mac
           OR (r.mac IS NULL AND r.identifiant IN (
                 SELECT u.identifiant FROM device_lines l JOIN users u ON u.tenant_id = l.tenant_id AND u.id = l.user_id
                  WHERE l.tenant_id = ${ref}.tenant_id AND l.device_id = ${ref}.id)))`;
}

/** A condition on `devices` (the main query's table): its status at `now` is `status`. */
export function statusCondition(status: DeviceStatus, now: Date): RawBuilder<boolean> {
  const latest = sql`(SELECT max(r.expires_at) ${matching('devices')})`;
  const r = statusRange(status, now);
  const parts: RawBuilder<unknown>[] = [];
  if (r.from) parts.push(sql`${latest} >= ${r.from}`);
  if (r.before) parts.push(sql`${latest} < ${r.before}`);
  const inRange = sql.join(parts, sql` AND `);
  return r.none ? sql<boolean>`(${latest} IS NULL OR (${inRange}))` : sql<boolean>`(${inRange})`;
}

interface RegistrationRow {
  deviceId: string;
  identifiant: string;
  contact: string;
  registeredAt: Date;
  expiresAt: Date;
  userAgent: string | null;
  sourceIp: string | null;
  sourcePort: number | null;
}

/** Each device's latest registration (the one expiring last), by device id. */
export async function latestRegistrations(db: Db | Trx, tenantId: string, deviceIds: readonly string[]): Promise<Map<string, RegistrationView>> {
  if (deviceIds.length === 0) return new Map();
  const { rows } = await sql<RegistrationRow>`
    SELECT d.id AS device_id, r.identifiant, r.contact, r.registered_at, r.expires_at, r.user_agent, r.source_ip, r.source_port
      FROM devices d
      CROSS JOIN LATERAL (SELECT r.* ${matching('d')} ORDER BY r.expires_at DESC, r.registered_at DESC LIMIT 1) r
     WHERE d.tenant_id = ${tenantId} AND d.id = ANY(${sql.val(deviceIds)}::uuid[])`.execute(db);
  return new Map(rows.map((r) => [r.deviceId, registrationView(r)]));
}

/**
 * Each line's latest registration, by device id and port: those of the line's
 * identifiant that carry the device's MAC or no MAC at all (a line registers
 * as its own address of record; a multi-line phone registers each).
 */
export async function lineRegistrations(db: Db | Trx, tenantId: string, deviceIds: readonly string[]): Promise<Map<string, Map<number, RegistrationView>>> {
  const out = new Map<string, Map<number, RegistrationView>>();
  if (deviceIds.length === 0) return out;
  const { rows } = await sql<RegistrationRow & { port: number }>`
    SELECT d.id AS device_id, l.port, r.identifiant, r.contact, r.registered_at, r.expires_at, r.user_agent, r.source_ip, r.source_port
      FROM devices d
      JOIN device_lines l ON l.tenant_id = d.tenant_id AND l.device_id = d.id
      JOIN users u ON u.tenant_id = l.tenant_id AND u.id = l.user_id
      CROSS JOIN LATERAL (
        SELECT r.* FROM device_registrations r
         WHERE r.tenant_id = d.tenant_id AND r.identifiant = u.identifiant AND (r.mac = d.mac OR r.mac IS NULL)
         ORDER BY r.expires_at DESC, r.registered_at DESC LIMIT 1) r
     WHERE d.tenant_id = ${tenantId} AND d.id = ANY(${sql.val(deviceIds)}::uuid[])`.execute(db);
  for (const r of rows) {
    let ports = out.get(r.deviceId);
    if (ports === undefined) {
      ports = new Map();
      out.set(r.deviceId, ports);
    }
    ports.set(r.port, registrationView(r));
  }
  return out;
}

function registrationView(r: RegistrationRow): RegistrationView {
  return {
    identifiant: r.identifiant,
    contact: r.contact,
    registeredAt: r.registeredAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    userAgent: r.userAgent,
    ip: r.sourceIp,
    port: r.sourcePort,
  };
}

export function statusOf(reg: RegistrationView | null, now: Date): DeviceStatus {
  return deviceStatus(reg ? new Date(reg.expiresAt) : null, now);
}

/** What the registrar reports of one REGISTER (integrations/kamailio/forfait-devices.cfg). */
export interface RegistrationReport {
  /** the address-of-record's user (To user) */
  identifiant: string;
  /** the Contact URI, or `*` (with expires 0: every contact of the identifiant) */
  contact: string;
  /** seconds; 0 removes the contact */
  expires: number;
  userAgent?: string | null;
  /** the Contact's +sip.instance, when the phone gives one */
  instance?: string | null;
  sourceIp?: string | null;
  sourcePort?: number | null;
}

export interface RegistrationAnswer {
  identifiant: string;
  contact: string;
  expiresAt: string;
  mac: string | null;
  /** the live devices this registration counts for */
  devices: string[];
}

export async function recordRegistration(db: Db, tenantId: string, report: RegistrationReport, now: Date): Promise<RegistrationAnswer> {
  if (report.sourceIp && isIP(report.sourceIp) === 0) {
    throw new ValidationError('invalid registration', [{ field: 'sourceIp', value: report.sourceIp, message: 'not an IP address' }]);
  }
  if (report.contact === '*' && report.expires !== 0) {
    throw new ValidationError('invalid registration', [{ field: 'expires', value: String(report.expires), message: 'Contact * only with expires 0' }]);
  }
  const expiresAt = new Date(now.getTime() + report.expires * 1000);
  const mac = macInText(`${report.instance ?? ''} ${report.userAgent ?? ''} ${report.contact}`) ?? null;
  return withTransaction(db, async (trx) => {
    if (report.contact === '*') {
      await trx
        .updateTable('deviceRegistrations')
        .set({ expiresAt: now })
        .where('tenantId', '=', tenantId)
        .where('identifiant', '=', report.identifiant)
        .where('expiresAt', '>', now)
        .execute();
    } else {
      await trx
        .insertInto('deviceRegistrations')
        .values({
          tenantId,
          identifiant: report.identifiant,
          contact: report.contact,
          mac,
          registeredAt: now,
          expiresAt,
          userAgent: report.userAgent ?? null,
          sourceIp: report.sourceIp ?? null,
          sourcePort: report.sourcePort ?? null,
        })
        .onConflict((oc) =>
          oc.columns(['tenantId', 'identifiant', 'contact']).doUpdateSet((eb) => ({
            mac: eb.ref('excluded.mac'),
            registeredAt: eb.ref('excluded.registeredAt'),
            expiresAt: eb.ref('excluded.expiresAt'),
            userAgent: eb.ref('excluded.userAgent'),
            sourceIp: eb.ref('excluded.sourceIp'),
            sourcePort: eb.ref('excluded.sourcePort'),
          })),
        )
        .execute();
    }
    await trx
      .deleteFrom('deviceRegistrations')
      .where('tenantId', '=', tenantId)
      .where('identifiant', '=', report.identifiant)
      .where('expiresAt', '<', new Date(now.getTime() - KEEP_REGISTRATIONS_MS))
      .execute();
    const devices = await trx
      .selectFrom('devices')
      .select('devices.id')
      .where('devices.tenantId', '=', tenantId)
      .where('devices.retiredAt', 'is', null)
      .where((eb) =>
        mac !== null
          ? eb('devices.mac', '=', mac)
          : eb.exists(
              eb
                .selectFrom('deviceLines as l')
                .innerJoin('users as u', (j) => j.onRef('u.tenantId', '=', 'l.tenantId').onRef('u.id', '=', 'l.userId'))
                .select(sql`1`.as('one'))
                .whereRef('l.tenantId', '=', 'devices.tenantId')
                .whereRef('l.deviceId', '=', 'devices.id')
                .where('u.identifiant', '=', report.identifiant),
            ),
      )
      .orderBy('devices.mac')
      .execute();
    return {
      identifiant: report.identifiant,
      contact: report.contact,
      expiresAt: (report.contact === '*' ? now : expiresAt).toISOString(),
      mac,
      devices: devices.map((d) => d.id),
    };
  });
}
