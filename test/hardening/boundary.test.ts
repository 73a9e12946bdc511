/**
 * Issue #24 reproductions: inputs that reached PostgreSQL and came back as a
 * 500 (NUL bytes, years outside 0001–9999, a negative fee), amounts accepted in
 * forms that are not the documented decimal string, and a revocation beyond
 * the revoker's permissions. Each is a 4xx with the envelope now, and a CDR
 * batch with one bad record rejects that record only.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { errorStatus, toApiError } from '../../api/errors.js';
import { call, testApp, testDb, type Answer } from '../support/app.js';
import { keyWithRoles, uniqueName } from '../support/factory.js';
import { cdr, cdrCount, cdrTenant, cdrUser } from '../cdrs/helpers.js';

const app = testApp();
const NUL = '\u0000';

let t: Awaited<ReturnType<typeof cdrTenant>>;
let user: { id: string; identifiant: string };

beforeAll(async () => {
  t = await cdrTenant(app);
  user = await cdrUser(t.id, { balance: '100' }, app);
});

function expectRefused(res: Answer, status: number, field?: string | RegExp): void {
  expect(res.status, res.text).toBe(status);
  expect(res.json?.error).toMatchObject({ code: expect.any(String), message: expect.any(String), requestId: expect.any(String) });
  if (field !== undefined) {
    const fields: string[] = (res.json.error.details ?? []).map((d: { field?: string }) => d.field ?? '');
    expect(fields.some((f) => (typeof field === 'string' ? f === field : field.test(f))), JSON.stringify(res.json.error.details)).toBe(true);
  }
}

const ids = () => {
  const n = String(Math.floor(Math.random() * 1e7)).padStart(7, '0');
  return { matricule: `7${n}${n.slice(0, 6)}`, identifiant: n };
};

describe('NUL bytes are a 400 naming the field (issue #24.2)', () => {
  it('in JSON bodies: user generalState, ledger idempotencyKey, key, role and tenant names', async () => {
    expectRefused(await call(app, 'POST', '/v1/users', { key: t.adminKey, json: { fullName: 'Ann', ...ids(), generalState: `pr${NUL}ésent` } }), 400, 'generalState');
    expectRefused(await call(app, 'POST', `/v1/users/${user.id}/ledger`, { key: t.adminKey, json: { kind: 'topup', amount: '1', idempotencyKey: `k${NUL}` } }), 400, 'idempotencyKey');
    expectRefused(await call(app, 'POST', '/v1/keys', { key: t.adminKey, json: { name: `key${NUL}`, roles: ['acheteur'] } }), 400, 'name');
    expectRefused(await call(app, 'POST', '/v1/roles', { key: t.adminKey, json: { name: `role${NUL}`, inherits: 'acheteur' } }), 400, 'name');
    expectRefused(await call(app, 'POST', '/v1/tenants', { key: t.resellerKey, json: { name: `tenant${NUL}`, productType: 'essentiel' } }), 400, 'name');
    expectRefused(await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { name: `tenant${NUL}` } }), 400, 'name');
  });

  it('in query parameters and path ids', async () => {
    expectRefused(await call(app, 'GET', '/v1/users?q=%00', { key: t.adminKey }), 400, 'q');
    expectRefused(await call(app, 'GET', '/v1/users?cursor=%00', { key: t.adminKey }), 400, 'cursor');
    expectRefused(await call(app, 'GET', '/v1/cdrs?site=%00', { key: t.adminKey }), 400, 'site');
    expectRefused(await call(app, 'GET', '/v1/cdrs?line=a%00', { key: t.adminKey }), 400, 'line');
    expectRefused(await call(app, 'GET', '/v1/cdrs/export.csv?site=%00', { key: t.adminKey }), 400, 'site');
    expectRefused(await call(app, 'GET', '/v1/users/%00', { key: t.adminKey }), 400, 'id');
    expectRefused(await call(app, 'GET', '/v1/tenants/a%00', { key: t.resellerKey }), 400, 'id');
    expectRefused(await call(app, 'GET', '/v1/tariffs/a%00', { key: t.resellerKey }), 400, 'id');
  });

  it('a tariff CSV line with a NUL byte is a line error', async () => {
    const csv = 'prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible\n33,Fr\u0000ance,fixed,0.02,0,60,60,true\n';
    const res = await call(app, 'PUT', `/v1/tariffs/${uniqueName('nul')}`, { key: t.resellerKey, body: csv, headers: { 'content-type': 'text/csv' } });
    expectRefused(res, 400, 'destination');
    expect(res.json.error.details[0].line).toBe(2);
  });
});

describe('a CDR with a NUL byte is rejected alone, the rest of its batch is rated (issue #24.2)', () => {
  const bad = (n: number, field: 'callId' | 'identifiant' | 'caller') => {
    const c = cdr(`nul-${n}-${uniqueName()}`, user.identifiant, '0142000000', 30);
    return { ...c, [field]: `${c[field]}${NUL}` };
  };

  it('JSON array and NDJSON, in callId, identifiant and caller', async () => {
    const { sql } = testDb();
    for (const field of ['callId', 'identifiant', 'caller'] as const) {
      const before = await cdrCount(t.id);
      const good = cdr(`ok-${uniqueName()}`, user.identifiant, '0142000000', 30);
      const res = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [good, bad(1, field)] });
      expect(res.status, res.text).toBe(200);
      expect(res.json.accepted).toBe(1);
      expect(res.json.rejected).toEqual([expect.objectContaining({ index: 1, reason: 'MALFORMED', field })]);

      const good2 = cdr(`ok-${uniqueName()}`, user.identifiant, '0142000000', 30);
      const nd = [JSON.stringify(bad(2, field)), JSON.stringify(good2)].join('\n');
      const res2 = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, body: nd, headers: { 'content-type': 'application/x-ndjson' } });
      expect(res2.status, res2.text).toBe(200);
      expect(res2.json.accepted).toBe(1);
      expect(res2.json.rejected).toEqual([expect.objectContaining({ index: 0, reason: 'MALFORMED', field })]);
      expect(await cdrCount(t.id)).toBe(before + 2);
    }
    const stored = await sql<{ n: string }[]>`SELECT count(*)::text AS n FROM rejected_cdrs WHERE tenant_id = ${t.id} AND reason = 'MALFORMED'`;
    expect(Number(stored[0]!.n)).toBeGreaterThanOrEqual(6);
  });

  const csvCases: [string, (id: string) => string][] = [
    ['native', (id) => `call_id,identifiant,caller,callee,direction,started_at,answered_at,duration_seconds,disposition,site,line\n${id}-ok,${user.identifiant},+33142000000,0142000000,out,2026-11-03T10:15:00+01:00,,30,answered,Paris,L1\n${id}-bad,${user.identifiant},+3314${NUL}2000000,0142000000,out,2026-11-03T10:16:00+01:00,,30,answered,Paris,L1\n`],
    ['asterisk', (id) => [`"${user.identifiant}","1001","0142000000","from-internal","""A"" <1001>","SIP/1","SIP/2","Dial","x","2026-11-03 10:15:00","2026-11-03 10:15:04","2026-11-03 10:16:33",93,85,"ANSWERED","DOCUMENTATION","${id}.1",""`, `"${user.identifiant}","1001","0142000000","from-internal","""A${NUL}"" <1001>","SIP/1","SIP/2","Dial","x","2026-11-03 10:17:00","2026-11-03 10:17:04","2026-11-03 10:18:33",93,85,"ANSWERED","DOCUMENTATION","${id}.2",""`].join('\n') + '\n'],
    ['freeswitch', (id) => [`"A","1001","0142000000","default","2026-11-03 10:15:00","2026-11-03 10:15:04","2026-11-03 10:16:33","93","85","NORMAL_CLEARING","${id}-1","","${user.identifiant}","PCMA","PCMA"`, `"A","10${NUL}01","0142000000","default","2026-11-03 10:17:00","2026-11-03 10:17:04","2026-11-03 10:18:33","93","85","NORMAL_CLEARING","${id}-2","","${user.identifiant}","PCMA","PCMA"`].join('\n') + '\n'],
  ];
  for (const [format, csv] of csvCases) {
    it(`CSV ${format}: the line is rejected, naming its line`, async () => {
      const body = csv(uniqueName('c'));
      const res = await call(app, 'POST', `/v1/cdrs/import?format=${format}`, { key: t.adminKey, body, headers: { 'content-type': 'text/csv' } });
      expect(res.status, res.text).toBe(200);
      expect(res.json.accepted).toBe(1);
      const line = format === 'native' ? 3 : 2;
      expect(res.json.rejected).toEqual([expect.objectContaining({ line, reason: 'MALFORMED' })]);
    });
  }
});

describe('years outside 0001–9999 are a 400, or a MALFORMED CDR (issue #24.2)', () => {
  const years = ['0000-01-01', '0000-06-01T00:00:00Z', '10000-01-01', '+010000-01-01T00:00:00Z', '-000001-01-01T00:00:00Z'];
  it('from/to of /v1/cdrs, its export and calls.csv', async () => {
    for (const y of years) {
      const q = encodeURIComponent(y);
      expectRefused(await call(app, 'GET', `/v1/cdrs?from=${q}`, { key: t.adminKey }), 400, 'from');
      expectRefused(await call(app, 'GET', `/v1/cdrs?to=${q}`, { key: t.adminKey }), 400, 'to');
      expectRefused(await call(app, 'GET', `/v1/cdrs/export.csv?from=${q}`, { key: t.adminKey }), 400, 'from');
      expectRefused(await call(app, 'GET', `/v1/users/${user.id}/calls.csv?to=${q}`, { key: t.adminKey }), 400, 'to');
    }
    const cursor = Buffer.from('+275760-01-01T00:00:00.000Z|1').toString('base64url');
    expectRefused(await call(app, 'GET', `/v1/cdrs?cursor=${cursor}`, { key: t.adminKey }), 400, 'cursor');
  });

  it('a CDR started_at in year 0 is MALFORMED; its batch is rated', async () => {
    const good = cdr(`ok-${uniqueName()}`, user.identifiant, '0142000000', 30);
    const res = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [good, cdr(`y0-${uniqueName()}`, user.identifiant, '0142000000', 30, '0000-01-01T00:00:00Z')] });
    expect(res.status, res.text).toBe(200);
    expect(res.json.accepted).toBe(1);
    expect(res.json.rejected).toEqual([expect.objectContaining({ index: 1, reason: 'MALFORMED', field: 'startedAt' })]);
  });
});

describe('amounts are decimal strings of the documented form (issue #24.5)', () => {
  it('a negative monthlyFeePerUser is a 400', async () => {
    const res = await call(app, 'POST', '/v1/product-types', { key: t.resellerKey, json: { code: uniqueName('p').toLowerCase(), name: 'P', maxUsers: 10, monthlyFeePerUser: '-1' } });
    expectRefused(res, 400, 'monthlyFeePerUser');
  });

  it('a JSON number, spaces or leading zeros are a 400; nothing is written', async () => {
    for (const [i, amount] of [1.5, ' 10 ', '00010', '1e3', '+1', '1.', '.5', '1.00001'].entries()) {
      const res = await call(app, 'POST', `/v1/users/${user.id}/ledger`, { key: t.adminKey, json: { kind: 'topup', amount, idempotencyKey: `form-${i}` } });
      expectRefused(res, 400, 'amount');
    }
    const ok = await call(app, 'POST', `/v1/users/${user.id}/ledger`, { key: t.adminKey, json: { kind: 'topup', amount: '10.5', idempotencyKey: 'form-ok' } });
    expect(ok.status, ok.text).toBe(201);
    const { db } = testDb();
    const keys = await db.selectFrom('ledgerEntries').select('idempotencyKey').where('userId', '=', user.id).where('idempotencyKey', 'like', 'form-%').execute();
    expect(keys.map((k) => k.idempotencyKey)).toEqual(['form-ok']);
  });
});

describe('revocation is checked like creation (issue #24.5)', () => {
  it('a key with access:manage cannot revoke a key holding more than it; it can revoke a lesser one', async () => {
    const role = uniqueName('keeper');
    const made = await call(app, 'POST', '/v1/roles', { key: t.adminKey, json: { name: role, inherits: 'acheteur', add: ['access:manage'] } });
    expect(made.status, made.text).toBe(201);
    const keeper = await keyWithRoles(app, t, [role]);
    const admin = await keyWithRoles(app, t, ['administrateur']);
    const lesser = await keyWithRoles(app, t, ['acheteur']);
    expectRefused(await call(app, 'DELETE', `/v1/keys/${admin.id}`, { key: keeper.key }), 403);
    expect((await call(app, 'GET', '/v1/users', { key: admin.key })).status).toBe(200);
    expect((await call(app, 'DELETE', `/v1/keys/${lesser.id}`, { key: keeper.key })).status).toBe(200);
    expect((await call(app, 'GET', `/v1/tariffs/${t.tariffId}`, { key: lesser.key })).status).toBe(401);
    expect((await call(app, 'DELETE', `/v1/keys/${admin.id}`, { key: t.adminKey })).status).toBe(200);
  });
});

describe('PostgreSQL errors the boundary missed are 4xx, never a 500 (issue #24.2)', () => {
  /** The error a real statement raises, as the handler would receive it. */
  async function pgError(statement: () => Promise<unknown>): Promise<unknown> {
    try {
      await statement();
    } catch (err) {
      return err;
    }
    throw new Error('the statement did not fail');
  }

  it('data exceptions and check/not-null violations are 400, unique and foreign-key violations 409, without internals', async () => {
    const { sql } = testDb();
    const cases: [string, () => Promise<unknown>, number][] = [
      ['22021 NUL in text', () => sql`SELECT ${'a\u0000b'}::text`, 400],
      ['22008 year 0', () => sql`SELECT '0000-01-01T00:00:00Z'::timestamptz`, 400],
      ['22P02 not a uuid', () => sql`SELECT 'x'::uuid`, 400],
      ['22003 out of range', () => sql`SELECT 99999999999::int`, 400],
      ['23514 check', () => sql`INSERT INTO product_types (code, name, max_users, monthly_fee_per_user) VALUES (${uniqueName('x')}, 'x', 1, -1)`, 400],
      ['23502 not null', () => sql`INSERT INTO product_types (code, name, max_users, monthly_fee_per_user) VALUES (${uniqueName('x')}, NULL, 1, 1)`, 400],
      ['23505 unique', () => sql`INSERT INTO product_types (code, name, max_users, monthly_fee_per_user) VALUES ('essentiel', 'x', 1, 1)`, 409],
      ['23503 foreign key', () => sql`INSERT INTO roles (tenant_id, name, inherits) VALUES (${'00000000-0000-0000-0000-000000000000'}, 'x', 'acheteur')`, 409],
    ];
    for (const [what, statement, status] of cases) {
      const mapped = toApiError(await pgError(statement));
      expect(errorStatus[mapped.code], what).toBe(status);
      expect(mapped.message, what).not.toMatch(/product_types|roles|constraint|INSERT|SELECT/i);
    }
  });
});
