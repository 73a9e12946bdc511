// Restarting a phone (issue 21, seed 003 "Redémarrer l'appareil"): a SIP
// NOTIFY with Event: check-sync to its registered contact, sent by Kamailio
// on Forfait's request through Kamailio's JSON-RPC over HTTP (jsonrpcs + xhttp,
// integrations/kamailio/forfait-devices.cfg): tm.t_uac_wait_block sends it and
// answers with the phone's final SIP response, which is recorded with the
// request. Most desk phones (Yealink, Polycom, Snom, Cisco SPA among them)
// re-read their configuration and reboot on check-sync, when their
// provisioning allows it; a phone may answer 200 and do nothing else.
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { withTransaction, type Db } from '../../db/connection.js';
import { recordAudit, type Actor } from '../audit/audit.js';
import { ConflictError, UnavailableError } from '../shared/errors.js';
import { getDevice } from './inventory.js';

/** Sends one out-of-dialog SIP request and gives its final answer. */
export interface SipRequester {
  request(r: { method: string; uri: string; nextHop: string | null; headers: string }): Promise<{ status: number; reason: string }>;
}

export interface KamailioRpcOptions {
  /** http://host:port/RPC of Kamailio's jsonrpcs */
  url: string;
  /** how long to wait for the phone's answer (Kamailio gives up after ~32 s on UDP) */
  timeoutMs: number;
}

/** SIP through Kamailio's JSON-RPC: tm.t_uac_wait_block (method, R-URI, next hop, socket, headers). */
export class KamailioRpc implements SipRequester {
  private id = 0;
  constructor(private readonly options: KamailioRpcOptions) {}

  async request(r: { method: string; uri: string; nextHop: string | null; headers: string }): Promise<{ status: number; reason: string }> {
    const body = JSON.stringify({ jsonrpc: '2.0', method: 'tm.t_uac_wait_block', params: [r.method, r.uri, r.nextHop ?? '.', '.', r.headers], id: ++this.id });
    let res: Response;
    try {
      res = await fetch(this.options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      if (timedOut) return { status: 408, reason: `no answer within ${this.options.timeoutMs / 1000} s` };
      throw new UnavailableError('Kamailio’s RPC cannot be reached: the restart was not sent');
    }
    const text = await res.text();
    let answer: { result?: { code?: unknown; text?: unknown }; error?: { code?: unknown; message?: unknown } };
    try {
      answer = JSON.parse(text) as typeof answer;
    } catch {
      throw new UnavailableError(`Kamailio’s RPC answered HTTP ${res.status} without JSON-RPC`);
    }
    if (answer.result && typeof answer.result.code === 'number') return { status: answer.result.code, reason: String(answer.result.text ?? '') };
    // a fault: tm gave up waiting (500), or the request could not be built or sent
    const message = String(answer.error?.message ?? `HTTP ${res.status}`);
    if (/timeout|no reply/i.test(message)) return { status: 408, reason: message };
    throw new UnavailableError(`Kamailio could not send the NOTIFY: ${message}`);
  }
}

export interface RestartAnswer {
  restartId: string;
  deviceId: string;
  contact: string;
  requestedAt: string;
  answeredAt: string;
  /** the phone's final SIP answer (408: none came) */
  sipStatus: number;
  sipReason: string;
  /** a 2xx came back: the phone took the NOTIFY */
  accepted: boolean;
}

/** The NOTIFY's headers: From Forfait, To the line's address of record, Event check-sync. */
function notifyHeaders(identifiant: string, contact: string): string {
  const host = /@([^;>]+)/.exec(contact)?.[1] ?? 'invalid';
  const tag = randomBytes(6).toString('hex');
  return [
    `From: <sip:forfait@${host}>;tag=${tag}`,
    `To: <sip:${identifiant}@${host}>`,
    'Event: check-sync',
    'Subscription-State: terminated',
    'Content-Length: 0',
    '',
  ].join('\r\n');
}

/**
 * Restarts a live, registered device: NOTIFY check-sync to its current
 * contact, then the answer recorded. 409 when it is retired or not
 * registered (nowhere to send it), 503 when Kamailio cannot be asked.
 */
export async function restartDevice(
  db: Db,
  sip: SipRequester | undefined,
  tenantId: string,
  id: string,
  o: { now: () => Date; requestedBy: string | null; actor?: Actor },
): Promise<RestartAnswer> {
  const device = await getDevice(db, tenantId, id, o.now());
  if (device.retiredAt !== null) throw new ConflictError('CONFLICT', 'the device is retired');
  const reg = device.lastRegistration;
  if (device.status !== 'registered' || reg === null) {
    throw new ConflictError('CONFLICT', `the device is ${device.status}: a restart goes to a registered phone`);
  }
  if (sip === undefined) throw new UnavailableError('no Kamailio RPC is configured (FORFAIT_KAMAILIO_RPC_URL): restarts cannot be sent');
  const requestedAt = o.now();
  // the request and its audit row commit together, before the NOTIFY leaves
  const restartId = await withTransaction(db, async (trx) => {
    const { id: inserted } = await trx
      .insertInto('deviceRestarts')
      .values({ tenantId, deviceId: id, contact: reg.contact, requestedAt, requestedBy: o.requestedBy })
      .returning('id')
      .executeTakeFirstOrThrow();
    if (o.actor) await recordAudit(trx, o.actor, { tenantId, action: 'device.restart', targetType: 'device', targetId: id, after: { restartId: inserted, contact: reg.contact } });
    return inserted;
  });
  const nextHop = reg.ip && reg.port ? `sip:${reg.ip.includes(':') ? `[${reg.ip}]` : reg.ip}:${reg.port}` : null;
  let answer: { status: number; reason: string };
  try {
    answer = await sip.request({ method: 'NOTIFY', uri: reg.contact, nextHop, headers: notifyHeaders(reg.identifiant, reg.contact) });
  } catch (err) {
    await db
      .updateTable('deviceRestarts')
      .set({ answeredAt: o.now(), sipReason: err instanceof Error ? err.message.slice(0, 500) : 'not sent' })
      .where('tenantId', '=', tenantId)
      .where('id', '=', restartId)
      .execute();
    throw err;
  }
  const answeredAt = o.now();
  await db
    .updateTable('deviceRestarts')
    .set({ answeredAt, sipStatus: answer.status, sipReason: answer.reason.slice(0, 500) })
    .where('tenantId', '=', tenantId)
    .where('id', '=', restartId)
    .execute();
  return {
    restartId,
    deviceId: id,
    contact: reg.contact,
    requestedAt: requestedAt.toISOString(),
    answeredAt: answeredAt.toISOString(),
    sipStatus: answer.status,
    sipReason: answer.reason,
    accepted: sipAccepted(answer.status),
  };
}

/** The phone took the NOTIFY: a 2xx final answer (it restarts if its provisioning allows it). */
export function sipAccepted(status: number): boolean {
  return status >= 200 && status < 300;
}

export interface RestartView {
  restartId: string;
  contact: string;
  requestedAt: string;
  answeredAt: string | null;
  sipStatus: number | null;
  sipReason: string | null;
}

/** The device's restarts, newest first (the status page shows the last). */
export async function restartsOf(db: Db, tenantId: string, deviceId: string, limit: number): Promise<RestartView[]> {
  const rows = await db
    .selectFrom('deviceRestarts')
    .select(['id', 'contact', 'requestedAt', 'answeredAt', 'sipStatus', 'sipReason'])
    .where('tenantId', '=', tenantId)
    .where('deviceId', '=', deviceId)
    .orderBy(sql`id`, 'desc')
    .limit(limit)
    .execute();
  return rows.map((r) => ({
    restartId: r.id,
    contact: r.contact,
    requestedAt: r.requestedAt.toISOString(),
    answeredAt: r.answeredAt?.toISOString() ?? null,
    sipStatus: r.sipStatus,
    sipReason: r.sipReason,
  }));
}
