import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../api/app.js';
import { newUser } from '../support/accounts.js';
import { call, testApp, testDb, type Answer } from '../support/app.js';
import { resellerKey, uniqueName } from '../support/factory.js';
import { silentServer } from '../support/server.js';
import { startSmtp } from '../support/smtp.js';
import { TARIFF_CSV, cdr } from '../cdrs/helpers.js';
import { freshMac } from '../devices/helpers.js';

/**
 * Issue 20: every change made by a person or a key is in the audit trail. This
 * walks every mutating route the OpenAPI document publishes (any method but
 * GET), calls each one successfully and checks the audit rows it left: exactly
 * those expected, with before/after where the change has them. A route added
 * without an entry below fails the first test; one that writes no audit row
 * fails its own.
 */

/** The PBX's own traffic: each call is recorded by the call records themselves (reservations, CDRs, ledger, registrations), not in the trail. */
const pbxTraffic: Record<string, string> = {
  'POST /v1/authorize': 'a call asked for: its reservation is the record',
  'POST /v1/calls/{reservationId}/end': 'a call ended: its CDR and ledger entry are the record',
  'POST /v1/devices/registrations': 'a phone registering: the registrations table is the record',
  // POSTs that change nothing (test/simulation/simulate.test.ts proves it): nothing to record
  'POST /v1/tariffs/{id}/simulate': 'a what-if over past CDRs: writes nothing',
  'POST /v1/tariffs/{id}/quote': 'one call priced: writes nothing',
};

const { db } = testDb();
let app: App;
let smtp: Awaited<ReturnType<typeof startSmtp>>;
let silent: Awaited<ReturnType<typeof silentServer>>;
/** A reseller of its own, so the rows of other test files never mix with these. */
let reseller: { key: string; resellerId: string };
let tenantId: string;
let admin: string;
let pbx: string;
const tag = randomBytes(4).toString('hex');
/** What a step made, for the next ones. */
const made: Record<string, string> = {};

interface Step {
  route: string;
  run: () => Promise<Answer>;
  /** The audit actions it must leave, in order. */
  actions: string[];
  /** Checks of the rows beyond their actions. */
  rows?: (rows: AuditRow[]) => void;
}

interface AuditRow {
  action: string;
  actorKind: string;
  tenantId: string | null;
  targetType: string;
  targetId: string | null;
  before: unknown;
  after: unknown;
}

const csv = (key: string, method: string, path: string, body: string) => call(app, method, path, { key, body, headers: { 'content-type': 'text/csv' } });
const userLine = (name: string, matricule: string, identifiant: string) => [name, matricule, identifiant, ...Array(10).fill('')].join(';');
const ids = () => {
  const n = String(1_000_000 + Number.parseInt(randomBytes(3).toString('hex'), 16) % 8_999_999);
  return { identifiant: n, matricule: `7${n}${n.slice(0, 6)}` };
};

const steps: Step[] = [
  {
    route: 'POST /v1/product-types',
    run: () => call(app, 'POST', '/v1/product-types', { key: reseller.key, json: { code: `pt-${tag}`, name: 'Audit', maxUsers: 5, monthlyFeePerUser: '1.00' } }),
    actions: ['productType.create'],
    rows: ([r]) => expect(r!.after).toMatchObject({ code: `pt-${tag}`, maxUsers: 5 }),
  },
  {
    route: 'PUT /v1/tariffs/{id}',
    run: async () => {
      const first = await csv(reseller.key, 'PUT', `/v1/tariffs/audit-${tag}`, TARIFF_CSV);
      expect(first.status, first.text).toBe(200);
      return csv(reseller.key, 'PUT', `/v1/tariffs/audit-${tag}`, TARIFF_CSV.split('\n').slice(0, 3).join('\n'));
    },
    actions: ['tariff.create', 'tariff.replace'],
    rows: ([created, replaced]) => {
      expect(created!.before).toBeNull();
      expect(created!.after).toMatchObject({ rates: 4, prefixes: 4 });
      expect(replaced!.before).toEqual({ rates: 4, prefixes: 4 });
      expect(replaced!.after).toMatchObject({ rates: 2, prefixes: 2 });
    },
  },
  {
    route: 'POST /v1/tenants',
    run: async () => {
      const res = await call(app, 'POST', '/v1/tenants', {
        key: reseller.key,
        json: { name: uniqueName('audit'), productType: 'pro', tariffId: `audit-${tag}`, country: 'FR', timezone: 'Europe/Paris' },
      });
      tenantId = res.json.tenant.id;
      admin = res.json.adminKey;
      return res;
    },
    actions: ['tenant.create'],
    rows: ([r]) => expect(r!.tenantId).toBe(tenantId),
  },
  {
    route: 'PATCH /v1/tenants/{id}',
    run: () => call(app, 'PATCH', `/v1/tenants/${tenantId}`, { key: reseller.key, json: { notes: 'audited' } }),
    actions: ['tenant.update'],
    rows: ([r]) => {
      expect(r!.before).toMatchObject({ notes: null });
      expect(r!.after).toMatchObject({ notes: 'audited' });
    },
  },
  {
    route: 'POST /v1/roles',
    run: () => call(app, 'POST', '/v1/roles', { key: admin, json: { name: `role-${tag}`, inherits: 'comptable' } }),
    actions: ['role.create'],
  },
  {
    route: 'POST /v1/keys',
    run: async () => {
      const res = await call(app, 'POST', '/v1/keys', { key: admin, json: { name: 'pbx', principal: 'pbx' } });
      pbx = res.json.key;
      made.key = res.json.id;
      return res;
    },
    actions: ['key.create'],
  },
  {
    route: 'DELETE /v1/keys/{id}',
    run: async () => {
      const spare = await call(app, 'POST', '/v1/keys', { key: admin, json: { name: 'spare', roles: ['comptable'] } });
      expect(spare.status).toBe(201);
      made.spare = spare.json.id;
      return call(app, 'DELETE', `/v1/keys/${spare.json.id}`, { key: admin });
    },
    actions: ['key.create', 'key.revoke'],
    rows: ([, revoked]) => expect(revoked!.targetId).toBe(made.spare),
  },
  {
    route: 'POST /v1/users',
    run: async () => {
      const u = ids();
      const res = await call(app, 'POST', '/v1/users', { key: admin, json: { fullName: 'Ana Lima', ...u, authorizedNumbers: { '1': '+33612345678' } } });
      made.user = res.json.id;
      made.identifiant = u.identifiant;
      return res;
    },
    actions: ['user.create'],
  },
  {
    route: 'PATCH /v1/users/{id}',
    run: () => call(app, 'PATCH', `/v1/users/${made.user}`, { key: admin, json: { fullName: 'Ana Lima Souza' } }),
    actions: ['user.update'],
    rows: ([r]) => {
      expect(r!.before).toMatchObject({ fullName: 'Ana Lima' });
      expect(r!.after).toMatchObject({ fullName: 'Ana Lima Souza' });
    },
  },
  {
    route: 'POST /v1/users/{id}/ledger',
    run: () => call(app, 'POST', `/v1/users/${made.user}/ledger`, { key: admin, json: { kind: 'topup', amount: '20', reason: 'audit', idempotencyKey: `a-${tag}` } }),
    actions: ['ledger.topup'],
  },
  {
    route: 'POST /v1/users/import',
    run: async () => {
      const a = ids();
      const b = ids();
      const res = await csv(admin, 'POST', '/v1/users/import?mode=append', [userLine('Imported A', a.matricule, a.identifiant), userLine('Imported B', b.matricule, b.identifiant)].join('\n'));
      made.import = res.json.importId;
      return res;
    },
    actions: ['users.import'],
    rows: ([r]) => expect(r!.after).toMatchObject({ mode: 'append', created: 2 }),
  },
  {
    route: 'POST /v1/users/imports/{importId}/restore',
    run: () => call(app, 'POST', `/v1/users/imports/${made.import}/restore`, { key: admin }),
    actions: ['users.restore'],
    rows: ([r]) => expect(r!.after).toMatchObject({ deleted: 2 }),
  },
  {
    route: 'POST /v1/cdrs',
    run: () =>
      call(app, 'POST', '/v1/cdrs', {
        key: admin,
        json: [
          cdr(`c1-${tag}`, made.identifiant!, '+33612345678', 60, '2026-01-12T10:00:00+01:00'),
          cdr(`c2-${tag}`, made.identifiant!, '+33612345678', 30, '2026-01-12T11:00:00+01:00'),
          cdr(`c3-${tag}`, '7654321', '+33612345678', 30, '2026-01-12T11:00:00+01:00'),
        ],
      }),
    // one row for the batch, with its counts: never one per CDR
    actions: ['cdrs.ingest'],
    rows: ([r]) => expect(r!.after).toEqual({ source: 'api', accepted: 2, duplicates: 0, rejected: 1 }),
  },
  {
    route: 'POST /v1/cdrs/import',
    run: () =>
      csv(
        admin,
        'POST',
        '/v1/cdrs/import',
        [
          'call_id,identifiant,caller,callee,direction,started_at,answered_at,duration_seconds,disposition,site,line',
          `c4-${tag},${made.identifiant},+33142000000,+33612345678,out,2026-01-13T10:00:00+01:00,,40,answered,,`,
          `c1-${tag},${made.identifiant},+33142000000,+33612345678,out,2026-01-12T10:00:00+01:00,,60,answered,,`,
        ].join('\n'),
      ),
    actions: ['cdrs.ingest'],
    rows: ([r]) => expect(r!.after).toEqual({ source: 'import:native', accepted: 1, duplicates: 1, rejected: 0 }),
  },
  {
    route: 'POST /v1/cdrs/rejects/reprocess',
    run: async () => {
      await newUser(tenantId, { identifiant: '7654321' }, app);
      return call(app, 'POST', '/v1/cdrs/rejects/reprocess', { key: admin });
    },
    actions: ['cdrs.ingest'],
    rows: ([r]) => expect(r!.after).toEqual({ source: 'reprocess', accepted: 1, duplicates: 0, rejected: 0 }),
  },
  {
    route: 'POST /v1/rerate',
    run: () => call(app, 'POST', '/v1/rerate', { key: admin, json: { from: '2026-01-01', to: '2026-02-01' } }),
    actions: ['cdrs.rerate'],
    rows: ([r]) => expect(r!.after, JSON.stringify(r!.after)).toMatchObject({ from: '2026-01-01', to: '2026-02-01', examined: 4 }),
  },
  {
    route: 'POST /v1/invoices/run',
    run: () => call(app, 'POST', '/v1/invoices/run', { key: admin, json: { period: '2026-01' } }),
    actions: ['invoice.issue'],
    rows: ([r]) => expect(r!.after).toMatchObject({ period: '2026-01' }),
  },
  {
    route: 'DELETE /v1/reservations/{id}',
    run: async () => {
      const allowed = await call(app, 'POST', '/v1/authorize', { key: pbx, json: { identifiant: made.identifiant, callee: '+33612345678', callId: `r-${tag}` } });
      expect(allowed.json, allowed.text).toMatchObject({ decision: 'allow' });
      made.reservation = allowed.json.reservationId;
      return call(app, 'DELETE', `/v1/reservations/${allowed.json.reservationId}`, { key: admin });
    },
    actions: ['reservation.release'],
    rows: ([r]) => {
      expect(r!.targetId).toBe(made.reservation);
      expect(r!.before).toMatchObject({ status: 'open' });
      expect(r!.after).toMatchObject({ status: 'released' });
    },
  },
  {
    route: 'DELETE /v1/users/{id}',
    run: async () => {
      const spare = await call(app, 'POST', '/v1/users', { key: admin, json: { fullName: 'Spare', ...ids() } });
      made.spareUser = spare.json.id;
      return call(app, 'DELETE', `/v1/users/${spare.json.id}`, { key: admin });
    },
    actions: ['user.create', 'user.delete'],
    rows: ([, deleted]) => expect(deleted!.before).toMatchObject({ fullName: 'Spare' }),
  },
  {
    route: 'POST /v1/device-types',
    run: () => call(app, 'POST', '/v1/device-types', { key: reseller.key, json: { code: `desk-${tag}`, vendor: 'Yealink', model: 'T46U', ports: 2 } }),
    actions: ['deviceType.create'],
  },
  {
    route: 'POST /v1/sites',
    run: async () => {
      const res = await call(app, 'POST', '/v1/sites', { key: admin, json: { name: 'Paris', deviceTypes: [`desk-${tag}`] } });
      made.site = res.json.id;
      return res;
    },
    actions: ['site.create'],
  },
  {
    route: 'PATCH /v1/sites/{id}',
    run: () => call(app, 'PATCH', `/v1/sites/${made.site}`, { key: admin, json: { name: 'Paris 9e' } }),
    actions: ['site.update'],
    rows: ([r]) => {
      expect(r!.before).toMatchObject({ name: 'Paris' });
      expect(r!.after).toMatchObject({ name: 'Paris 9e' });
    },
  },
  {
    route: 'POST /v1/devices',
    run: async () => {
      made.mac = freshMac();
      const res = await call(app, 'POST', '/v1/devices', { key: admin, json: { mac: made.mac, deviceType: `desk-${tag}`, site: 'Paris 9e', lines: [{ port: 1, identifiant: made.identifiant }] } });
      made.device = res.json.id;
      return res;
    },
    actions: ['device.create'],
  },
  {
    route: 'PATCH /v1/devices/{id}',
    run: () => call(app, 'PATCH', `/v1/devices/${made.device}`, { key: admin, json: { notes: 'reception desk' } }),
    actions: ['device.update'],
    rows: ([r]) => {
      expect(r!.before).toMatchObject({ notes: null });
      expect(r!.after).toMatchObject({ notes: 'reception desk' });
    },
  },
  {
    route: 'POST /v1/devices/{id}/restart',
    run: async () => {
      const reg = await call(app, 'POST', '/v1/devices/registrations', {
        key: pbx,
        json: { identifiant: made.identifiant, contact: `sip:${made.identifiant}@192.0.2.10:5062`, expires: 600, userAgent: `Yealink SIP-T46U 108.86.0.20 ${made.mac!.replaceAll(':', '')}` },
      });
      expect(reg.status, reg.text).toBe(200);
      // Kamailio silent: the NOTIFY was asked for, its answer a 408
      return call(app, 'POST', `/v1/devices/${made.device}/restart`, { key: admin });
    },
    actions: ['device.restart'],
  },
  {
    route: 'POST /v1/devices/{id}/retire',
    run: () => call(app, 'POST', `/v1/devices/${made.device}/retire`, { key: admin }),
    actions: ['device.retire'],
    rows: ([r]) => expect(r!.after).toMatchObject({ retiredAt: expect.any(String) }),
  },
  {
    route: 'POST /v1/devices/import',
    run: () => csv(admin, 'POST', '/v1/devices/import', ['mac;device_type;site;lines;notes', `${freshMac()};desk-${tag};Paris 9e;;`, `${freshMac()};desk-${tag};Paris 9e;;`].join('\n')),
    actions: ['device.import'],
    rows: ([r]) => expect(r!.after).toMatchObject({ created: 2, updated: 0 }),
  },
  {
    route: 'POST /v1/people',
    run: async () => {
      const email = `ana-${tag}@example.test`;
      const caught = smtp.next(email);
      const res = await call(app, 'POST', '/v1/people', { key: admin, json: { email, name: 'Ana', roles: ['comptable'], locale: 'fr' } });
      await caught;
      made.person = res.json.person.id;
      return res;
    },
    actions: ['person.create'],
  },
  {
    route: 'PATCH /v1/people/{id}',
    run: () => call(app, 'PATCH', `/v1/people/${made.person}`, { key: admin, json: { roles: ['comptable', 'acheteur'] } }),
    actions: ['person.update'],
    rows: ([r]) => {
      expect(r!.before).toMatchObject({ roles: ['comptable'] });
      expect(r!.after).toMatchObject({ roles: ['comptable', 'acheteur'] });
    },
  },
  {
    route: 'POST /v1/people/{id}/link',
    run: async () => {
      const caught = smtp.next(`ana-${tag}@example.test`);
      const res = await call(app, 'POST', `/v1/people/${made.person}/link`, { key: admin });
      await caught;
      return res;
    },
    actions: ['person.invitation'],
  },
  {
    route: 'POST /v1/people/import',
    run: () => csv(admin, 'POST', '/v1/people/import', [`bea-${tag}@example.test,Bea,comptable,fr`, `carl-${tag}@example.test,Carl,acheteur,en`].join('\n')),
    actions: ['person.create', 'person.create'],
  },
];

beforeAll(async () => {
  smtp = await startSmtp();
  silent = await silentServer();
  app = testApp({
    kamailioRpc: { url: `${silent.url}/RPC`, timeoutMs: 300 },
    portal: { mail: { smtpUrl: smtp.url, from: 'Forfait <noreply@forfait.test>', outboxDir: '/nonexistent' }, publicUrl: 'https://portal.example.test' },
  });
  reseller = await resellerKey({ newReseller: true });
});
afterAll(async () => {
  await app?.close();
  await smtp?.close();
  silent?.close();
});

async function lastId(): Promise<string> {
  const r = await db.selectFrom('auditEvents').select((eb) => eb.fn.max('id').as('id')).where('resellerId', '=', reseller.resellerId).executeTakeFirst();
  return String(r?.id ?? 0);
}

describe('the audit trail covers every mutating route', () => {
  it('every mutating route of /openapi.json is walked below, or is the PBX’s own traffic', async () => {
    const doc = (await call(app, 'GET', '/openapi.json')).json as { paths: Record<string, Record<string, unknown>> };
    const mutating = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).filter((m) => m !== 'get').map((m) => `${m.toUpperCase()} ${path}`));
    expect(mutating.length).toBeGreaterThan(30);
    const walked = new Set(steps.map((s) => s.route));
    expect(mutating.filter((r) => !walked.has(r) && !(r in pbxTraffic))).toEqual([]);
    // and nothing below names a route that is gone
    expect([...walked, ...Object.keys(pbxTraffic)].filter((r) => !mutating.includes(r))).toEqual([]);
  });

  for (const step of steps) {
    it(`${step.route}: ${step.actions.join(', ')}`, async () => {
      const mark = await lastId();
      const res = await step.run();
      expect(res.status, res.text).toBeLessThan(300);
      const rows = await db
        .selectFrom('auditEvents')
        .select(['action', 'actorKind', 'tenantId', 'targetType', 'targetId', 'before', 'after'])
        .where('resellerId', '=', reseller.resellerId)
        .where('id', '>', mark)
        .orderBy('id')
        .execute();
      expect(rows.map((r) => r.action)).toEqual(step.actions);
      for (const r of rows) expect(r.actorKind).toBe('key');
      step.rows?.(rows);
    }, 60_000);
  }
});
