import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { testApp } from '../support/app.js';
import { forfait } from '../support/cli.js';
import { newTenant, resellerKey } from '../support/factory.js';
import { newTariff, newUser } from '../support/accounts.js';

const app = testApp();
const fixture = (name: string) => path.join(import.meta.dirname, '../fixtures', name);

async function tenantWithTariff() {
  const r = await resellerKey();
  const tariffId = await newTariff(app, r.key, ['33,France,fixed,0.10,0,60,60,false,,', '262,Réunion,international,0.60,0,60,1,false,,']);
  return newTenant(app, { tariffId, country: 'FR', timezone: 'Europe/Paris' });
}

describe('forfait cdrs import: exit codes a script can trust (issue 18)', () => {
  it('a Master.csv imported as native: refused, exit 2, and it says to use --format asterisk', async () => {
    const t = await tenantWithTariff();
    const r = await forfait(['cdrs', 'import', fixture('files/Master-unallocated.csv'), '--tenant', t.id]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('looks like an Asterisk Master.csv record: import the file with format=asterisk (CLI: --format asterisk)');
    expect(r.stderr).toContain('nothing was imported');
  }, 60_000);

  it('every row rated: exit 0; a row rejected: the rest rated, exit 3, and a line that says so', async () => {
    const t = await tenantWithTariff();
    await newUser(t.id, { balance: '10', identifiant: '5550001' });
    const ok = await forfait(['cdrs', 'import', fixture('files/Master-unallocated.csv'), '--tenant', t.id, '--format', 'asterisk']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ accepted: 3, rejectedCount: 0, unknownRangeCount: 1 });
    expect(ok.stderr).toContain('1 call(s) to numbers outside the known ranges were rated');

    // the other fixture has a user this tenant does not know and a bad date
    const some = await forfait(['cdrs', 'import', fixture('cdrs/asterisk-Master.csv'), '--tenant', t.id, '--format', 'asterisk']);
    expect(some.code).toBe(3);
    const summary = JSON.parse(some.stdout);
    expect(summary.accepted).toBeGreaterThan(0);
    expect(summary.rejectedCount).toBe(2);
    expect(some.stderr).toContain('2 row(s) rejected');
  }, 60_000);
});
