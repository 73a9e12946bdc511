import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, afterEach, describe, expect, inject, it, vi } from 'vitest';
import { createApp } from '../../api/app.js';
import { defaultConfig } from '../../api/context.js';
import { connect, rawSql, withTransaction } from '../../db/connection.js';
import { copyIn } from '../../db/copy.js';
import { putTariff } from '../../services/tariffs/tariffs.js';
import { LineChecker } from '../../services/users/importLine.js';
import { openCdrExport } from '../../services/exports/cdrExport.js';
import { call } from '../support/app.js';
import { newTenant, resellerKey, uniqueName } from '../support/factory.js';
import { ids, line } from '../users/helpers.js';
import { cdr, cdrTenant, cdrUser } from '../cdrs/helpers.js';
import { expectPoolWhole } from '../support/pool.js';

const HEADER = 'prefix,destination,class,price_per_minute,connection_fee,first_increment,next_increment,forfait_eligible,next_price_per_minute,valid_from';
const POOL = 2;

/** A pool of its own, small, so one leaked connection shows at once. */
const pool = connect(inject('databaseUrl'), { max: POOL });
const app = createApp({ ...pool, logger: pino({ level: 'silent' }), config: defaultConfig });
afterAll(async () => {
  await app.close();
  await pool.close();
});

/** Settles `p` within 5 s, or says it hung. */
function outcome(p: Promise<unknown>): Promise<string> {
  return Promise.race([
    p.then(
      () => 'resolved',
      (err: unknown) => (err instanceof Error ? err.name : 'thrown'),
    ),
    new Promise<string>((resolve) => setTimeout(() => resolve('hung'), 5000)),
  ]);
}

describe('a COPY that fails inside PostgreSQL gives its connection back (issue #24.1)', () => {
  it('copyIn: bad rows, early or in the last group, and a failing producer, more times than the pool holds', async () => {
    await sql`CREATE TABLE IF NOT EXISTS test_copy_fail (t text, d timestamptz)`.execute(pool.db);
    const cases: (() => Iterable<Buffer>)[] = [
      () => [Buffer.from('a\u0000b\t2026-01-01T00:00:00Z\n')],
      () => [Buffer.from('ok\t0000-01-01T00:00:00Z\n')],
      () => [Buffer.from('ok\t2026-01-01T00:00:00Z\n'.repeat(5000)), Buffer.from('ok\tnot a date\n')],
      function* () {
        yield Buffer.from('ok\t2026-01-01T00:00:00Z\n');
        throw new Error('producer failed');
      },
    ];
    const seen: string[] = [];
    for (let round = 0; round < POOL + 1; round++) {
      for (const chunks of cases) {
        seen.push(await outcome(withTransaction(pool.db, async (trx) => copyIn(await rawSql(trx), 'COPY test_copy_fail (t, d) FROM STDIN', chunks()))));
      }
    }
    expect(seen.filter((s) => s === 'hung')).toEqual([]);
    expect(seen.filter((s) => s === 'resolved')).toEqual([]);
    await expectPoolWhole(pool.sql, POOL);
    expect((await sql<{ n: string }>`SELECT count(*)::text AS n FROM test_copy_fail`.execute(pool.db)).rows[0]!.n).toBe('0');
  });

  it('tariff upload: a NUL byte or year 0 is a line error, and the pool stays whole', async () => {
    const { resellerId } = await resellerKey();
    const bad = [`33,France\u0000fixe,fixed,0.02,0,60,60,true,,`, `33,France fixe,fixed,0.02,0,60,60,true,,0000-01-01T00:00:00Z`];
    const seen: string[] = [];
    for (let round = 0; round < POOL + 1; round++) {
      for (const l of bad) seen.push(await outcome(putTariff(pool.db, resellerId, uniqueName('tariff'), `${HEADER}\n${l}\n`)));
    }
    await expectPoolWhole(pool.sql, POOL);
    expect(seen).toEqual(Array(seen.length).fill('ValidationError'));
  });

  it('users import: a NUL byte in a line is a 400 naming the line, and the pool stays whole', async () => {
    const t = await newTenant(app);
    const statuses: number[] = [];
    for (let round = 0; round < POOL + 1; round++) {
      const a = ids();
      const b = ids();
      const csv = [line('Ann', a.matricule, a.identifiant), line('Bo\u0000b', b.matricule, b.identifiant)].join('\n');
      const res = await Promise.race([
        call(app, 'POST', '/v1/users/import?mode=append', { key: t.adminKey, body: csv, headers: { 'content-type': 'text/csv' } }),
        new Promise<{ status: number; json: undefined }>((resolve) => setTimeout(() => resolve({ status: 0, json: undefined }), 5000)),
      ]);
      statuses.push(res.status);
      if (res.status === 400) expect(res.json.error.details).toContainEqual(expect.objectContaining({ line: 2 }));
    }
    await expectPoolWhole(pool.sql, POOL);
    expect(statuses).toEqual(Array(POOL + 1).fill(400));
  });

  describe('users import: a failure injected into its COPY', () => {
    afterEach(() => vi.restoreAllMocks());
    const injections: [string, (original: LineChecker['row']) => (this: LineChecker) => string | undefined][] = [
      [
        'the line checker throws mid-file',
        (original) => {
          let calls = 0;
          return function (this: LineChecker) {
            const row = original.call(this);
            if (++calls % 5 === 3) throw new Error('injected: checker failed');
            return row;
          };
        },
      ],
      ['PostgreSQL refuses a row (wrong column count)', () => () => '1\n'],
    ];
    for (const [what, inject] of injections) {
      it(`(${what}) is a 500 that gives the connection back`, async () => {
        const t = await newTenant(app);
        const original = LineChecker.prototype.row;
        vi.spyOn(LineChecker.prototype, 'row').mockImplementation(inject(original));
        const statuses: number[] = [];
        for (let round = 0; round < POOL + 1; round++) {
          const csv = Array.from({ length: 5 }, () => {
            const a = ids();
            return line('Ann', a.matricule, a.identifiant);
          }).join('\n');
          const res = await Promise.race([
            call(app, 'POST', '/v1/users/import?mode=append', { key: t.adminKey, body: csv, headers: { 'content-type': 'text/csv' } }),
            new Promise<{ status: number }>((resolve) => setTimeout(() => resolve({ status: 0 }), 5000)),
          ]);
          statuses.push(res.status);
        }
        vi.restoreAllMocks();
        await expectPoolWhole(pool.sql, POOL);
        expect(statuses).toEqual(Array(POOL + 1).fill(500));
      });
    }
  });

  it('COPY out (CDR export): a statement that fails inside PostgreSQL ends its session and leaves the pool whole', async () => {
    const t = await cdrTenant(app);
    const u = await cdrUser(t.id, { balance: '10' }, app);
    const rated = await call(app, 'POST', '/v1/cdrs', { key: t.adminKey, json: [cdr(uniqueName('out'), u.identifiant, '0142000000', 30)] });
    expect(rated.json.accepted, rated.text).toBe(1);
    const started = new Date();
    // a COPY failing as it starts must reach the stream's reader, not be an uncaught 'error' event (which ends the server)
    const unhandled: unknown[] = [];
    const onUnhandled = (err: unknown) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    process.on('uncaughtException', onUnhandled);
    const outcomes: string[] = [];
    for (let round = 0; round < POOL + 1; round++) {
      // user_id is cast to uuid inside the COPY: PostgreSQL refuses it there
      const failing = (async () => {
        const exp = await openCdrExport(pool.sql, { id: t.id, reference: null, country: 'FR', timezone: 'Europe/Paris', numberDisplay: 'international' }, { userId: 'not-a-uuid' });
        try {
          for await (const _ of exp.stream) void _;
          await exp.close(true);
        } catch (err) {
          await exp.close(false);
          throw err;
        }
      })();
      outcomes.push(await outcome(failing));
    }
    expect(outcomes.filter((o) => o === 'hung' || o === 'resolved')).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    process.off('unhandledRejection', onUnhandled);
    process.off('uncaughtException', onUnhandled);
    expect(unhandled).toEqual([]);
    await expectPoolWhole(pool.sql, POOL);
    // the export sessions this test opened are gone (others' come and go)
    await vi.waitFor(
      async () => {
        const [row] = await pool.sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_stat_activity
           WHERE application_name = 'forfait-export' AND backend_start >= ${started} AND state <> 'active'`;
        expect(row!.n).toBe(0);
      },
      { timeout: 10_000, interval: 200 },
    );
  });
});
