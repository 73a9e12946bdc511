import { describe, expect, it } from 'vitest';
import { call, testDb } from '../support/app.js';
import { freePort } from '../../db/embedded.js';
import { keyWithRoles } from '../support/factory.js';
import { silentServer } from '../support/server.js';
import { clockedApp, deviceTenant, freshMac, TestClock } from './helpers.js';

const clock = new TestClock();
const app = clockedApp(clock);

describe('device inventory (issue 21 point 1)', () => {
  it('adds a device from any MAC form, stores it normalised, and refuses the same MAC again in any form', async () => {
    const t = await deviceTenant(app);
    const mac = freshMac();
    const upper = mac.toUpperCase().replaceAll(':', '-');
    const r = await call(app, 'POST', '/v1/devices', {
      key: t.adminKey,
      json: { mac: upper, deviceType: t.desk, site: 'Paris', lines: [{ port: 2, identifiant: t.users[1]!.identifiant }, { port: 1, identifiant: t.users[0]!.identifiant }], notes: ' bureau 12 ' },
    });
    expect(r.status, r.text).toBe(201);
    expect(r.json).toMatchObject({
      mac: mac.replaceAll(':', ''),
      macDisplay: mac,
      deviceType: { code: t.desk, ports: 2, dect: false },
      site: { name: 'Paris' },
      lines: [
        { port: 1, identifiant: t.users[0]!.identifiant, userId: t.users[0]!.id },
        { port: 2, identifiant: t.users[1]!.identifiant },
      ],
      linesAvailable: 0,
      notes: 'bureau 12',
      status: 'unregistered',
      lastRegistration: null,
      retiredAt: null,
      createdAt: clock.time.toISOString(),
    });
    const hex = mac.replaceAll(':', '');
    const cisco = `${hex.slice(0, 4)}.${hex.slice(4, 8)}.${hex.slice(8)}`;
    for (const again of [mac, cisco, hex.toUpperCase()]) {
      const dup = await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac: again, deviceType: t.desk, site: 'Paris' } });
      expect(dup.status, again).toBe(409);
      expect(dup.json.error.details).toEqual([{ field: 'mac', value: mac, message: 'in use' }]);
    }
    // another tenant of the same reseller cannot take it either
    const other = await deviceTenant(app);
    const theirs = await call(app, 'POST', '/v1/devices', { key: other.adminKey, json: { mac, deviceType: other.desk, site: 'Paris' } });
    expect(theirs.status).toBe(409);
  });

  it('names every field at fault, and writes nothing', async () => {
    const t = await deviceTenant(app);
    const cases: [Record<string, unknown>, { field: string; message: string }[]][] = [
      [{ mac: '00:1a:2b:3c:4d', deviceType: t.desk, site: 'Paris' }, [{ field: 'mac', message: 'not a MAC address' }]],
      [{ mac: freshMac(), deviceType: t.desk, site: 'Nantes' }, [{ field: 'site', message: 'no such site' }]],
      [{ mac: freshMac(), deviceType: 'no-such-phone', site: 'Paris' }, [{ field: 'deviceType', message: 'no such device type' }]],
      [{ mac: freshMac(), deviceType: t.single, site: 'Paris' }, [{ field: 'deviceType', message: 'not approved for site Paris' }]],
      [
        { mac: freshMac(), deviceType: t.desk, site: 'Paris', lines: [{ port: 3, identifiant: t.users[0]!.identifiant }, { port: 1, identifiant: '7777777' }] },
        [
          { field: 'lines.3', message: 'has 2 line ports' },
          { field: 'lines.1', message: 'no user has this identifiant' },
        ],
      ],
      [
        { mac: freshMac(), deviceType: t.desk, site: 'Paris', lines: [{ port: 1, identifiant: t.users[0]!.identifiant }, { port: 1, identifiant: t.users[1]!.identifiant }] },
        [{ field: 'lines.1', message: 'port given twice' }],
      ],
      [{ mac: freshMac(), deviceType: t.desk, site: 'Paris', dectStationId: 'MC-1' }, [{ field: 'dectStationId', message: 'not a DECT device' }]],
    ];
    for (const [body, expected] of cases) {
      const r = await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error.details).toHaveLength(expected.length);
      for (const [i, e] of expected.entries()) {
        expect(r.json.error.details[i].field).toBe(e.field);
        expect(r.json.error.details[i].message).toContain(e.message);
      }
    }
    const list = await call(app, 'GET', '/v1/devices', { key: t.adminKey });
    expect(list.json.items).toEqual([]);
  });

  it('edits, retires (kept as history, MAC free again), and refuses to edit a retired device', async () => {
    const t = await deviceTenant(app);
    const mac = freshMac();
    const made = await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac, deviceType: t.dect, site: 'Paris', dectStationId: 'MC-0042', lines: [{ port: 4, identifiant: t.users[0]!.identifiant }] } });
    expect(made.status, made.text).toBe(201);
    clock.advance(60_000);
    const moved = await call(app, 'PATCH', `/v1/devices/${made.json.id}`, { key: t.adminKey, json: { site: 'Lyon', deviceType: t.single, dectStationId: null, lines: [{ port: 1, identifiant: t.users[2]!.identifiant }] } });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.json).toMatchObject({ site: { name: 'Lyon' }, deviceType: { code: t.single }, dectStationId: null, lines: [{ port: 1, identifiant: t.users[2]!.identifiant }], updatedAt: clock.time.toISOString() });
    // the site's approval is checked on change too
    const refused = await call(app, 'PATCH', `/v1/devices/${made.json.id}`, { key: t.adminKey, json: { deviceType: t.desk } });
    expect(refused.status).toBe(400);
    expect(refused.json.error.details[0]).toMatchObject({ field: 'deviceType', message: 'not approved for site Lyon' });
    // a type still used at a site cannot be withdrawn from it
    const sites = (await call(app, 'GET', '/v1/sites', { key: t.adminKey })).json.items as { id: string; name: string }[];
    const lyon = sites.find((s) => s.name === 'Lyon')!;
    const withdraw = await call(app, 'PATCH', `/v1/sites/${lyon.id}`, { key: t.adminKey, json: { deviceTypes: [] } });
    expect(withdraw.status).toBe(409);
    expect(withdraw.json.error.details[0].value).toBe(t.single);

    const retired = await call(app, 'POST', `/v1/devices/${made.json.id}/retire`, { key: t.adminKey });
    expect(retired.status).toBe(200);
    expect(retired.json.retiredAt).toBe(clock.time.toISOString());
    expect((await call(app, 'POST', `/v1/devices/${made.json.id}/retire`, { key: t.adminKey })).status).toBe(409);
    expect((await call(app, 'PATCH', `/v1/devices/${made.json.id}`, { key: t.adminKey, json: { notes: 'x' } })).status).toBe(409);
    expect((await call(app, 'GET', '/v1/devices', { key: t.adminKey })).json.items).toEqual([]);
    const history = await call(app, 'GET', '/v1/devices?retired=true', { key: t.adminKey });
    expect(history.json.items.map((d: { id: string; lines: unknown[] }) => [d.id, d.lines.length])).toEqual([[made.json.id, 1]]);
    // the MAC is free again
    const again = await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac, deviceType: t.desk, site: 'Paris' } });
    expect(again.status, again.text).toBe(201);
    expect(again.json.id).not.toBe(made.json.id);
  });

  it('lists by site, and finds a device by a part of its MAC in any form, its type, or an identifiant on a line; pages in MAC order', async () => {
    const t = await deviceTenant(app);
    const macs = [freshMac(), freshMac(), freshMac()].sort();
    await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac: macs[0], deviceType: t.desk, site: 'Paris', lines: [{ port: 1, identifiant: t.users[2]!.identifiant }] } });
    await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac: macs[1], deviceType: t.single, site: 'Lyon' } });
    await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac: macs[2], deviceType: t.dect, site: 'Paris' } });
    const find = async (query: string) => (await call(app, 'GET', `/v1/devices?${query}`, { key: t.adminKey })).json.items.map((d: { macDisplay: string }) => d.macDisplay);
    expect(await find('site=Paris')).toEqual([macs[0], macs[2]]);
    const tail = macs[1]!.slice(-8); // "aa:bb:cc" → also found as "aa-bb-cc" and "AABBCC"
    expect(await find(`q=${encodeURIComponent(tail)}`)).toEqual([macs[1]]);
    expect(await find(`q=${tail.replaceAll(':', '-').toUpperCase()}`)).toEqual([macs[1]]);
    expect(await find(`q=${t.dect}`)).toEqual([macs[2]]);
    expect(await find(`q=${t.users[2]!.identifiant}`)).toEqual([macs[0]]);
    expect(await find('q=%25')).toEqual(macs); // LIKE's wildcards are dropped from q, not obeyed
    const first = (await call(app, 'GET', '/v1/devices?limit=2', { key: t.adminKey })).json;
    expect(first.items.map((d: { macDisplay: string }) => d.macDisplay)).toEqual(macs.slice(0, 2));
    const next = (await call(app, 'GET', `/v1/devices?limit=2&cursor=${encodeURIComponent(first.nextCursor)}`, { key: t.adminKey })).json;
    expect(next).toMatchObject({ items: [{ macDisplay: macs[2] }], nextCursor: null });
  });

  it('devices:manage protects the routes: technicien and administrateur have it, comptable does not', async () => {
    const t = await deviceTenant(app);
    const tech = await keyWithRoles(app, t, ['technicien']);
    const accountant = await keyWithRoles(app, t, ['comptable']);
    expect((await call(app, 'POST', '/v1/devices', { key: tech.key, json: { mac: freshMac(), deviceType: t.desk, site: 'Paris' } })).status).toBe(201);
    expect((await call(app, 'GET', '/v1/devices', { key: tech.key })).status).toBe(200);
    for (const [method, path] of [['GET', '/v1/devices'], ['GET', '/v1/sites'], ['GET', '/v1/devices/line-states.csv'], ['GET', '/v1/devices/export.csv']]) {
      const r = await call(app, method!, path!, { key: accountant.key });
      expect(r.status, path).toBe(403);
      expect(r.json.error.message).toContain('devices:manage');
    }
    // the pbx key reports registrations, and reads nothing
    expect((await call(app, 'GET', '/v1/devices', { key: t.pbxKey })).status).toBe(403);
  });
});

describe('status from the registrar (issue 21 point 2)', () => {
  it('moves a device registered → aged → unregistered with the clock, found by the MAC in its User-Agent', async () => {
    const t = await deviceTenant(app);
    const mac = freshMac();
    const d = (await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac, deviceType: t.desk, site: 'Paris', lines: [{ port: 1, identifiant: t.users[0]!.identifiant }] } })).json;
    const status = async () => (await call(app, 'GET', `/v1/devices/${d.id}/status`, { key: t.adminKey })).json;
    expect((await status()).status).toBe('unregistered');

    const registeredAt = clock.time.toISOString();
    const report = await call(app, 'POST', '/v1/devices/registrations', {
      key: t.pbxKey,
      json: { identifiant: t.users[0]!.identifiant, contact: `sip:${t.users[0]!.identifiant}@192.0.2.10:5062`, expires: 600, userAgent: `Yealink SIP-T46U 108.86.0.20 ${mac.toUpperCase()}`, sourceIp: '192.0.2.10', sourcePort: 5062 },
    });
    expect(report.status, report.text).toBe(200);
    expect(report.json).toMatchObject({ mac: mac.replaceAll(':', ''), devices: [d.id] });
    expect(await status()).toMatchObject({
      status: 'registered',
      lastRegistration: { registeredAt, expiresAt: new Date(clock.time.getTime() + 600_000).toISOString(), ip: '192.0.2.10', port: 5062, userAgent: expect.stringContaining('T46U') },
      lastRestart: null,
    });
    expect((await status()).dectStationId).toBeUndefined(); // not a DECT device

    clock.advance(600_000 - 1);
    expect((await status()).status).toBe('registered');
    clock.advance(1);
    expect((await status()).status).toBe('aged');
    clock.advance(24 * 3600_000);
    expect((await status()).status).toBe('aged');
    clock.advance(1);
    expect((await status()).status).toBe('unregistered');
    expect((await status()).lastRegistration.registeredAt).toBe(registeredAt); // last seen stays known

    // the list filters by status at the same instant
    const byStatus = async (s: string) => (await call(app, 'GET', `/v1/devices?status=${s}`, { key: t.adminKey })).json.items.map((x: { id: string }) => x.id);
    expect(await byStatus('unregistered')).toEqual([d.id]);
    expect(await byStatus('registered')).toEqual([]);
    await call(app, 'POST', '/v1/devices/registrations', { key: t.pbxKey, json: { identifiant: t.users[0]!.identifiant, contact: 'sip:x@192.0.2.10:5062', expires: 60, userAgent: mac } });
    expect(await byStatus('registered')).toEqual([d.id]);
    expect(await byStatus('unregistered')).toEqual([]);
    // an explicit de-registration (expires 0): aged at once
    await call(app, 'POST', '/v1/devices/registrations', { key: t.pbxKey, json: { identifiant: t.users[0]!.identifiant, contact: '*', expires: 0 } });
    expect(await byStatus('aged')).toEqual([d.id]);
  });

  it('a report without a MAC counts for the devices with a line of its identifiant; a DECT device shows its station id', async () => {
    const t = await deviceTenant(app);
    const base = (await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac: freshMac(), deviceType: t.dect, site: 'Paris', dectStationId: 'MC-7', lines: [{ port: 2, identifiant: t.users[3]!.identifiant }] } })).json;
    const r = await call(app, 'POST', '/v1/devices/registrations', { key: t.pbxKey, json: { identifiant: t.users[3]!.identifiant, contact: 'sip:h@198.51.100.4', expires: 120, userAgent: 'Gigaset N670 IP PRO' } });
    expect(r.json).toMatchObject({ mac: null, devices: [base.id] });
    const s = (await call(app, 'GET', `/v1/devices/${base.id}/status`, { key: t.adminKey })).json;
    expect(s).toMatchObject({ status: 'registered', dectStationId: 'MC-7' });
  });

  it('refuses a malformed report with the field at fault', async () => {
    const t = await deviceTenant(app);
    for (const [json, field] of [
      [{ identifiant: '1', contact: 'sip:a@b', expires: -1 }, 'expires'],
      [{ identifiant: '1', contact: 'sip:a@b', expires: 60, sourceIp: 'not-an-ip' }, 'sourceIp'],
      [{ identifiant: '1', contact: '*', expires: 60 }, 'expires'],
      [{ identifiant: '1', expires: 60 }, 'contact'],
    ] as const) {
      const r = await call(app, 'POST', '/v1/devices/registrations', { key: t.pbxKey, json });
      expect(r.status, JSON.stringify(json)).toBe(400);
      expect(r.json.error.details[0].field).toBe(field);
    }
    const { db } = testDb();
    expect(await db.selectFrom('deviceRegistrations').select('contact').where('tenantId', '=', t.id).execute()).toEqual([]);
  });

  it('a restart needs a registered phone (409) and a configured Kamailio (503)', async () => {
    const t = await deviceTenant(app);
    const mac = freshMac();
    const d = (await call(app, 'POST', '/v1/devices', { key: t.adminKey, json: { mac, deviceType: t.desk, site: 'Paris' } })).json;
    const notRegistered = await call(app, 'POST', `/v1/devices/${d.id}/restart`, { key: t.adminKey });
    expect(notRegistered.status).toBe(409);
    expect(notRegistered.json.error.message).toContain('unregistered');
    await call(app, 'POST', '/v1/devices/registrations', { key: t.pbxKey, json: { identifiant: '1234567', contact: 'sip:1234567@192.0.2.1', expires: 60, userAgent: mac } });
    const noKamailio = await call(app, 'POST', `/v1/devices/${d.id}/restart`, { key: t.adminKey });
    expect(noKamailio.status).toBe(503);
    expect(noKamailio.json.error.message).toContain('FORFAIT_KAMAILIO_RPC_URL');
  });

  it('Kamailio unreachable: 503 and the attempt recorded with its reason; Kamailio silent: 202 with 408 once the wait is over', async () => {
    const dead = clockedApp(clock, { kamailioRpc: { url: `http://127.0.0.1:${await freePort()}/RPC`, timeoutMs: 2_000 } });
    const t = await deviceTenant(dead);
    const mac = freshMac();
    const d = (await call(dead, 'POST', '/v1/devices', { key: t.adminKey, json: { mac, deviceType: t.desk, site: 'Paris' } })).json;
    await call(dead, 'POST', '/v1/devices/registrations', { key: t.pbxKey, json: { identifiant: '1234567', contact: 'sip:1234567@192.0.2.1', expires: 600, userAgent: mac } });
    const refused = await call(dead, 'POST', `/v1/devices/${d.id}/restart`, { key: t.adminKey });
    expect(refused.status).toBe(503);
    expect(refused.json.error.message).toContain('cannot be reached');
    const { db } = testDb();
    const recorded = await db.selectFrom('deviceRestarts').select(['sipStatus', 'sipReason']).where('tenantId', '=', t.id).execute();
    expect(recorded).toEqual([{ sipStatus: null, sipReason: expect.stringContaining('cannot be reached') }]);

    const silent = await silentServer();
    try {
      const slow = clockedApp(clock, { kamailioRpc: { url: `${silent.url}/RPC`, timeoutMs: 300 } });
      const answer = await call(slow, 'POST', `/v1/devices/${d.id}/restart`, { key: t.adminKey });
      expect(answer.status, answer.text).toBe(202);
      expect(answer.json).toMatchObject({ sipStatus: 408, accepted: false });
      expect((await call(slow, 'GET', `/v1/devices/${d.id}/status`, { key: t.adminKey })).json.lastRestart).toMatchObject({ sipStatus: 408 });
    } finally {
      silent.close();
    }
  });
});
