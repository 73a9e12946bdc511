import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import pino from 'pino';
import postgres from 'postgres';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../api/app.js';
import { defaultConfig } from '../../api/context.js';
import { connect } from '../../db/connection.js';
import { migrateToLatest } from '../../db/migrate.js';
import { insertKey } from '../../services/access/access.js';
import { call, unlimited, type Answer } from '../support/app.js';
import { uniqueName } from '../support/factory.js';
import { settle, tariffHeader } from '../support/accounts.js';
import { testIssuer } from '../support/issuer.js';

// What a new user does on /docs: opens an operation, presses "Try it out" with
// the example it shows, and sends it. Every example must be a valid request
// that gets the documented answer (issue 18).
//
// The examples name fixed values, some unique in the whole database (a tenant's
// name, a person's email, a product type's code, the tariff standard-2026), and
// other tests send the examples too (test/hardening/fuzz.test.ts): this file
// has a database of its own, as a new installation would.

const NAME = `forfait_docs_${randomBytes(4).toString('hex')}`;
const admin = postgres(inject('databaseUrl'), { max: 1, onnotice: () => undefined });
await admin.unsafe(`CREATE DATABASE ${NAME}`);
const own = new URL(inject('databaseUrl'));
own.pathname = `/${NAME}`;
const handle = connect(own.toString(), { max: 10 });
await migrateToLatest(handle.db);
const outbox = await mkdtemp(path.join(tmpdir(), 'forfait-docs-outbox-'));
const app = createApp({
  db: handle.db,
  sql: handle.sql,
  logger: pino({ level: 'silent' }),
  config: { ...defaultConfig, issuer: testIssuer, rateLimits: unlimited, portal: { ...defaultConfig.portal, mail: { ...defaultConfig.portal.mail, outboxDir: outbox } } },
});
afterAll(async () => {
  await app.close();
  await handle.close();
  await admin.unsafe(`DROP DATABASE IF EXISTS ${NAME} WITH (FORCE)`);
  await admin.end();
});
const doc = (await call(app, 'GET', '/openapi.json')).json;

/** A new reseller and a key of it, in this file's database. */
async function newReseller(): Promise<{ key: string; resellerId: string }> {
  const resellerId = (await handle.db.insertInto('resellers').values({ name: uniqueName('reseller') }).returning('id').executeTakeFirstOrThrow()).id;
  return { key: (await insertKey(handle.db, { principal: 'reseller', name: 'docs', resellerId })).key, resellerId };
}

// ajv-formats is CommonJS: its default export is the function under ESM interop too
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
const ajv = addFormats(new Ajv2020({ strict: false, allErrors: true }));
const compiled = new Map<unknown, ValidateFunction>();
/** A schema of the document, its $refs resolved against the document's components. */
function validator(schema: object): ValidateFunction {
  let v = compiled.get(schema);
  if (!v) {
    v = ajv.compile({ ...schema, components: doc.components });
    compiled.set(schema, v);
  }
  return v;
}
function deref(schema: { $ref?: string } | undefined): any {
  return schema?.$ref ? doc.components.schemas[schema.$ref.split('/').pop()!] : schema;
}

interface Operation {
  method: string;
  path: string;
  op: any;
}
const operations: Operation[] = Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([p, ops]) =>
  Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path: p, op })),
);
const name = (o: Operation) => `${o.method} ${o.path}`;

/** The body an operation's "Try it out" sends: its example, in the media type it is given for. */
function requestExample(o: Operation): { type: string; body: unknown } | undefined {
  for (const [type, media] of Object.entries((o.op.requestBody?.content ?? {}) as Record<string, any>)) {
    const example = media.example ?? deref(media.schema)?.example;
    if (example !== undefined) return { type, body: example };
  }
  return undefined;
}
/** The query "Try it out" fills in: every query parameter that has an example. */
function queryExample(o: Operation): URLSearchParams {
  const q = new URLSearchParams();
  for (const p of (o.op.parameters ?? []) as any[]) {
    const example = p.example ?? p.schema?.example;
    if (p.in === 'query' && example !== undefined) q.set(p.name, String(example));
  }
  return q;
}
const hasRequestExample = (o: Operation) => requestExample(o) !== undefined || queryExample(o).size > 0;

// ---- a seeded tenant, as the examples name it -------------------------------

type Part = 'user' | 'deviceType' | 'site' | 'device' | 'person' | 'reservation';
interface World {
  reseller: string;
  resellerId: string;
  tenantId: string;
  tariffId: string;
  admin: string;
  pbx: string;
  userId?: string;
  siteId?: string;
  deviceId?: string;
  personId?: string;
  reservationId?: string;
}

/** The tariff the tenant rates with: France, its mobiles, Réunion. */
const rates = ['33,France fixe,fixed,0.02,0,60,60,true,,', '336,France mobile,mobile,0.20,0.10,60,1,true,,', '262,Réunion,international,0.60,0,60,1,false,,'];

async function ok(res: Answer, what: string, status = 201): Promise<any> {
  if (res.status !== status) throw new Error(`seeding ${what}: ${res.status} ${res.text}`);
  return res.json;
}

/** A new reseller and tenant, with the parts the examples name (user 1234567, device type yealink-t46u, site Paris, …). */
async function world(parts: Set<Part>): Promise<World> {
  const r = await newReseller();
  const tariffId = uniqueName('tariff').toLowerCase();
  await ok(await call(app, 'PUT', `/v1/tariffs/${tariffId}`, { key: r.key, body: [tariffHeader, ...rates].join('\n'), headers: { 'content-type': 'text/csv' } }), 'tariff', 200);
  const t = await ok(
    await call(app, 'POST', '/v1/tenants', { key: r.key, json: { name: uniqueName('tenant'), productType: 'essentiel', tariffId, country: 'FR', timezone: 'Europe/Paris' } }),
    'tenant',
  );
  const pbx = (await ok(await call(app, 'POST', '/v1/keys', { key: t.adminKey, json: { name: 'pbx', principal: 'pbx' } }), 'pbx key')).key;
  const w: World = { reseller: r.key, resellerId: r.resellerId, tenantId: t.tenant.id, tariffId, admin: t.adminKey, pbx };
  if (parts.has('user')) {
    const user = { fullName: 'Zoë Martin', matricule: '20260000000001', identifiant: '1234567', authorizedNumbers: ['06 12 34 56 78'] };
    w.userId = (await ok(await call(app, 'POST', '/v1/users', { key: w.admin, json: user }), 'user')).id;
    await ok(await call(app, 'POST', `/v1/users/${w.userId}/ledger`, { key: w.admin, json: { kind: 'topup', amount: '10.00', idempotencyKey: 'seed' } }), 'top-up');
    await settle(app);
  }
  if (parts.has('deviceType')) {
    await ok(await call(app, 'POST', '/v1/device-types', { key: r.key, json: { code: 'yealink-t46u', vendor: 'Yealink', model: 'T46U', ports: 16 } }), 'device type');
  }
  if (parts.has('site')) w.siteId = (await ok(await call(app, 'POST', '/v1/sites', { key: w.admin, json: { name: 'Paris', deviceTypes: ['yealink-t46u'] } }), 'site')).id;
  if (parts.has('device')) {
    const device = await call(app, 'POST', '/v1/devices', {
      key: w.admin,
      json: { mac: '00:15:65:AA:BB:CC', deviceType: 'yealink-t46u', site: 'Paris', lines: [{ port: 1, identifiant: '1234567' }] },
    });
    w.deviceId = (await ok(device, 'device')).id;
  }
  if (parts.has('person')) {
    const person = await call(app, 'POST', '/v1/people', { key: w.admin, json: { email: `${uniqueName('p').toLowerCase()}@example.com`, name: 'Paul Roux', roles: ['comptable'], delivery: 'password' } });
    w.personId = (await ok(person, 'person')).person.id;
  }
  if (parts.has('reservation')) {
    const hold = await call(app, 'POST', '/v1/authorize', { key: w.pbx, json: { identifiant: '1234567', callee: '0612345678', callId: 'seed@pbx' } });
    w.reservationId = (await ok(hold, 'reservation', 200)).reservationId;
  }
  return w;
}

interface Scenario {
  /** Parts of the world left out: the example creates them itself. */
  without?: Part[];
  /** Parts added to the usual world. */
  with?: Part[];
  key?: (w: World) => string;
  /** The path's parameters. */
  params?: (w: World) => Record<string, string>;
  /** What the example names that the world does not have. */
  prepare?: (w: World) => Promise<void>;
  /** What the answer must say beyond its schema: the example did what it shows. */
  check?: (json: any) => void;
}

const needs: Record<Part, Part[]> = { user: ['device', 'reservation'], deviceType: ['site', 'device'], site: ['device'], device: [], person: [], reservation: [] };
function partsOf(s: Scenario): Set<Part> {
  const parts = new Set<Part>(['user', 'deviceType', 'site', 'device', 'person', ...(s.with ?? [])]);
  const drop = (p: Part): void => {
    parts.delete(p);
    for (const q of needs[p]) drop(q);
  };
  for (const p of s.without ?? []) drop(p);
  return parts;
}

const reseller = (w: World) => w.reseller;
const pbx = (w: World) => w.pbx;
const accepted = (json: any) => expect(json).toMatchObject({ accepted: 1, rejectedCount: 0, duplicates: 0 });

/** How each operation with an example is tried: who calls, on what. */
const scenarios: Record<string, Scenario> = {
  'GET /v1/tenants': { key: reseller },
  'POST /v1/tenants': {
    key: reseller,
    // the example's tariff, uploaded by the reseller first
    prepare: async (w) => {
      await ok(await call(app, 'PUT', '/v1/tariffs/standard-2026', { key: w.reseller, body: [tariffHeader, ...rates].join('\n'), headers: { 'content-type': 'text/csv' } }), 'tariff', 200);
    },
    check: (j) => expect(j.tenant).toMatchObject({ country: 'FR', timezone: 'Europe/Paris' }) },
  'PATCH /v1/tenants/{id}': { key: reseller, params: (w) => ({ id: w.tenantId }) },
  'POST /v1/product-types': { key: reseller },
  // the tenant's own tariff over October: the example's call is rated again, nothing written
  'POST /v1/tariffs/{id}/simulate': {
    params: (w) => ({ id: w.tariffId }),
    prepare: async (w) => {
      const cdr = { callId: 'oct-sim', identifiant: '1234567', callee: '0612345678', startedAt: '2026-10-15T10:00:00+02:00', durationSeconds: 60 };
      accepted(await ok(await call(app, 'POST', '/v1/cdrs', { key: w.admin, json: [cdr] }), 'October call', 200));
    },
    check: (j) => expect(j.result.total).toMatchObject({ calls: 1, difference: '0.0000' }),
  },
  'POST /v1/tariffs/{id}/quote': { params: (w) => ({ id: w.tariffId }), check: (j) => expect(j).toMatchObject({ billableSeconds: 125, cost: '0.5167' }) },
  'PUT /v1/tariffs/{id}': { key: reseller, params: () => ({ id: uniqueName('tarif').toLowerCase() }), check: (j) => expect(j.rates.length).toBeGreaterThan(0) },
  'POST /v1/roles': {},
  'GET /v1/keys': {},
  'POST /v1/keys': { check: (j) => expect(j.key).toMatch(/^ffk_/) },
  'GET /v1/cdrs/export.csv': {},
  'GET /v1/cdrs': {},
  'POST /v1/cdrs': { check: accepted },
  'POST /v1/cdrs/import': { check: accepted },
  'POST /v1/rerate': {},
  'GET /v1/users': {},
  'POST /v1/users': { without: ['user'] },
  'POST /v1/users/import': { without: ['user'], check: (j) => expect(j).toMatchObject({ created: 1 }) },
  'GET /v1/users/imports': {},
  'GET /v1/users/{id}/calls.csv': { params: (w) => ({ id: w.userId! }) },
  'PATCH /v1/users/{id}': { params: (w) => ({ id: w.userId! }) },
  'POST /v1/users/{id}/ledger': { params: (w) => ({ id: w.userId! }) },
  'GET /v1/users/{id}/ledger': { params: (w) => ({ id: w.userId! }) },
  'POST /v1/authorize': { key: pbx, check: (j) => expect(j).toMatchObject({ decision: 'allow', callee: '+33612345678' }) },
  'POST /v1/invoices/run': {},
  'GET /v1/invoices': {},
  'GET /v1/invoices/export.csv': {},
  'GET /v1/invoices/preview.pdf': {
    // the example's month (2026-10) had a call
    prepare: async (w) => {
      const cdr = { callId: 'oct-1', identifiant: '1234567', callee: '0612345678', startedAt: '2026-10-15T10:00:00+02:00', durationSeconds: 60 };
      accepted(await ok(await call(app, 'POST', '/v1/cdrs', { key: w.admin, json: [cdr] }), 'October call', 200));
    },
  },
  'GET /v1/indicators': {},
  'GET /v1/reservations': {},
  'POST /v1/device-types': { key: reseller, without: ['deviceType'] },
  'POST /v1/sites': { without: ['site'] },
  'PATCH /v1/sites/{id}': { params: (w) => ({ id: w.siteId! }) },
  'POST /v1/devices/registrations': { key: pbx },
  'POST /v1/devices/import': { without: ['device'], check: (j) => expect(j).toMatchObject({ created: 1 }) },
  'GET /v1/devices': {},
  'POST /v1/devices': { without: ['device'] },
  'PATCH /v1/devices/{id}': { params: (w) => ({ id: w.deviceId! }) },
  'GET /v1/people': {},
  'POST /v1/people': {},
  'POST /v1/people/import': {},
  'PATCH /v1/people/{id}': { params: (w) => ({ id: w.personId! }) },
  'GET /v1/audit': {},
  'POST /v1/calls/{reservationId}/end': { key: pbx, with: ['reservation'], params: (w) => ({ reservationId: w.reservationId! }) },
};

describe('the /docs examples are valid requests with their real answers (issue 18)', () => {
  it('every request body has an example, and every operation with one has a scenario here', () => {
    const noExample = operations.filter((o) => o.op.requestBody && !requestExample(o)).map(name);
    expect(noExample).toEqual([]);
    expect(operations.filter(hasRequestExample).map(name).filter((n) => !(n in scenarios))).toEqual([]);
  });

  it('every example in the document is valid against its own schema', () => {
    const wrong: string[] = [];
    const visit = (node: unknown, where: string): void => {
      if (Array.isArray(node)) {
        node.forEach((n, i) => {
          visit(n, `${where}/${i}`);
        });
        return;
      }
      if (node === null || typeof node !== 'object') return;
      const schema = node as Record<string, unknown>;
      if ('example' in schema && ('type' in schema || 'anyOf' in schema || '$ref' in schema || 'properties' in schema)) {
        const v = validator(schema);
        if (!v(schema.example)) wrong.push(`${where}: ${ajv.errorsText(v.errors)}`);
      }
      for (const [k, child] of Object.entries(schema)) if (k !== 'example') visit(child, `${where}/${k}`);
    };
    visit(doc.paths, '#/paths');
    visit(doc.components.schemas, '#/components/schemas');
    expect(wrong).toEqual([]);
  });

  it('the JSON bodies README.md sends with curl are valid for their operations', async () => {
    const readme = (await readFile(path.join(import.meta.dirname, '../../README.md'), 'utf8')).replace(/\\\n\s*/g, ' ');
    const sent = [...readme.matchAll(/curl [^\n]*?-X (\w+) "?\$API(\/[^\s"?]+)[^\n]*? -d '([^']+)'/g)];
    expect(sent.length).toBeGreaterThanOrEqual(8);
    const wrong: string[] = [];
    for (const [, method, target, body] of sent) {
      const o = operations.find((x) => x.method === method && new RegExp(`^${x.path.replace(/\{\w+\}/g, '[^/]+')}$`).test(target!));
      if (!o) {
        wrong.push(`${method} ${target}: no such operation`);
        continue;
      }
      const v = validator(o.op.requestBody.content['application/json'].schema);
      if (!v(JSON.parse(body!))) wrong.push(`${method} ${target} ${body}: ${ajv.errorsText(v.errors)}`);
    }
    expect(wrong).toEqual([]);
  });

  const tried = operations.filter(hasRequestExample);
  it.each(tried.map((o) => [name(o), o] as const))('%s', async (label, o) => {
    const s = scenarios[label] ?? {};
    const w = await world(partsOf(s));
    await s.prepare?.(w);
    const params = s.params?.(w) ?? {};
    const target = o.path.replace(/\{(\w+)\}/g, (_, p: string) => {
      if (params[p] === undefined) throw new Error(`${label}: no value for {${p}}`);
      return params[p]!;
    });
    const query = queryExample(o).toString();
    const example = requestExample(o);
    const body = example === undefined ? undefined : typeof example.body === 'string' ? example.body : JSON.stringify(example.body);
    const res = await call(app, o.method, `${target}${query ? `?${query}` : ''}`, {
      key: (s.key ?? ((x: World) => x.admin))(w),
      ...(body === undefined ? {} : { body, headers: { 'content-type': example!.type } }),
    });
    const documented = Object.keys(o.op.responses).filter((st) => st.startsWith('2'));
    expect(documented, `${label}: ${res.status} ${res.text}`).toContain(String(res.status));
    const content = o.op.responses[String(res.status)].content ?? {};
    const type = (res.headers.get('content-type') ?? '').split(';')[0]!;
    expect(Object.keys(content)).toContain(type);
    if (type === 'application/json') {
      const v = validator(content[type].schema);
      expect(v(res.json) ? [] : v.errors, `${label}: ${res.text}`).toEqual([]);
      const answerExample = content[type].example;
      if (answerExample !== undefined) expect(res.json).toMatchObject(answerExample);
    }
    s.check?.(res.json);
  });
});
