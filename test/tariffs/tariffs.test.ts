import { describe, expect, it } from 'vitest';
import { call, testApp, testDb } from '../support/app.js';
import { keyWithRoles, newTenant, resellerKey, uniqueName } from '../support/factory.js';

const app = testApp();
const header = 'prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible,next_price_per_minute,valid_from';
const csv = [
  header,
  '33,France fixe,fixed,0.02,0,60,60,true,,',
  '336,France mobile,mobile,0.20,0.4,60,1,true,0.10,',
  '336,France mobile,mobile,0.25,0.4,60,1,true,0.12,2027-01-01T00:00:00Z',
  '1,USA,international,0.05,0,30,6,false,,',
].join('\r\n');

const put = (key: string, id: string, body: string) => call(app, 'PUT', `/v1/tariffs/${id}`, { key, body, headers: { 'content-type': 'text/csv' } });

describe('tariffs', () => {
  it('uploads a tariff CSV and reads it back, as the reseller and as its tenants', async () => {
    const { key } = await resellerKey();
    const id = uniqueName('standard');
    const res = await put(key, id, csv);
    expect(res.status).toBe(200);
    expect(res.json.id).toBe(id);
    expect(res.json.rates).toHaveLength(4);
    const mobile = res.json.rates.filter((r: { prefix: string }) => r.prefix === '336');
    expect(mobile[0]).toMatchObject({
      destination: 'France mobile',
      class: 'mobile',
      pricePerMinute: '0.2000',
      nextPricePerMinute: '0.1000',
      connectionFee: '0.4000',
      firstIncrement: 60,
      nextIncrement: 1,
      forfaitEligible: true,
      validFrom: '1970-01-01T00:00:00.000Z',
    });
    expect(mobile[1].validFrom).toBe('2027-01-01T00:00:00.000Z');
    const fixed = res.json.rates.find((r: { prefix: string }) => r.prefix === '33');
    expect(fixed.nextPricePerMinute).toBe(fixed.pricePerMinute);

    const read = await call(app, 'GET', `/v1/tariffs/${id}`, { key });
    expect(read.status).toBe(200);
    // the upload's answer adds how the file was read
    const { encoding, notes, ...uploaded } = res.json;
    expect({ encoding, notes }).toEqual({ encoding: 'utf-8', notes: [] });
    expect(read.json).toEqual(uploaded);

    // a tenant rated with it reads it with prices:read; another tenant does not see it
    const t = await newTenant(app, { tariffId: id });
    expect(t.tenant.tariffId).toBe(id);
    const acheteur = await keyWithRoles(app, t, ['acheteur']);
    expect((await call(app, 'GET', `/v1/tariffs/${id}`, { key: acheteur.key })).json.rates).toHaveLength(4);
    const other = await newTenant(app);
    expect((await call(app, 'GET', `/v1/tariffs/${id}`, { key: other.adminKey })).status).toBe(404);
    const technicien = await keyWithRoles(app, t, ['technicien']);
    expect((await call(app, 'GET', `/v1/tariffs/${id}`, { key: technicien.key })).status).toBe(403);
  });

  it('replaces the rates on a second upload and refreshes the compiled index', async () => {
    const { key } = await resellerKey();
    const id = uniqueName('t');
    expect((await put(key, id, csv)).status).toBe(200);
    const before = await app.tariffs.get(id);
    expect(before.lookup('33612345678', Date.parse('2026-06-01T00:00:00Z'))?.rate.pricePerMinute).toBe('0.2000');
    const res = await put(key, id, `${header}\n33,France,fixed,0.01,0,1,1,true,,\n`);
    expect(res.status).toBe(200);
    expect(res.json.rates).toHaveLength(1);
    const after = await app.tariffs.get(id);
    expect(after.lookup('33612345678', Date.parse('2026-06-01T00:00:00Z'))?.rate).toMatchObject({ prefix: '33', pricePerMinute: '0.0100' });
  });

  it('answers 400 naming every line and field at fault, and keeps the old rates', async () => {
    const { key } = await resellerKey();
    const id = uniqueName('t');
    expect((await put(key, id, csv)).status).toBe(200);
    const bad = [
      header,
      '33a,Bad prefix,fixed,0.02,0,60,60,true,,',
      '34,Negative,fixed,-0.02,0,60,60,true,,',
      '35,Zero increment,fixed,0.02,0,0,60,true,,',
      '36,Class,premium,0.02,0,60,60,true,,',
      '37,Dup,fixed,0.02,0,60,60,true,,',
      '37,Dup,fixed,0.03,0,60,60,true,,',
      '38,Date,fixed,0.02,0,60,60,true,,yesterday',
    ].join('\n');
    const res = await put(key, id, bad);
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('VALIDATION_FAILED');
    const byLine = res.json.error.details.map((d: { line: number; field: string }) => `${d.line}:${d.field}`);
    expect(byLine).toEqual(
      expect.arrayContaining(['2:prefix', '3:price_per_minute', '4:first_increment', '5:class', '7:prefix', '8:valid_from']),
    );
    for (const d of res.json.error.details) expect(d.message).toBeTruthy();
    const still = await call(app, 'GET', `/v1/tariffs/${id}`, { key });
    expect(still.json.rates).toHaveLength(4);
  });

  it('keeps tariff ids apart between resellers and checks a tenant’s tariffId', async () => {
    const mine = await resellerKey();
    const other = await resellerKey({ newReseller: true });
    const id = uniqueName('t');
    expect((await put(mine.key, id, csv)).status).toBe(200);
    expect((await put(other.key, id, csv)).status).toBe(404);
    expect((await call(app, 'GET', `/v1/tariffs/${id}`, { key: other.key })).status).toBe(404);
    const t = await newTenant(app);
    const unknown = await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { tariffId: 'no-such-tariff' } });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.details[0]).toMatchObject({ field: 'tariffId', value: 'no-such-tariff' });
    const ok = await call(app, 'PATCH', `/v1/tenants/${t.id}`, { key: t.resellerKey, json: { tariffId: id } });
    expect(ok.status).toBe(200);
    expect(ok.json.tariffId).toBe(id);
  });

  it('uploads a 50,000-rate tariff set-based', async () => {
    const { key } = await resellerKey();
    const id = uniqueName('big');
    const lines = [header];
    for (let i = 0; i < 50_000; i++) lines.push(`${4_000_000 + i},Dest ${i},international,0.${String(i % 1000).padStart(3, '0')},0,60,60,false,,`);
    const started = performance.now();
    const res = await put(key, id, lines.join('\n'));
    const ms = performance.now() - started;
    expect(res.status).toBe(200);
    expect(res.json.rates).toHaveLength(50_000);
    const { db } = testDb();
    const count = await db.selectFrom('rates').select((eb) => eb.fn.countAll<string>().as('n')).where('tariffId', '=', id).executeTakeFirstOrThrow();
    expect(Number(count.n)).toBe(50_000);
    console.log(`50,000-rate tariff uploaded in ${ms.toFixed(0)} ms`);
  });
});
