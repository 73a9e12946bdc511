import { describe, expect, it } from 'vitest';
import type { Access } from '../../api/auth.js';
import { call, testApp, testDb } from '../support/app.js';
import { keyWithRoles, newTenant, powerlessKey, resellerKey, type TenantFixture } from '../support/factory.js';

/**
 * Walks every route the app registers. For each one it proves: no key → 401;
 * a key without the permission (or of the wrong scope) → 403; a key of another
 * tenant (or reseller) with every permission → 404 on the first one's objects,
 * and lists that never show them. A new route without an isolation fixture
 * below fails this test, so isolation cannot be forgotten.
 */

const app = testApp();

// Routes outside the API contract: no key, no tenant data.
const infrastructure = new Set(['GET /openapi.json', 'GET /docs', 'GET /docs/assets/swagger-ui-init.js', 'GET /docs/assets/:file', 'GET /metrics', 'GET /dashboard', 'GET /dashboard/assets/:file']);

interface Owned {
  a: TenantFixture;
  aKeyId: string;
  aTariffId: string;
  aUserId: string;
  aImportId: string;
  aReservationId: string;
  aInvoiceId: string;
  aSiteId: string;
  aDeviceId: string;
  aPersonId: string;
  aSimulationId: string;
}

interface Probe {
  params: Record<string, string>;
  body?: unknown;
  /** A non-JSON body (CSV uploads). */
  raw?: { body: string; contentType: string };
}

const tariffCsv = 'prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible\n33,France,fixed,0.02,0,60,60,true\n';

const cdrCsvHeader = 'call_id,identifiant,caller,callee,direction,started_at,answered_at,duration_seconds,disposition,site,line\n';

/** For each route with a path parameter: the object of tenant A to aim at, and a valid body. */
const fixtures: Record<string, (o: Owned) => Probe> = {
  'GET /v1/tenants/{id}': (o) => ({ params: { id: o.a.id } }),
  'PATCH /v1/tenants/{id}': (o) => ({ params: { id: o.a.id }, body: { notes: 'changed by someone else' } }),
  'DELETE /v1/keys/{id}': (o) => ({ params: { id: o.aKeyId } }),
  'GET /v1/tariffs/{id}': (o) => ({ params: { id: o.aTariffId } }),
  'PUT /v1/tariffs/{id}': (o) => ({ params: { id: o.aTariffId }, raw: { body: tariffCsv, contentType: 'text/csv' } }),
  'POST /v1/tariffs/{id}/simulate': (o) => ({ params: { id: o.aTariffId }, body: { from: '2026-11-01', to: '2026-12-01', tariffCsv } }),
  'POST /v1/tariffs/{id}/quote': (o) => ({ params: { id: o.aTariffId }, body: { callee: '+33142000000', durationSeconds: 60 } }),
  'GET /v1/simulations/{id}': (o) => ({ params: { id: o.aSimulationId } }),
  'GET /v1/users/{id}': (o) => ({ params: { id: o.aUserId } }),
  'GET /v1/users/{id}.pdf': (o) => ({ params: { id: o.aUserId } }),
  'PATCH /v1/users/{id}': (o) => ({ params: { id: o.aUserId }, body: { generalState: 'changed by someone else' } }),
  'DELETE /v1/users/{id}': (o) => ({ params: { id: o.aUserId } }),
  'POST /v1/users/{id}/ledger': (o) => ({ params: { id: o.aUserId }, body: { kind: 'topup', amount: '100', idempotencyKey: 'isolation' } }),
  'GET /v1/users/{id}/ledger': (o) => ({ params: { id: o.aUserId } }),
  'POST /v1/users/imports/{importId}/restore': (o) => ({ params: { importId: o.aImportId } }),
  'POST /v1/cdrs/import': () => ({ params: {}, raw: { body: cdrCsvHeader, contentType: 'text/csv' } }),
  'GET /v1/users/{id}/calls.csv': (o) => ({ params: { id: o.aUserId } }),
  'GET /v1/invoices/{id}': (o) => ({ params: { id: o.aInvoiceId } }),
  'GET /v1/invoices/{id}.pdf': (o) => ({ params: { id: o.aInvoiceId } }),
  'GET /v1/invoices/{id}.xml': (o) => ({ params: { id: o.aInvoiceId } }),
  'GET /v1/invoices/{id}/details.csv': (o) => ({ params: { id: o.aInvoiceId } }),
  'DELETE /v1/reservations/{id}': (o) => ({ params: { id: o.aReservationId } }),
  'GET /v1/archives/{month}': () => ({ params: { month: '2001-01' } }),
  'PATCH /v1/people/{id}': (o) => ({ params: { id: o.aPersonId }, body: { status: 'disabled' } }),
  'POST /v1/people/{id}/link': (o) => ({ params: { id: o.aPersonId } }),
  'POST /v1/people/import': () => ({ params: {}, raw: { body: 'probe-csv@example.test,Probe,acheteur\n', contentType: 'text/csv' } }),
  'POST /v1/calls/{reservationId}/end': (o) => ({ params: { reservationId: o.aReservationId }, body: { durationSeconds: 30, disposition: 'answered' } }),
  'PATCH /v1/sites/{id}': (o) => ({ params: { id: o.aSiteId }, body: { name: 'renamed by someone else' } }),
  'GET /v1/devices/{id}': (o) => ({ params: { id: o.aDeviceId } }),
  'GET /v1/devices/{id}/status': (o) => ({ params: { id: o.aDeviceId } }),
  'PATCH /v1/devices/{id}': (o) => ({ params: { id: o.aDeviceId }, body: { notes: 'changed by someone else' } }),
  'POST /v1/devices/{id}/retire': (o) => ({ params: { id: o.aDeviceId } }),
  'POST /v1/devices/{id}/restart': (o) => ({ params: { id: o.aDeviceId } }),
};

/** Valid bodies for routes without path parameters, so 403 is not hidden behind 400. */
const bodies: Record<string, unknown> = {
  'POST /v1/tenants': { name: 'isolation-probe', productType: 'pro' },
  'POST /v1/product-types': { code: 'probe', name: 'Probe', maxUsers: 1, monthlyFeePerUser: '1.00' },
  'POST /v1/roles': { name: 'probe', inherits: 'acheteur' },
  'POST /v1/keys': { name: 'probe', roles: ['acheteur'] },
  'POST /v1/users': { fullName: 'Probe', matricule: '99999999999999', identifiant: '9999999' },
  'POST /v1/cdrs': [],
  'POST /v1/rerate': { from: '2026-11-01', to: '2026-12-01' },
  'POST /v1/invoices/run': { period: '2026-10' },
  'POST /v1/people': { email: 'probe@example.test', name: 'Probe', roles: ['acheteur'], delivery: 'password' },
  'POST /v1/authorize': { identifiant: '7654321', callee: '0142000000' },
  'POST /v1/device-types': { code: 'probe-phone', vendor: 'Probe', model: 'P1', ports: 1 },
  'POST /v1/sites': { name: 'probe-site' },
  'POST /v1/devices': { mac: '02:00:00:00:00:99', deviceType: 'probe-phone', site: 'probe-site' },
  'POST /v1/devices/registrations': { identifiant: '7654321', contact: 'sip:7654321@192.0.2.1', expires: 60 },
};

interface Operation {
  method: string;
  path: string;
  access: Access;
}

async function operations(): Promise<Operation[]> {
  const doc = (await call(app, 'GET', '/openapi.json')).json as {
    paths: Record<string, Record<string, { 'x-forfait-access'?: Access }>>;
  };
  const ops: Operation[] = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      ops.push({ method: method.toUpperCase(), path, access: op['x-forfait-access']! });
    }
  }
  return ops;
}

/** Four random octets as 00:00:00:00 (the MAC's tail). */
function randomMacTail(): string {
  return Array.from({ length: 4 }, () => Math.floor(Math.random() * 256).toString(16).padStart(2, '0')).join(':');
}

function fill(path: string, params: Record<string, string>): string {
  return path.replace(/\{(\w+)\}/g, (_, name: string) => encodeURIComponent(params[name] ?? 'x'));
}

describe('tenant isolation and access on every route', () => {
  it('every registered route is documented with its access rule', async () => {
    const documented = new Set((await operations()).map((o) => `${o.method} ${o.path.replace(/\{(\w+)\}/g, ':$1')}`));
    const registered = app.app.routes
      .filter((r) => r.method !== 'ALL')
      .map((r) => `${r.method} ${r.path}`)
      .filter((r) => !infrastructure.has(r))
      // the portal's pages hold no rule of their own: they call these routes as the signed-in person (test/portal/)
      .filter((r) => !r.split(' ')[1]!.startsWith('/portal'));
    expect(registered.length).toBeGreaterThan(5);
    for (const r of registered) expect(documented, `route ${r} is not in /openapi.json`).toContain(r);
    for (const o of await operations()) expect(o.access, `${o.method} ${o.path} declares no access`).toBeDefined();
  });

  it('401 without a key, 403 without the permission or scope, 404 across tenants', async () => {
    const otherReseller = await resellerKey({ newReseller: true });
    const reseller = await resellerKey();
    const aTariffId = `iso-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const put = await call(app, 'PUT', `/v1/tariffs/${aTariffId}`, { key: reseller.key, body: tariffCsv, headers: { 'content-type': 'text/csv' } });
    expect(put.status).toBe(200);
    const a = await newTenant(app, { tariffId: aTariffId });
    const b = await newTenant(app);
    const aKey = await keyWithRoles(app, a, ['comptable']);
    const aImport = await call(app, 'POST', '/v1/users/import?mode=append', {
      key: a.adminKey,
      body: 'Alice Secret,12312312312312,7654321,0612345678,,,,,,,,,\r\n',
      headers: { 'content-type': 'text/csv' },
    });
    expect(aImport.status).toBe(200);
    const aUser = (await call(app, 'GET', '/v1/users', { key: a.adminKey })).json.items[0];
    await call(app, 'POST', `/v1/users/${aUser.id}/ledger`, { key: a.adminKey, json: { kind: 'topup', amount: '7', idempotencyKey: 'a-own' } });
    const aCall = await call(app, 'POST', '/v1/cdrs', {
      key: a.adminKey,
      json: [{ callId: 'iso-secret-call-A', identifiant: '7654321', callee: '0142000000', startedAt: '2026-11-03T10:00:00+01:00', durationSeconds: 0 }],
    });
    expect(aCall.json.accepted).toBe(1);
    // an invoice of A: one charged call in October, invoiced by A's own key
    const aOctober = await call(app, 'POST', '/v1/cdrs', {
      key: a.adminKey,
      json: [{ callId: 'iso-secret-call-A-oct', identifiant: '7654321', callee: '0142000000', startedAt: '2026-10-13T10:00:00+02:00', durationSeconds: 61, disposition: 'answered' }],
    });
    expect(aOctober.json.accepted).toBe(1);
    const aRun = await call(app, 'POST', '/v1/invoices/run', { key: a.adminKey, json: { period: '2026-10' } });
    expect(aRun.status, aRun.text).toBe(200);
    expect(aRun.json.created).toHaveLength(1);
    const aPbx = (await call(app, 'POST', '/v1/keys', { key: a.adminKey, json: { name: 'pbx', principal: 'pbx' } })).json.key;
    const aAuth = await call(app, 'POST', '/v1/authorize', { key: aPbx, json: { identifiant: '7654321', callee: '0612345678' } });
    expect(aAuth.json.decision).toBe('allow');
    // an archived month of A (its record: what GET /v1/archives/{month} reads)
    await testDb().sql`INSERT INTO cdr_archives (tenant_id, month, part, file, sha256, rows, id_sum, bytes, verified_at)
                        VALUES (${a.id}, '2001-01-01', 1, ${`${a.id}/2001-01.csv.gz`}, ${'0'.repeat(64)}, 1, 1, 100, now())`;
    const aUserBefore = (await call(app, 'GET', `/v1/users/${aUser.id}`, { key: a.adminKey })).json;
    // a site and a device of A, its phone registered (so a restart would have somewhere to go)
    const typeCode = `iso-${Math.random().toString(36).slice(2, 10)}`;
    expect((await call(app, 'POST', '/v1/device-types', { key: reseller.key, json: { code: typeCode, vendor: 'Yealink', model: 'T46U', ports: 2 } })).status).toBe(201);
    const aSite = await call(app, 'POST', '/v1/sites', { key: a.adminKey, json: { name: 'Secret HQ', deviceTypes: [typeCode] } });
    expect(aSite.status, aSite.text).toBe(201);
    const aDevice = await call(app, 'POST', '/v1/devices', { key: a.adminKey, json: { mac: `02:00:${randomMacTail()}`, deviceType: typeCode, site: 'Secret HQ', lines: [{ port: 1, identifiant: '7654321' }], notes: 'secret notes' } });
    expect(aDevice.status, aDevice.text).toBe(201);
    expect((await call(app, 'POST', '/v1/devices/registrations', { key: aPbx, json: { identifiant: '7654321', contact: 'sip:7654321@192.0.2.7:5060', expires: 3600 } })).status).toBe(200);
    const aDeviceBefore = (await call(app, 'GET', `/v1/devices/${aDevice.json.id}`, { key: a.adminKey })).json;
    const aPerson = await call(app, 'POST', '/v1/people', { key: a.adminKey, json: { email: `alice-${a.id}@example.test`, name: 'Alice Person', roles: ['comptable'], delivery: 'password' } });
    expect(aPerson.status, aPerson.text).toBe(201);
    const aSimulation = await call(app, 'POST', `/v1/tariffs/${aTariffId}/simulate?wait=0`, { key: a.adminKey, json: { from: '2026-11-01', to: '2026-12-01' } });
    expect(aSimulation.status, aSimulation.text).toBe(202);
    const owned: Owned = {
      a,
      aSimulationId: aSimulation.json.jobId,
      aPersonId: aPerson.json.person.id,
      aKeyId: aKey.id,
      aTariffId,
      aUserId: aUser.id,
      aImportId: aImport.json.importId,
      aReservationId: aAuth.json.reservationId,
      aInvoiceId: aRun.json.created[0],
      aSiteId: aSite.json.id,
      aDeviceId: aDevice.json.id,
    };

    const bPowerless = await powerlessKey(app, b);
    const ops = await operations();
    const checked: string[] = [];

    for (const op of ops) {
      const name = `${op.method} ${op.path}`;
      const hasParams = /\{\w+\}/.test(op.path);
      const fixture = fixtures[name]?.(owned);
      if (hasParams) expect(fixture, `no isolation fixture for ${name}: add one to test/api/isolation.test.ts`).toBeDefined();
      const path = fill(op.path, fixture?.params ?? {});
      const send = (key?: string) =>
        call(app, op.method, path, {
          key,
          ...(fixture?.raw ? { body: fixture.raw.body, headers: { 'content-type': fixture.raw.contentType } } : { json: fixture?.body ?? bodies[name] }),
        });
      if (op.access.scope === 'public') continue;

      const anon = await send();
      expect(anon.status, `${name} without a key`).toBe(401);

      if (op.access.scope === 'reseller') {
        const tenantKey = await send(b.adminKey);
        expect(tenantKey.status, `${name} with a tenant key`).toBe(403);
        if (hasParams) {
          const other = await send(otherReseller.key);
          expect(other.status, `${name} by another reseller`).toBe(404);
        }
      } else {
        const denied = await send(bPowerless);
        expect(denied.status, `${name} without ${op.access.permission}`).toBe(403);
        if (!op.access.reseller) {
          const asReseller = await send(b.resellerKey);
          expect(asReseller.status, `${name} with a reseller key`).toBe(403);
        }
        if (hasParams) {
          const cross = await send(b.adminKey);
          expect(cross.status, `${name} with tenant B's administrateur key on A's object`).toBe(404);
        }
      }
      checked.push(name);
    }

    // lists of B never show A's objects
    const secretIds = [
      ...[a.id, aKey.id, aUser.id, aImport.json.importId, aUser.matricule, 'Alice Secret', 'iso-secret-call-A', aRun.json.created[0]],
      ...[aSite.json.id, 'Secret HQ', aDevice.json.id, aDevice.json.mac, aDevice.json.macDisplay, 'secret notes'],
      ...[aPerson.json.person.id, 'Alice Person'],
    ];
    // (a PDF preview is not a list: it answers 409 when B has nothing to preview)
    for (const op of ops.filter((o) => o.method === 'GET' && !/\{\w+\}/.test(o.path) && o.access.scope !== 'public' && !o.path.endsWith('.pdf'))) {
      const key = op.access.scope === 'reseller' ? otherReseller.key : b.adminKey;
      const res = await call(app, 'GET', op.path, { key });
      expect(res.status, `GET ${op.path}`).toBe(200);
      for (const id of secretIds) expect(res.text, `GET ${op.path} shows A's ${id}`).not.toContain(id);
    }

    // and nothing of A was changed by the attempts
    const aTenant = await call(app, 'GET', `/v1/tenants/${a.id}`, { key: a.resellerKey });
    expect(aTenant.json.notes).toBeNull();
    const aKeys = await call(app, 'GET', '/v1/keys', { key: a.adminKey });
    expect(aKeys.json.items.find((k: { id: string }) => k.id === aKey.id).revokedAt).toBeNull();
    const tariff = await call(app, 'GET', `/v1/tariffs/${aTariffId}`, { key: reseller.key });
    expect(tariff.json.rates).toHaveLength(1);
    const aUserAfter = await call(app, 'GET', `/v1/users/${aUser.id}`, { key: a.adminKey });
    expect(aUserAfter.json).toEqual(aUserBefore);
    const aLedger = await call(app, 'GET', `/v1/users/${aUser.id}/ledger`, { key: a.adminKey });
    // A's own October call is charged to its ledger; nothing else but A's top-up
    expect(aLedger.json.items.filter((e: { kind: string }) => e.kind !== 'call').map((e: { idempotencyKey: string }) => e.idempotencyKey)).toEqual(['a-own']);
    const aImports = await call(app, 'GET', '/v1/users/imports', { key: a.adminKey });
    expect(aImports.json.items.find((i: { id: string }) => i.id === aImport.json.importId).restoredAt).toBeNull();
    const { db } = testDb();
    const aReservation = await db.selectFrom('reservations').select('status').where('tenantId', '=', a.id).where('id', '=', aAuth.json.reservationId).executeTakeFirstOrThrow();
    expect(aReservation.status).toBe('open');
    const aInvoice = await call(app, 'GET', `/v1/invoices/${aRun.json.created[0]}`, { key: a.adminKey });
    expect(aInvoice.status).toBe(200);
    expect(aInvoice.json.tenantId).toBe(a.id);
    const aDeviceAfter = await call(app, 'GET', `/v1/devices/${aDevice.json.id}`, { key: a.adminKey });
    expect(aDeviceAfter.json).toEqual(aDeviceBefore);
    const aSites = await call(app, 'GET', '/v1/sites', { key: a.adminKey });
    expect(aSites.json.items.map((x: { name: string }) => x.name)).toEqual(['Secret HQ']);
    expect(await db.selectFrom('deviceRestarts').select('id').where('tenantId', '=', a.id).execute()).toEqual([]);
    const aPeople = await call(app, 'GET', '/v1/people', { key: a.adminKey });
    expect(aPeople.json.items.find((p: { id: string }) => p.id === aPerson.json.person.id).status).toBe('active');
    expect(checked.length).toBe(ops.filter((o) => o.access.scope !== 'public').length);
  });
});
