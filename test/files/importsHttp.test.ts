import { readFile } from 'node:fs/promises';
import path from 'node:path';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { call, testApp } from '../support/app.js';
import { newTenant, resellerKey } from '../support/factory.js';
import { newUser } from '../support/accounts.js';

const app = testApp();
const fixture = (name: string) => readFile(path.join(import.meta.dirname, '../fixtures/files', name));

async function excelTariff() {
  const r = await resellerKey();
  const id = `excel-${Date.now()}-${Math.floor(Math.random() * 1e9)}`;
  const res = await call(app, 'PUT', `/v1/tariffs/${id}`, { key: r.key, body: await fixture('tariff-excel.csv'), headers: { 'content-type': 'text/csv' } });
  return { res, id };
}

describe('every CSV import reads spreadsheet files (issue 18)', () => {
  it('a tariff saved by French Excel (BOM, ";", decimal commas, its header) is stored, and the answer says what was done', async () => {
    const { res } = await excelTariff();
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ encoding: 'utf-8', notes: [expect.stringContaining('byte order mark')] });
    const byPrefix = Object.fromEntries((res.json.rates as { prefix: string; destination: string; pricePerMinute: string }[]).map((r) => [r.prefix, r]));
    expect(byPrefix['262']).toMatchObject({ destination: 'Réunion', pricePerMinute: '0.6000' });
    expect(byPrefix['336']).toMatchObject({ destination: 'France mobile', pricePerMinute: '0.2000' });
  });

  it('a tariff in Windows-1252 is converted; one holding U+FFFD is refused at its line', async () => {
    const r = await resellerKey();
    const text = (await fixture('tariff-excel.csv')).toString('utf8').slice(1);
    const latin = await call(app, 'PUT', '/v1/tariffs/latin-1-tariff', { key: r.key, body: iconv.encode(text, 'windows-1252'), headers: { 'content-type': 'text/csv' } });
    expect(latin.status, latin.text).toBe(200);
    expect(latin.json.encoding).toBe('windows-1252');
    expect(latin.json.rates.find((x: { prefix: string }) => x.prefix === '262').destination).toBe('Réunion');
    const damaged = await call(app, 'PUT', '/v1/tariffs/latin-1-tariff', { key: r.key, body: Buffer.from(text.replace('Réunion', 'R\uFFFDunion'), 'utf8'), headers: { 'content-type': 'text/csv' } });
    expect(damaged.status).toBe(400);
    expect(damaged.json.error.details).toEqual([{ line: 4, field: 'encoding', message: expect.stringContaining('U+FFFD') }]);
  });

  it('a CDR file in Windows-1252 with a header line: the header is one reject that says so, the calls are rated, the answer names the conversion', async () => {
    const { res: tariff, id } = await excelTariff();
    expect(tariff.status).toBe(200);
    const t = await newTenant(app, { tariffId: id, country: 'FR', timezone: 'Europe/Paris' });
    await newUser(t.id, { balance: '10', identifiant: '5550001' });
    const master = (await fixture('Master-unallocated.csv')).toString('utf8').replace('""Alice Martin""', '""Hélène Côté""');
    const header = 'accountcode,src,dst,dcontext,clid,channel,dstchannel,lastapp,lastdata,start,answer,end,duration,billsec,disposition,amaflags,uniqueid,userfield\n';
    const res = await call(app, 'POST', '/v1/cdrs/import?format=asterisk', { key: t.adminKey, body: iconv.encode(header + master, 'windows-1252'), headers: { 'content-type': 'text/csv' } });
    expect(res.status, res.text).toBe(200);
    expect(res.json).toMatchObject({ accepted: 3, rejectedCount: 1, encoding: 'windows-1252', notes: [expect.stringContaining('Windows-1252')] });
    expect(res.json.rejected).toEqual([
      { line: 1, callId: null, reason: 'MALFORMED', field: 'header', message: expect.stringMatching(/^the file must have no header line: line 1 \("accountcode", "src", "dst", …\)/) },
    ]);
  });
});
