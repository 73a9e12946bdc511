// Issue #24: an indicators request is refused before any work when its series
// would be too long, and an accepted one costs the server's thread the same
// small amount of luxon work however many points it has (the buckets are made
// by PostgreSQL). Work is counted, never timed.
import fc from 'fast-check';
import { DateTime } from 'luxon';
import type postgres from 'postgres';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { bucketCount, GRANULARITIES, indicators, indicatorsJson, MAX_SERIES_POINTS, type Granularity } from '../../services/indicators/query.js';
import { ValidationError } from '../../services/shared/errors.js';
import { call, testApp, testDb } from '../support/app.js';
import { keyWithRoles } from '../support/factory.js';
import { cdrTenant } from '../cdrs/helpers.js';

const app = testApp();

/** The points luxon's calendar walk gives (what test/indicators/reference.ts draws). */
function walk(from: Date, to: Date, zone: string, g: Granularity): number {
  let n = 0;
  for (let b = DateTime.fromJSDate(from, { zone }).startOf(g); b.toMillis() < to.getTime(); b = b.plus({ [`${g}s`]: 1 }).startOf(g)) n++;
  return n;
}

/** A client that fails the test if the service sends it anything. */
const untouchable = new Proxy(() => undefined, {
  apply: () => {
    throw new Error('the database was asked');
  },
  get: () => {
    throw new Error('the database was asked');
  },
}) as unknown as postgres.Sql;

/** Calls of luxon's per-bucket operations while `f` runs. */
async function luxonWork(f: () => Promise<unknown>): Promise<number> {
  const spies = [
    vi.spyOn(DateTime.prototype, 'plus'),
    vi.spyOn(DateTime.prototype, 'startOf'),
    vi.spyOn(DateTime.prototype, 'toISO'),
    vi.spyOn(DateTime.prototype, 'toISODate'),
    vi.spyOn(DateTime, 'fromJSDate'),
    vi.spyOn(DateTime, 'fromMillis'),
  ];
  try {
    await f().catch(() => undefined);
    return spies.reduce((n, s) => n + s.mock.calls.length, 0);
  } finally {
    for (const s of spies) s.mockRestore();
  }
}

const paris = { id: '00000000-0000-0000-0000-000000000000', timezone: 'Europe/Paris', currency: 'EUR', locale: 'fr' };

afterEach(() => vi.restoreAllMocks());

describe('bucketCount', () => {
  it('is the number of points of the calendar walk, in zones with DST, half- and quarter-hour offsets', () => {
    const zones = ['Europe/Paris', 'America/New_York', 'Asia/Kolkata', 'Asia/Kathmandu', 'America/St_Johns', 'Australia/Adelaide', 'UTC', 'America/Santiago'];
    const t0 = Date.UTC(1995, 0, 1);
    const span = Date.UTC(2030, 0, 1) - t0;
    fc.assert(
      fc.property(
        fc.constantFrom(...zones),
        fc.constantFrom(...GRANULARITIES),
        fc.integer({ min: 0, max: span }),
        fc.integer({ min: 1, max: 400 * 86_400_000 }),
        (zone, g, start, length) => {
          const from = new Date(t0 + start);
          const to = new Date(t0 + start + (g === 'hour' ? Math.ceil(length / 24) : length));
          expect(bucketCount(from, to, zone, g), `${zone} ${g} ${from.toISOString()} → ${to.toISOString()}`).toBe(walk(from, to, zone, g));
        },
      ),
      { numRuns: 400 },
    );
  });

  it('counts the DST nights and the edges exactly', () => {
    const at = (s: string) => new Date(DateTime.fromISO(s, { zone: 'Europe/Paris' }).toMillis());
    expect(bucketCount(at('2026-10-01'), at('2026-11-01'), 'Europe/Paris', 'hour')).toBe(31 * 24 + 1);
    expect(bucketCount(at('2026-03-01'), at('2026-04-01'), 'Europe/Paris', 'hour')).toBe(31 * 24 - 1);
    expect(bucketCount(at('2026-10-24T13:17'), at('2026-10-27T08:05:30'), 'Europe/Paris', 'hour')).toBe(walk(at('2026-10-24T13:17'), at('2026-10-27T08:05:30'), 'Europe/Paris', 'hour'));
    expect(bucketCount(at('2026-10-24T13:17'), at('2026-11-06T00:00:01'), 'Europe/Paris', 'day')).toBe(14);
    expect(bucketCount(at('2026-10-31T23:00'), at('2026-11-02'), 'Europe/Paris', 'month')).toBe(2);
    // the reproduction of issue #24
    expect(bucketCount(at('2000-01-01'), at('2026-01-01'), 'Europe/Paris', 'hour')).toBe(227_928);
    expect(bucketCount(at('2000-01-01'), at('2026-01-01'), 'Europe/Paris', 'day')).toBe(9_497);
  });
});

describe('an oversized period', () => {
  it('is refused before the database is asked or any bucket is built', async () => {
    const q = { from: '2000-01-01', to: '2026-01-01', granularity: 'hour' } as const;
    let refusal: unknown;
    const work = await luxonWork(async () => {
      refusal = await indicatorsJson(untouchable, paris, q).catch((e: unknown) => e);
    });
    // a handful of zone conversions for the bounds, never one per bucket (the old walk made 10,001 before refusing)
    expect(work).toBeLessThan(20);
    expect(refusal).toBeInstanceOf(ValidationError);
    expect((refusal as ValidationError).details).toEqual([
      expect.objectContaining({ field: 'granularity', value: 'hour', message: expect.stringContaining(`227928 points, at most ${MAX_SERIES_POINTS}`) }),
    ]);
  });

  it('is a 400 in the error envelope naming the field, exactly the limit is answered and one point more refused', async () => {
    const t = await cdrTenant(app);
    const { key } = await keyWithRoles(app, t, ['comptable']);
    const refused = await call(app, 'GET', '/v1/indicators?from=2000-01-01&to=2026-01-01&granularity=hour', { key });
    expect(refused.status).toBe(400);
    expect(refused.json.error).toMatchObject({ code: 'VALIDATION_FAILED', details: [{ field: 'granularity' }] });
    expect(typeof refused.json.error.requestId).toBe('string');
    // 10,000 hours from 2026-01-01 00:00 Paris: the last one starts 2027-02-21 15:00 (one DST hour lost, one gained)
    const ok = await call(app, 'GET', '/v1/indicators?from=2026-01-01&to=2027-02-21T16:00&granularity=hour', { key });
    expect(ok.status, ok.text).toBe(200);
    expect(ok.json.series).toHaveLength(MAX_SERIES_POINTS);
    expect(ok.json.series.at(-1).start).toBe('2027-02-21T15:00:00+01:00');
    const over = await call(app, 'GET', '/v1/indicators?from=2026-01-01&to=2027-02-21T16:00:01&granularity=hour', { key });
    expect(over.status).toBe(400);
  });
});

describe('an accepted long period', () => {
  it('costs the server the same luxon work for 31 points as for 9,497: the buckets come from PostgreSQL', async () => {
    const { sql } = testDb();
    const t = await cdrTenant(app);
    const tenant = { ...paris, id: t.id };
    const month = await luxonWork(() => indicators(sql, tenant, { from: '2026-10-01', to: '2026-11-01', granularity: 'day' }));
    let long: Awaited<ReturnType<typeof indicators>> | undefined;
    const years = await luxonWork(async () => {
      long = await indicators(sql, tenant, { from: '2000-01-01', to: '2026-01-01', granularity: 'day' });
    });
    expect(long!.series).toHaveLength(9_497);
    expect(long!.series[0]).toEqual({ start: '2000-01-01T00:00:00+01:00', outgoingCalls: 0, outgoingAnswered: 0, incomingCalls: 0, incomingMissed: 0, talkSeconds: 0, cost: '0.0000' });
    expect(long!.series.at(-1)!.start).toBe('2025-12-31T00:00:00+01:00');
    expect(long!.series.find((p) => p.start.startsWith('2025-07-14'))!.start).toBe('2025-07-14T00:00:00+02:00');
    expect(years).toBe(month);
    expect(years).toBeLessThan(20);
  });

  it('writes starts as luxon does: Z in a universal zone, +00:00 in an IANA zone at offset 0', async () => {
    const { sql } = testDb();
    const t = await cdrTenant(app);
    const q = { from: '2026-03-28T22:00:00Z', to: '2026-03-29T03:00:00Z', granularity: 'hour' } as const;
    for (const zone of ['UTC', 'Etc/UTC', 'Europe/London', 'Asia/Kathmandu', 'America/St_Johns']) {
      const got = await indicators(sql, { ...paris, id: t.id, timezone: zone }, q);
      const from = DateTime.fromISO(q.from, { zone }).startOf('hour');
      const expected = [];
      for (let b = from; b.toMillis() < Date.parse(q.to); b = b.plus({ hours: 1 }).startOf('hour')) expected.push(b.toISO({ suppressMilliseconds: true }));
      expect(got.series.map((p) => p.start), zone).toEqual(expected);
      expect(got.period.from).toBe(DateTime.fromISO(q.from, { zone }).toISO({ suppressMilliseconds: true }));
    }
  });
});
