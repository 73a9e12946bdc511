import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { archiveDueMonths, verifyArchive } from '../../services/archives/archive.js';
import { restoreMonth } from '../../services/archives/restore.js';
import { systemActor } from '../../services/audit/audit.js';

const operator = systemActor('test:archives restore');
import { call, testApp, testDb } from '../support/app.js';
import { cdr, cdrTenant, cdrUser } from '../cdrs/helpers.js';

/**
 * Retention and archives (issue 22). Each test's tenant has its CDRs in months
 * of 2001–2003 that no other test writes, and the job is run for that tenant
 * only, with a clock: the suite's other tenants share the database.
 */
const app = testApp();
const root = path.resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'forfait-archive-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A tenant keeping 1 month, with calls in `months` ("2001-05"), 3 a month. */
async function tenantWithCalls(months: string[], prefix: string) {
  const { sql } = testDb();
  const t = await cdrTenant(app, { reference: 'ACME-01' });
  await sql`UPDATE tenants SET cdr_retention_months = 1 WHERE id = ${t.id}`;
  const u = await cdrUser(t.id, { balance: '50' });
  const json = months.flatMap((m, k) => [1, 2, 3].map((d) => cdr(`${prefix}-${k}-${d}`, u.identifiant, d % 2 ? '0612345678' : '0142000000', 20 * d, `${m}-0${d}T10:00:00+01:00`)));
  const res = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json });
  expect(res.json).toMatchObject({ accepted: months.length * 3 });
  return { ...t, user: u };
}

async function rowsOf(tenantId: string) {
  const { sql } = testDb();
  return sql`SELECT * FROM cdrs WHERE tenant_id = ${tenantId} ORDER BY id`;
}

describe('the archive job', () => {
  it('archives a month past retention (gzipped CSV, SHA-256 manifest), removes it, drops its empty partition, keeps the recent month; restore puts the very rows back', async () => {
    const { sql } = testDb();
    const t = await tenantWithCalls(['2001-05', '2001-07'], 'ar');
    const before = await rowsOf(t.id);
    // July 2001, 1 month kept: June and July stay, May goes
    const r = await archiveDueMonths(testDb().db, { dir, now: new Date('2001-07-20T12:00:00Z'), tenantIds: [t.id] });
    expect(r.archived).toEqual([{ tenantId: t.id, month: '2001-05', part: 1, file: `${t.id}/2001-05.csv.gz`, rows: 3 }]);
    expect(r.removed).toBe(3);
    expect(r.dropped).toContain('cdrs_y2001m05');
    expect((await rowsOf(t.id)).map((x) => x.call_id)).toEqual(before.filter((x) => String(x.call_id).startsWith('ar-1-')).map((x) => x.call_id));
    expect(await readdir(path.join(dir, t.id))).toEqual(['2001-05.csv.gz', '2001-05.sha256']);
    // the manifest is sha256sum's own format
    const check = await run('sha256sum', ['-c', '2001-05.sha256'], { cwd: path.join(dir, t.id) });
    expect(check.stdout).toContain('2001-05.csv.gz: OK');
    const [rec] = await sql`SELECT rows::int, verified_at IS NOT NULL AS verified FROM cdr_archives WHERE tenant_id = ${t.id}`;
    expect(rec).toEqual({ rows: 3, verified: true });

    // the export's columns first, values as stored
    const { stdout } = await run('sh', ['-c', `gunzip -c '${path.join(dir, t.id, '2001-05.csv.gz')}'`]);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]!.startsWith('reference,call_id,identifiant,caller,callee,direction,started_at,answered_at,duration_seconds,disposition,site,line,destination,class,billable_seconds,forfait_seconds,charged_seconds,cost,id,')).toBe(true);
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(/^ACME-01,ar-0-1,/);

    // a second run finds nothing to do
    const again = await archiveDueMonths(testDb().db, { dir, now: new Date('2001-07-20T12:00:00Z'), tenantIds: [t.id] });
    expect(again).toEqual({ archived: [], removed: 0, dropped: [] });

    // restore: the same rows, ids and all; twice is harmless; the next run removes them without a new file
    const restored = await restoreMonth(testDb().db, dir, t.id, '2001-05', operator);
    expect(restored).toMatchObject({ parts: 1, restored: 3, present: 0 });
    expect(await rowsOf(t.id)).toEqual(before);
    expect(await restoreMonth(testDb().db, dir, t.id, '2001-05', operator)).toMatchObject({ restored: 0, present: 3 });
    // each restore is in the tenant's audit trail, with what it put back
    const trail = await testDb().db.selectFrom('auditEvents').select(['action', 'actorId', 'targetId', 'after']).where('tenantId', '=', t.id).where('action', '=', 'archive.restore').orderBy('id').execute();
    expect(trail).toEqual([
      { action: 'archive.restore', actorId: 'test:archives restore', targetId: '2001-05', after: { tenantId: t.id, month: '2001-05', parts: 1, restored: 3, present: 0 } },
      { action: 'archive.restore', actorId: 'test:archives restore', targetId: '2001-05', after: { tenantId: t.id, month: '2001-05', parts: 1, restored: 0, present: 3 } },
    ]);
    const third = await archiveDueMonths(testDb().db, { dir, now: new Date('2001-07-20T12:00:00Z'), tenantIds: [t.id] });
    expect(third).toMatchObject({ archived: [], removed: 3 });
    expect(await readdir(path.join(dir, t.id))).toEqual(['2001-05.csv.gz', '2001-05.sha256']);
  });

  it('archives late CDRs of an archived month as part 2, listed in the same manifest', async () => {
    const t = await tenantWithCalls(['2001-09'], 'late');
    const now = new Date('2001-11-20T12:00:00Z');
    await archiveDueMonths(testDb().db, { dir, now, tenantIds: [t.id] });
    // a late CDR of September: its partition was dropped, the batch makes it again
    const res = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr('late-x', t.user.identifiant, '0612345678', 30, '2001-09-28T10:00:00+01:00')] });
    expect(res.json).toMatchObject({ accepted: 1 });
    const r = await archiveDueMonths(testDb().db, { dir, now, tenantIds: [t.id] });
    expect(r.archived).toEqual([{ tenantId: t.id, month: '2001-09', part: 2, file: `${t.id}/2001-09.2.csv.gz`, rows: 1 }]);
    const check = await run('sha256sum', ['-c', '2001-09.sha256'], { cwd: path.join(dir, t.id) });
    expect(check.stdout.trim().split('\n')).toEqual(['2001-09.csv.gz: OK', '2001-09.2.csv.gz: OK']);
    expect(await restoreMonth(testDb().db, dir, t.id, '2001-09', operator)).toMatchObject({ parts: 2, restored: 4 });
  });

  it('a CDR of the month stored while the archive is being written is neither archived nor removed: it is part 2 next time', async () => {
    const t = await tenantWithCalls(['2002-04'], 'race');
    const now = new Date('2002-06-03T00:00:00Z');
    const r = await archiveDueMonths(testDb().db, {
      dir,
      now,
      tenantIds: [t.id],
      // after the snapshot was taken and the file verified, before the rows are removed: a late CDR is committed
      at: async (point) => {
        if (point !== 'verified') return;
        const late = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr('race-late', t.user.identifiant, '0612345678', 30, '2002-04-20T10:00:00+02:00')] });
        expect(late.json).toMatchObject({ accepted: 1 });
      },
    });
    expect(r).toMatchObject({ archived: [{ month: '2002-04', part: 1, rows: 3 }], removed: 3, dropped: [] });
    expect((await rowsOf(t.id)).map((x) => x.call_id)).toEqual(['race-late']);
    const next = await archiveDueMonths(testDb().db, { dir, now, tenantIds: [t.id] });
    expect(next).toMatchObject({ archived: [{ month: '2002-04', part: 2, rows: 1 }], removed: 1, dropped: ['cdrs_y2002m04'] });
  });

  it('a tampered archive is not restored: nothing is written', async () => {
    const t = await tenantWithCalls(['2002-01'], 'tamper');
    await archiveDueMonths(testDb().db, { dir, now: new Date('2002-03-02T00:00:00Z'), tenantIds: [t.id] });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path.join(dir, t.id, '2002-01.csv.gz'), 'not the archive');
    await expect(restoreMonth(testDb().db, dir, t.id, '2002-01', operator)).rejects.toThrow(/SHA-256|incorrect header|unexpected end/);
    expect(await rowsOf(t.id)).toEqual([]);
    await expect(restoreMonth(testDb().db, dir, t.id, '2002-13', operator)).rejects.toMatchObject({ details: [{ field: 'month' }] });
  });
});

describe('the archive job killed between the archive and the removal', () => {
  for (const point of ['written', 'verified'] as const) {
    it(`killed once the archive is ${point}: no row removed; the next run archives and removes them`, async () => {
      const t = await tenantWithCalls(['2003-02'], `kill-${point}`);
      const before = await rowsOf(t.id);
      const now = '2003-04-10T00:00:00Z';
      const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/fixtures/archiveChild.ts'), inject('databaseUrl'), dir, t.id, now, point], {
        cwd: root,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
      });
      const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])));
      expect({ code, signal, out }).toEqual({ code: null, signal: 'SIGKILL', out: '' });
      // the file is there (written, fsynced), the rows too, no record
      const file = path.join(dir, t.id, '2003-02.csv.gz');
      expect(existsSync(file)).toBe(true);
      expect(await rowsOf(t.id)).toEqual(before);
      const { sql } = testDb();
      expect(await sql`SELECT 1 FROM cdr_archives WHERE tenant_id = ${t.id}`).toHaveLength(0);
      // the killed transaction is gone (its connection closed): the next run does the whole work
      const r = await archiveDueMonths(testDb().db, { dir, now: new Date(now), tenantIds: [t.id] });
      expect(r).toMatchObject({ archived: [{ part: 1, rows: 3 }], removed: 3 });
      expect(await rowsOf(t.id)).toEqual([]);
      const [rec] = await sql<{ sha256: string }[]>`SELECT sha256 FROM cdr_archives WHERE tenant_id = ${t.id}`;
      await verifyArchive(file, rec!.sha256, 3);
      await restoreMonth(testDb().db, dir, t.id, '2003-02', operator);
      expect(await rowsOf(t.id)).toEqual(before);
    });
  }
});

describe('GET /v1/archives', () => {
  it("lists the tenant's archives; another tenant sees none of them and its month is a 404", async () => {
    const t = await tenantWithCalls(['2002-06'], 'list');
    const other = await cdrTenant(app);
    await archiveDueMonths(testDb().db, { dir, now: new Date('2002-08-01T00:00:00Z'), tenantIds: [t.id] });
    const mine = await call(app, 'GET', '/v1/archives', { key: t.adminKey });
    expect(mine.status, mine.text).toBe(200);
    expect(mine.json.items).toEqual([
      expect.objectContaining({ month: '2002-06', part: 1, file: `${t.id}/2002-06.csv.gz`, rows: 3, restoredAt: null, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) }),
    ]);
    expect((await call(app, 'GET', '/v1/archives/2002-06', { key: t.adminKey })).json.items).toHaveLength(1);
    const theirs = await call(app, 'GET', '/v1/archives', { key: other.adminKey });
    expect(theirs.json.items).toEqual([]);
    const month = await call(app, 'GET', '/v1/archives/2002-06', { key: other.adminKey });
    expect(month.status).toBe(404);
    expect(month.json.error.code).toBe('NOT_FOUND');
    expect((await call(app, 'GET', '/v1/archives/2002-6', { key: t.adminKey })).status).toBe(400);
    expect((await call(app, 'GET', '/v1/archives')).status).toBe(401);
  });
});

describe('forfait archives (the command)', () => {
  it('restore --month puts a month back; list shows it restored; a bad month or an unknown one ends with code 2', async () => {
    const t = await tenantWithCalls(['2002-10'], 'cli');
    const before = await rowsOf(t.id);
    await archiveDueMonths(testDb().db, { dir, now: new Date('2002-12-15T00:00:00Z'), tenantIds: [t.id] });
    expect(await rowsOf(t.id)).toEqual([]);
    const forfait = (args: string[]) =>
      run(process.execPath, [path.join(root, 'bin/forfait.js'), 'archives', ...args], {
        cwd: root,
        env: { ...process.env, DATABASE_URL: inject('databaseUrl'), FORFAIT_ARCHIVE_DIR: dir },
      }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    const restored = await forfait(['restore', '--tenant', t.id, '--month', '2002-10']);
    expect(restored.code, restored.stderr).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ tenantId: t.id, month: '2002-10', parts: 1, restored: 3, present: 0 });
    expect(await rowsOf(t.id)).toEqual(before);
    const list = await forfait(['list', '--tenant', t.id]);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ month: '2002-10', rows: 3, restoredAt: expect.any(String) })]);
    const bad = await forfait(['restore', '--tenant', t.id, '--month', '2002-1']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('month');
    const none = await forfait(['restore', '--tenant', t.id, '--month', '1990-01']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('no archive of 1990-01');
  });
});
