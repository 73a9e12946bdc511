import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, testDb } from '../support/app.js';
import { forfait } from '../support/cli.js';
import { clockedApp, deviceTenant, freshMac, TestClock } from './helpers.js';

const app = clockedApp(new TestClock());

describe('forfait devices import|export', () => {
  it('imports a file, lists every line error without writing, exports what imports unchanged, and writes the line-state report', async () => {
    const t = await deviceTenant(app);
    const dir = await mkdtemp(path.join(tmpdir(), 'forfait-devices-cli-'));
    try {
      const [a, b] = [freshMac(), freshMac()];
      const good = path.join(dir, 'devices.csv');
      await writeFile(good, ['mac,device_type,site,lines', `${a},${t.desk},Paris,1:${t.users[0]!.identifiant}`, `${b},${t.single},Lyon,`].join('\n'));
      const imported = await forfait(['devices', 'import', good, '--tenant', t.id]);
      expect(imported.code, imported.stderr).toBe(0);
      expect(JSON.parse(imported.stdout)).toMatchObject({ created: 2, updated: 0, unchanged: 0 });

      const bad = path.join(dir, 'bad.csv');
      await writeFile(bad, ['mac,device_type,site,lines', `${freshMac()},${t.single},Paris,`, `zz:zz,${t.desk},Paris,1:9999999`].join('\n'));
      const { db } = testDb();
      const count = async () => (await db.selectFrom('devices').select('id').where('tenantId', '=', t.id).execute()).length;
      const refused = await forfait(['devices', 'import', bad, '--tenant', t.id]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/line 2 deviceType: not approved for site Paris/);
      expect(refused.stderr).toMatch(/line 3 mac: not a MAC address/);
      expect(refused.stderr).toMatch(/line 3 lines.1: no user has this identifiant/);
      expect(await count()).toBe(2);

      const out = path.join(dir, 'export.csv');
      const exported = await forfait(['devices', 'export', '--tenant', t.id, '--out', out]);
      expect(exported.code, exported.stderr).toBe(0);
      expect(await readFile(out, 'utf8')).toContain(`${a},${t.desk},1,Paris,1:${t.users[0]!.identifiant},,`);
      const dry = await forfait(['devices', 'import', out, '--tenant', t.id, '--dry-run']);
      expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, created: 0, updated: 0, unchanged: 2 });

      const states = await forfait(['devices', 'export', '--tenant', t.id, '--line-states', '--site', 'Lyon']);
      expect(states.code, states.stderr).toBe(0);
      expect(states.stdout.split('\r\n')).toEqual(['site,mac,device_type,port,user,identifiant,status,last_seen', `Lyon,${b},${t.single},1,,,unregistered,`, '']);
      expect((await forfait(['devices', 'export', '--tenant', t.id, '--status', 'aged'])).code).not.toBe(0);
      expect((await call(app, 'GET', '/v1/devices', { key: t.adminKey })).json.items).toHaveLength(2);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
