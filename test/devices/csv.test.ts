import { parseString } from 'fast-csv';
import { describe, expect, it } from 'vitest';
import { call, testDb } from '../support/app.js';
import { clockedApp, csvPost, deviceTenant, freshMac, TestClock } from './helpers.js';

const clock = new TestClock();
const app = clockedApp(clock);

function rows(text: string): Promise<string[][]> {
  return new Promise((resolve, reject) => {
    const out: string[][] = [];
    parseString(text, { ignoreEmpty: true })
      .on('data', (r: string[]) => out.push(r))
      .on('error', reject)
      .on('end', () => resolve(out));
  });
}

async function snapshot(tenantId: string) {
  const { db } = testDb();
  const devices = await db.selectFrom('devices').selectAll().where('tenantId', '=', tenantId).orderBy('mac').execute();
  const lines = await db.selectFrom('deviceLines').selectAll().where('tenantId', '=', tenantId).orderBy('deviceId').orderBy('port').execute();
  return { devices, lines };
}

describe('devices CSV (issue 21 point 3)', () => {
  it('the template has the header and, as comments, the sites with the types each approves; it imports as nothing', async () => {
    const t = await deviceTenant(app);
    const res = await call(app, 'GET', '/v1/devices/template.csv', { key: t.adminKey });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/csv');
    const lines = res.text.split('\r\n');
    expect(lines[0]).toBe('mac,device_type,lines_available,site,lines,dect_station_id,notes');
    expect(lines).toContain(`# Paris,${t.desk},Yealink,${t.desk.toUpperCase()},2,no`);
    expect(lines).toContain(`# Paris,${t.dect},Yealink,${t.dect.toUpperCase()},4,yes`);
    expect(lines).toContain(`# Lyon,${t.single},Yealink,${t.single.toUpperCase()},1,no`);
    expect(lines.some((l) => l.startsWith(`# Lyon,${t.desk}`))).toBe(false);
    const imported = await csvPost(app, t.adminKey, '/v1/devices/import', res.text);
    expect(imported.status, imported.text).toBe(200);
    expect(imported.json).toMatchObject({ created: 0, updated: 0, unchanged: 0 });
  });

  it('validates every line first and lists every error; nothing is written', async () => {
    const t = await deviceTenant(app);
    const good = freshMac();
    const taken = freshMac();
    const other = await deviceTenant(app);
    expect((await call(app, 'POST', '/v1/devices', { key: other.adminKey, json: { mac: taken, deviceType: other.desk, site: 'Paris' } })).status).toBe(201);
    const [u0, u1] = t.users;
    const file = [
      'mac;device_type;site;lines;notes',
      `${good};${t.desk};Paris;1:${u0!.identifiant} 2:${u1!.identifiant};ok`, // line 2: fine
      `00:1a:2b;${t.desk};Paris;;`, // 3: MAC
      `${freshMac()};${t.single};Paris;;`, // 4: type not approved at Paris
      `${freshMac()};${t.desk};Marseille;;`, // 5: site unknown
      `${freshMac()};${t.desk};Paris;3:${u0!.identifiant};`, // 6: port beyond the type
      `${freshMac()};${t.desk};Paris;1:9999999;`, // 7: identifiant unknown
      `${good.toUpperCase()};${t.desk};Paris;;`, // 8: the same MAC as line 2
      `${taken};${t.desk};Paris;;`, // 9: another tenant's live device
      `${freshMac()};nope;Paris;1-${u0!.identifiant};`, // 10: unknown type and a malformed line
    ].join('\n');
    const before = await snapshot(t.id);
    for (const dryRun of [false, true]) {
      const r = await csvPost(app, t.adminKey, `/v1/devices/import?dryRun=${dryRun}`, file);
      expect(r.status, r.text).toBe(400);
      expect(r.json.error.message).toContain('9 errors');
      expect(r.json.error.details.map((d: { line: number; field: string }) => `${d.line} ${d.field}`)).toEqual([
        '3 mac',
        '4 deviceType',
        '5 site',
        '6 lines.3',
        '7 lines.1',
        '8 mac',
        '9 mac',
        '10 lines',
        '10 deviceType',
      ]);
      const byLine = new Map<number, string>(r.json.error.details.map((d: { line: number; message: string }) => [d.line, d.message]));
      expect(byLine.get(8)).toBe('the same device as line 2');
      expect(byLine.get(9)).toBe('already in use by another device');
    }
    expect(await snapshot(t.id)).toEqual(before);
  });

  it('refuses a file without the required columns, naming them', async () => {
    const t = await deviceTenant(app);
    const r = await csvPost(app, t.adminKey, '/v1/devices/import', 'mac,model\n00:15:65:00:00:01,T46U\n');
    expect(r.status).toBe(400);
    expect(r.json.error.details.map((d: { message: string }) => d.message)).toEqual(['unknown column "model"', 'missing column "device_type"', 'missing column "site"']);
  });

  it('dry run plans, import writes all, and export → import changes nothing', async () => {
    const t = await deviceTenant(app);
    const [a, b, c] = [freshMac(), freshMac(), freshMac()];
    const [u0, u1, u2] = t.users;
    const file = [
      '\uFEFFmac,device_type,site,lines,dect_station_id,notes',
      `${a.toUpperCase()},${t.desk},Paris,"1:${u0!.identifiant} 2:${u1!.identifiant}",,"Accueil, rez-de-chaussée"`,
      `${b.replaceAll(':', '')},${t.dect},Paris,4:${u2!.identifiant},MC-0042,=1+1`,
      `${c.replaceAll(':', '-')},${t.single},Lyon,,,`,
    ].join('\r\n');
    const dry = await csvPost(app, t.adminKey, '/v1/devices/import?dryRun=true', file);
    expect(dry.status, dry.text).toBe(200);
    expect(dry.json).toEqual({ importId: null, dryRun: true, created: 3, updated: 0, unchanged: 0, macs: { created: [a, b, c], updated: [], unchanged: [] } });
    expect((await snapshot(t.id)).devices).toEqual([]);

    const done = await csvPost(app, t.adminKey, '/v1/devices/import', file);
    expect(done.status, done.text).toBe(200);
    expect(done.json).toMatchObject({ dryRun: false, created: 3 });
    const after = await snapshot(t.id);
    expect(after.devices).toHaveLength(3);
    expect(after.lines).toHaveLength(3);

    const exported = await call(app, 'GET', '/v1/devices/export.csv', { key: t.adminKey });
    expect(exported.status).toBe(200);
    const table = await rows(exported.text);
    expect(table[0]).toEqual(['mac', 'device_type', 'lines_available', 'site', 'lines', 'dect_station_id', 'notes']);
    // sites in name order, then MACs
    const [lyon, ...paris] = table.slice(1);
    expect(lyon).toEqual([c, t.single, '1', 'Lyon', '', '', '']);
    expect(paris).toContainEqual([a, t.desk, '0', 'Paris', `1:${u0!.identifiant} 2:${u1!.identifiant}`, '', 'Accueil, rez-de-chaussée']);
    expect(paris).toContainEqual([b, t.dect, '3', 'Paris', `4:${u2!.identifiant}`, 'MC-0042', "'=1+1"]);

    clock.advance(3600_000);
    const again = await csvPost(app, t.adminKey, '/v1/devices/import', exported.text);
    expect(again.status, again.text).toBe(200);
    expect(again.json).toMatchObject({ created: 0, updated: 0, unchanged: 3 });
    expect(await snapshot(t.id)).toEqual(after);

    // a changed line updates that device only
    const changed = exported.text.replace(`4:${u2!.identifiant}`, `3:${u2!.identifiant}`);
    const upd = await csvPost(app, t.adminKey, '/v1/devices/import', changed);
    expect(upd.json).toMatchObject({ created: 0, updated: 1, unchanged: 2, macs: { updated: [b] } });
  });

  it('imports 1,500 devices (more than one statement’s worth) and reads its export back unchanged', async () => {
    const t = await deviceTenant(app);
    const macs = Array.from({ length: 1500 }, () => freshMac());
    const file = ['mac,device_type,site,lines', ...macs.map((m, i) => `${m},${t.desk},Paris,1:${t.users[i % 4]!.identifiant}`)].join('\n');
    const r = await csvPost(app, t.adminKey, '/v1/devices/import', file);
    expect(r.status, r.text.slice(0, 500)).toBe(200);
    expect(r.json.created).toBe(1500);
    const after = await snapshot(t.id);
    expect(after.devices).toHaveLength(1500);
    expect(after.lines).toHaveLength(1500);
    const exported = await call(app, 'GET', '/v1/devices/export.csv', { key: t.adminKey });
    const again = await csvPost(app, t.adminKey, '/v1/devices/import', exported.text);
    expect(again.json).toMatchObject({ created: 0, updated: 0, unchanged: 1500 });
    expect(await snapshot(t.id)).toEqual(after);
  });
});
