/**
 * Every route of /openapi.json, fuzzed (issue #24): each parameter and body
 * field gets values of the right shape and of every wrong one — other JSON
 * types, huge, empty, NUL and other control characters, unicode, numbers and
 * years out of range. Whatever the request, the answer is never a 5xx, an
 * error always comes in the envelope, and a refused request writes nothing
 * (the fuzzed tenant's and reseller's rows are the same before and after).
 *
 * Seeded and bounded: the same requests every run, 100 per route (about a
 * second a route: its time grows with the API, hence its own timeout).
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, testApp, testDb, type Answer } from '../support/app.js';
import { resellerKey, uniqueName } from '../support/factory.js';
import { TARIFF_CSV } from '../cdrs/helpers.js';
import { newUser } from '../support/accounts.js';

const SEED = 24_2026;
const RUNS_PER_ROUTE = 100;

const app = testApp();
afterAll(() => app.close());

interface Schema {
  type?: string | string[];
  enum?: unknown[];
  format?: string;
  properties?: Record<string, Schema>;
  items?: Schema;
  $ref?: string;
  anyOf?: Schema[];
  oneOf?: Schema[];
  allOf?: Schema[];
  minimum?: number;
  maximum?: number;
  example?: unknown;
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  schema: Schema;
}
interface Operation {
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  'x-forfait-access'?: { scope: 'public' | 'reseller' | 'tenant'; reseller?: boolean };
}
interface OpenApi {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

const NUL = '\u0000';
/** Strings that have broken something somewhere. */
const NASTY = [
  '', ' ', NUL, `a${NUL}b`, '\u0001', '\u0007', '\u001b[31m', '\u007f', '\t', '\r\n', '\uFEFF', '\uFFFF', '\uD800', '💥', 'Zoë', 'ناصر', '日本',
  '0000-01-01', '0000-01-01T00:00:00Z', '10000-01-01', '+010000-01-01T00:00:00Z', '-000001-01-01T00:00:00Z', '9999-12-31T23:59:59.999Z',
  '0001-01-01', '2026-02-30', '2026-11-03T24:00:00', '2026-11', '2026-13', '2026-11-03', '2026-11-03T10:00:00+01:00',
  '-1', '0', '1', '1.5', '1e308', '-1e308', 'NaN', 'Infinity', '00010', ' 10 ', '99999999999999999999', '0.00001', '-0',
  'null', 'true', '[]', '{}', '%00', '%', "'; DROP TABLE users;--", '../..', '.pdf', 'a.pdf', '\\', '"', ',', ';',
  '00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff', 'x'.repeat(300), 'é'.repeat(5000),
];

const nastyString = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }).map((s) => s + NUL) },
  { weight: 1, arbitrary: fc.uuid() },
);

const nastyNumber = fc.oneof(
  fc.constantFrom(0, -1, 1, 1.5, -0.0001, 2 ** 31, -(2 ** 31), 2 ** 53, Number.MAX_SAFE_INTEGER + 2, 1e308, -1e308, 1e-308),
  fc.integer({ min: -1_000_000, max: 1_000_000 }),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
);

const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  nastyString,
  nastyNumber,
  fc.boolean(),
  fc.constant(null),
  fc.constant([]),
  fc.constant({}),
  fc.array(nastyString, { maxLength: 3 }),
  fc.dictionary(nastyString, nastyString, { maxKeys: 2 }),
);

function resolve(api: OpenApi, s: Schema): Schema {
  if (s.$ref) return resolve(api, api.components.schemas[s.$ref.split('/').pop()!]!);
  if (s.allOf && s.allOf.length === 1) return resolve(api, s.allOf[0]!);
  return s;
}

/** Values for a schema: mostly well-typed, often not. */
function valueFor(api: OpenApi, raw: Schema, depth = 0): fc.Arbitrary<unknown> {
  const s = resolve(api, raw);
  const alternatives = s.anyOf ?? s.oneOf;
  const typed: fc.Arbitrary<unknown>[] = [];
  if (alternatives) for (const a of alternatives) typed.push(valueFor(api, a, depth + 1));
  if (s.enum && s.enum.length > 0) typed.push(fc.constantFrom(...s.enum));
  if (s.example !== undefined) typed.push(fc.constant(s.example));
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  for (const t of types) {
    if (t === 'integer') typed.push(fc.integer({ min: (s.minimum ?? -10) - 10, max: Math.min(s.maximum ?? 1000, 1e9) + 10 }));
    if (t === 'number') typed.push(nastyNumber);
    if (t === 'boolean') typed.push(fc.boolean());
    if (t === 'string') typed.push(s.format === 'uuid' ? fc.uuid() : nastyString);
    if (t === 'array' && depth < 3) typed.push(fc.array(s.items ? valueFor(api, s.items, depth + 1) : anyJson, { maxLength: 3 }));
    if (t === 'object' && depth < 3) typed.push(objectFor(api, s, depth + 1));
  }
  if (typed.length === 0) return anyJson;
  return fc.oneof({ weight: 3, arbitrary: fc.oneof(...typed) }, { weight: 1, arbitrary: anyJson });
}

/** Values of the fixture by field name (a real identifiant, an authorized callee): requests then get past the lookups. */
const known: Record<string, string> = {};

function objectFor(api: OpenApi, s: Schema, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const props = Object.entries(s.properties ?? {});
  if (props.length === 0) return fc.dictionary(nastyString, anyJson, { maxKeys: 3 });
  const record: Record<string, fc.Arbitrary<unknown>> = {};
  for (const [name, p] of props) {
    const real = known[name];
    record[name] = real === undefined ? valueFor(api, p, depth) : fc.oneof(fc.constant(real), valueFor(api, p, depth));
  }
  return fc.record(record, { requiredKeys: [] });
}

/** What one field is turned into by a mutation: the hostile values, often. */
const hostile = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(NUL, `a${NUL}b`, `${NUL}x`) },
  { weight: 3, arbitrary: fc.constantFrom('\u0001', '\u007f', '0000-01-01T00:00:00Z', '+010000-01-01T00:00:00Z', 'x'.repeat(300), '', ' 10 ', '00010', '-1') },
  { weight: 2, arbitrary: anyJson },
);

/**
 * A body that would be accepted (the fixture's values, the schema's examples)
 * with one field made hostile: how a request reaches the code behind validation
 * with one bad value, which wholly random bodies rarely do.
 */
function mutatedBody(api: OpenApi, raw: Schema): fc.Arbitrary<Record<string, unknown>> | undefined {
  const s = resolve(api, raw);
  const names = Object.keys(s.properties ?? {});
  if (names.length === 0) return undefined;
  const base: Record<string, unknown> = {};
  for (const name of names) {
    const p = resolve(api, s.properties![name]!);
    const value = known[name] ?? p.example ?? (p.enum ? p.enum[0] : undefined);
    if (value !== undefined) base[name] = value;
  }
  return fc.tuple(fc.constantFrom(...names), hostile).map(([name, value]) => ({ ...base, [name]: value }));
}

/** Lines of a CSV body: a header-like line, then cells of every kind. */
const csvBody = fc
  .array(fc.array(fc.oneof(nastyString, fc.constantFrom('33', '0142000000', '5550001', 'fixed', 'true', '60', '0.02', '"', '""', '"a,b"')), { minLength: 1, maxLength: 12 }), { maxLength: 5 })
  .chain((rows) =>
    fc.constantFrom(',', ';', '\t').chain((sep) =>
      fc.constantFrom(
        TARIFF_CSV.split('\n')[0]!,
        'call_id,identifiant,caller,callee,direction,started_at,answered_at,duration_seconds,disposition,site,line',
        'nom,matricule,identifiant',
        '',
      ).map((header) => [header, ...rows.map((r) => r.join(sep))].join('\n')),
    ),
  );

const ndjsonBody = fc.array(fc.oneof(anyJson.map((v) => JSON.stringify(v)), nastyString), { maxLength: 4 }).map((lines) => lines.join('\n'));

/** A URL cannot carry a lone surrogate: it goes as U+FFFD. */
const wellFormed = (s: string) => s.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');

interface Target {
  method: string;
  path: string;
  op: Operation;
}

interface Request {
  path: string;
  body?: string;
  json?: unknown;
  contentType?: string;
}

function requestFor(api: OpenApi, target: Target, fixture: Record<string, string>): fc.Arbitrary<Request> {
  const params = target.op.parameters ?? [];
  const pathParams = params.filter((p) => p.in === 'path');
  const queryParams = params.filter((p) => p.in === 'query');
  const pathValues: Record<string, fc.Arbitrary<string>> = {};
  for (const p of pathParams) {
    // a real id of the fixture sometimes, so the handler behind the lookup runs too
    const real = fixture[p.name];
    pathValues[p.name] = real ? fc.oneof(fc.constant(real), nastyString) : nastyString;
  }
  const queryValues: Record<string, fc.Arbitrary<string>> = {};
  for (const p of queryParams) queryValues[p.name] = valueFor(api, p.schema).map((v) => (typeof v === 'string' ? v : JSON.stringify(v) ?? ''));
  // an unknown query parameter, now and then
  const extraQuery = fc.oneof({ weight: 3, arbitrary: fc.constant({}) }, { weight: 1, arbitrary: fc.dictionary(nastyString, nastyString, { minKeys: 1, maxKeys: 1 }) });
  const content = target.op.requestBody?.content ?? {};
  const bodies: fc.Arbitrary<Pick<Request, 'body' | 'json' | 'contentType'>>[] = [fc.constant({})];
  for (const [type, { schema }] of Object.entries(content)) {
    if (type === 'application/json') {
      const mutated = mutatedBody(api, schema);
      if (mutated) bodies.push(mutated.map((json) => ({ json, contentType: type })), mutated.map((json) => ({ json, contentType: type })));
      bodies.push(valueFor(api, schema).map((json) => ({ json, contentType: type })));
      bodies.push(anyJson.map((json) => ({ json, contentType: type })));
      bodies.push(fc.constantFrom('{', '{"a":', '[1,', '\u0000', '').map((body) => ({ body, contentType: type })));
    } else if (type === 'text/csv') {
      bodies.push(csvBody.map((body) => ({ body, contentType: type })));
    } else {
      bodies.push(ndjsonBody.map((body) => ({ body, contentType: type })));
    }
  }
  return fc
    .tuple(fc.record(pathValues), fc.record(queryValues, { requiredKeys: [] }), extraQuery, fc.oneof(...bodies))
    .map(([pv, qv, extra, body]) => {
      let path = target.path;
      for (const [name, v] of Object.entries(pv)) path = path.replace(`{${name}}`, encodeURIComponent(wellFormed(v)));
      const query = new URLSearchParams();
      for (const [k, v] of Object.entries({ ...qv, ...extra })) query.append(k, wellFormed(v ?? ''));
      const qs = query.toString();
      return { path: qs ? `${path}?${qs}` : path, ...body };
    });
}

/** What a refused request must not change: the fuzzed tenant's and reseller's rows. */
async function fingerprint(tenantId: string, resellerId: string): Promise<string> {
  const { sql } = testDb();
  const [row] = await sql<{ f: string }[]>`
    SELECT concat_ws('|',
      (SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM tenants t WHERE t.reseller_id = ${resellerId}),
      (SELECT md5(coalesce(string_agg(u::text, ',' ORDER BY u.id), '')) FROM users u WHERE u.tenant_id = ${tenantId}),
      (SELECT count(*) FROM ledger_entries WHERE tenant_id = ${tenantId}),
      (SELECT count(*) FROM cdrs WHERE tenant_id = ${tenantId}),
      (SELECT count(*) FROM rejected_cdrs WHERE tenant_id = ${tenantId}),
      (SELECT count(*) FROM reservations WHERE tenant_id = ${tenantId}),
      (SELECT md5(coalesce(string_agg(k.id || coalesce(k.revoked_at::text, ''), ',' ORDER BY k.id), '')) FROM api_keys k WHERE k.tenant_id = ${tenantId} OR k.reseller_id = ${resellerId}),
      (SELECT count(*) FROM roles WHERE tenant_id = ${tenantId}),
      (SELECT count(*) FROM import_snapshots WHERE tenant_id = ${tenantId}),
      (SELECT count(*) FROM invoices WHERE tenant_id = ${tenantId}),
      (SELECT md5(coalesce(string_agg(r.id::text || r.price_per_minute::text, ',' ORDER BY r.id), '')) FROM rates r WHERE r.reseller_id = ${resellerId})
    ) AS f`;
  return row!.f;
}

function expectEnvelope(res: Answer, what: string): void {
  expect(res.status, `${what} → ${res.status} ${res.text.slice(0, 300)}`).toBeLessThan(500);
  if (res.status >= 400) {
    expect(res.json?.error, `${what} → ${res.status} without the envelope: ${res.text.slice(0, 300)}`).toMatchObject({
      code: expect.any(String),
      message: expect.any(String),
      requestId: expect.any(String),
    });
  }
}

describe('fuzzing every route of /openapi.json (issue #24)', () => {
  let api: OpenApi;
  let reseller: { key: string; resellerId: string };
  let tenant: { id: string; adminKey: string };
  const fixture: Record<string, string> = {};

  beforeAll(async () => {
    api = (await call(app, 'GET', '/openapi.json')).json as OpenApi;
    reseller = await resellerKey({ newReseller: true });
    const tariffId = uniqueName('fuzz');
    const put = await call(app, 'PUT', `/v1/tariffs/${tariffId}`, { key: reseller.key, body: TARIFF_CSV, headers: { 'content-type': 'text/csv' } });
    expect(put.status, put.text).toBe(200);
    const made = await call(app, 'POST', '/v1/tenants', { key: reseller.key, json: { name: uniqueName('fuzz'), productType: 'essentiel', tariffId } });
    expect(made.status, made.text).toBe(201);
    tenant = { id: made.json.tenant.id, adminKey: made.json.adminKey };
    const user = await newUser(tenant.id, { balance: '1000', numbers: { 1: '+33142000000' } }, app);
    Object.assign(fixture, { id: user.id });
    Object.assign(known, { identifiant: user.identifiant, callee: '0142000000' });
  });

  it('never answers 5xx, always with the envelope, and a refused request writes nothing', { timeout: 300_000 }, async () => {
    const targets: Target[] = [];
    for (const [path, ops] of Object.entries(api.paths)) {
      for (const [method, op] of Object.entries(ops)) targets.push({ method: method.toUpperCase(), path, op });
    }
    expect(targets.length).toBeGreaterThan(30);
    // the PBX routes first, while the fixture's user can still call; what may remove or change it last
    const order = (t: Target) => (t.path.startsWith('/v1/authorize') || t.path.startsWith('/v1/calls') ? 0 : t.method === 'DELETE' ? 3 : t.method === 'PATCH' ? 2 : 1);
    targets.sort((a, b) => order(a) - order(b));
    const failures: string[] = [];
    for (const [i, target] of targets.entries()) {
      const access = target.op['x-forfait-access']?.scope ?? 'public';
      const key = access === 'reseller' ? reseller.key : access === 'tenant' ? tenant.adminKey : undefined;
      const ids: Record<string, string> = { ...fixture, id: target.path.startsWith('/v1/tenants') ? tenant.id : (fixture.id ?? '') };
      await fc.assert(
        fc.asyncProperty(requestFor(api, target, ids), async (req) => {
          const before = await fingerprint(tenant.id, reseller.resellerId);
          const headers: Record<string, string> = req.contentType ? { 'content-type': req.contentType } : {};
          // sent with its Content-Length, as real clients do (the PBX hot path needs it)
          const body = req.json !== undefined ? JSON.stringify(req.json) : req.body;
          if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
          const res = await call(app, target.method, req.path, { key, headers, ...(body !== undefined ? { body } : {}) });
          const what = `${target.method} ${req.path} ${JSON.stringify(req.json ?? req.body ?? '').slice(0, 200)}`;
          expectEnvelope(res, what);
          if (res.status >= 400) {
            const after = await fingerprint(tenant.id, reseller.resellerId);
            expect(after, `${what} was refused (${res.status}) yet wrote`).toBe(before);
          }
        }),
        { seed: SEED + i, numRuns: RUNS_PER_ROUTE, endOnFailure: true, verbose: 0 },
      ).catch((err: unknown) => {
        failures.push(err instanceof Error ? err.message.split('\n').slice(0, 12).join('\n') : String(err));
      });
    }
    expect(failures, failures.join('\n\n')).toEqual([]);
    // every route 100 times: ~50 s alone, more on a loaded machine (the portal's people routes hash passwords)
  });
});
