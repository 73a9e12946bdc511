import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, testApp } from '../support/app.js';
import { forfait } from '../support/cli.js';
import { cdrTenant, TARIFF_CSV } from '../cdrs/helpers.js';
import { DRAFT, seedCalls } from './helpers.js';

const app = testApp();

describe('forfait tariffs simulate', () => {
  it('prints the CSV the API gives for the same draft, and names a bad line', async () => {
    const t = await cdrTenant(app);
    await seedCalls(app, t);
    const file = path.join(tmpdir(), `draft-${t.id}.csv`);
    await writeFile(file, DRAFT);
    const r = await forfait(['tariffs', 'simulate', file, '--from', '2026-10-01', '--to', '2026-12-01', '--tenant', t.id]);
    expect(r.code, r.stderr).toBe(0);
    const api = await call(app, 'POST', `/v1/tariffs/${t.tariffId}/simulate?format=csv`, { key: t.resellerKey, json: { from: '2026-10-01', to: '2026-12-01', tariffCsv: DRAFT } });
    expect(r.stdout).toBe(api.text);
    const byUser = await forfait(['tariffs', 'simulate', file, '--from', '2026-10-01', '--to', '2026-12-01', '--tariff', t.tariffId, '--by', 'user']);
    expect(byUser.stdout.trim().split('\n')).toHaveLength(4); // header and three users

    await writeFile(file, `${TARIFF_CSV}39,Italie,international,abc,0,60,60,false,,\n`);
    const bad = await forfait(['tariffs', 'simulate', file, '--from', '2026-10-01', '--to', '2026-12-01', '--tenant', t.id]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^line 6 /m);
  }, 120_000);
});
