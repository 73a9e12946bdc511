import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ingestCdrSpool } from '../../jobs/ingestCdrSpool.js';
import { testApp, testDb } from '../support/app.js';
import { account, cdrCount, cdrTenant, cdrUser } from './helpers.js';

const app = testApp();
let root: string;
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('CDR spool directory job', () => {
  it('rates dropped files, moves them to done/ or failed/ with a JSON report, and is idempotent', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10', identifiant: '5550001' });
    root = await mkdtemp(path.join(tmpdir(), 'forfait-spool-'));
    const dir = path.join(root, t.id);
    await mkdir(dir, { recursive: true });
    const fixtures = path.join(import.meta.dirname, '../fixtures/cdrs');
    await copyFile(path.join(fixtures, 'asterisk-Master.csv'), path.join(dir, 'Master.csv'));
    await copyFile(path.join(fixtures, 'freeswitch-Master.csv'), path.join(dir, 'pbx2.freeswitch.csv'));
    await writeFile(path.join(dir, 'broken.csv'), 'not,a,native,header\n');
    const deps = { db: testDb().db, sql: testDb().sql, tariffs: app.tariffs };

    const run = await ingestCdrSpool(deps, root, { settleMs: 0 });
    expect(run).toEqual({ files: 3, done: 2, failed: 1 });
    const done = (await readdir(path.join(dir, 'done'))).sort();
    expect(done.filter((f) => f.endsWith('.json'))).toHaveLength(2);
    const reportFile = done.find((f) => f.endsWith('Master.csv.json'))!;
    const report = JSON.parse(await readFile(path.join(dir, 'done', reportFile), 'utf8'));
    expect(report).toMatchObject({ file: 'Master.csv', format: 'asterisk', accepted: 5, rejectedCount: 2 });
    const failed = await readdir(path.join(dir, 'failed'));
    expect(failed.some((f) => f.endsWith('broken.csv.json'))).toBe(true);
    expect(await cdrCount(t.id)).toBe(12);
    // 0.6417 + 0.6000 per file
    expect((await account(t.id, u.id)).balance).toBe('7.5166');

    // the same file dropped again: moved, nothing rated twice; an empty run does nothing
    await copyFile(path.join(fixtures, 'asterisk-Master.csv'), path.join(dir, 'Master.csv'));
    expect(await ingestCdrSpool(deps, root, { settleMs: 0 })).toEqual({ files: 1, done: 1, failed: 0 });
    expect(await ingestCdrSpool(deps, root, { settleMs: 0 })).toEqual({ files: 0, done: 0, failed: 0 });
    expect(await cdrCount(t.id)).toBe(12);
    expect((await account(t.id, u.id)).balance).toBe('7.5166');
  });
});
