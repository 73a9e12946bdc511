/**
 * InstantReader remembers days, offsets and local hours. Whatever the order —
 * same hour, other zone, other offset, fractions, invalid minutes — it must
 * answer what luxon answers.
 */
import { DateTime } from 'luxon';
import { describe, expect, it } from 'vitest';
import { InstantReader } from '../../services/cdrs/time.js';

function expected(s: string, zone: string): number | undefined {
  const dt = DateTime.fromISO(s.replace(' ', 'T'), { zone, setZone: true });
  return dt.isValid ? dt.toMillis() : undefined;
}

describe('InstantReader', () => {
  it('equals luxon whatever the order of the instants', () => {
    const texts = [
      '2026-11-03T10:15:00+01:00', '2026-11-03T10:15:07+01:00', '2026-11-03T10:59:59+01:00', '2026-11-03T10:15:00Z',
      '2026-11-03T10:15:00', '2026-11-03T10:16:30', '2026-11-03 10:16:31', '2026-11-03T10:16:31.250', '2026-11-03T10:17:02',
      '2026-11-03T10:60:00+01:00', '2026-11-03T10:15:60', '2026-11-03T10:1a:00', '2026-11-03T10:15:00+0100', '2026-11-03T10:15:09+0100',
      '2026-11-03T10:15:00-03:30', '2026-11-03T10:15:01-03:30', '2026-10-25T02:30:00', '2026-10-25T02:45:10', '2026-03-29T02:30:00',
      '2026-03-29T02:40:00', '2026-02-31T10:15:00', '2026-11-03T10:15', '2026-11-03T10:15:00+01:00x', '2026-11-03T11:00:00+01:00',
    ];
    const rnd = (() => {
      let a = 12345;
      return () => ((a = (a * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    })();
    const readers = new Map(['Europe/Paris', 'Asia/Kolkata'].map((z) => [z, new InstantReader(z)]));
    for (let round = 0; round < 400; round++) {
      const s = texts[Math.floor(rnd() * texts.length)]!;
      const zone = rnd() < 0.7 ? 'Europe/Paris' : 'Asia/Kolkata';
      const got = readers.get(zone)!.read(s);
      if (s === '2026-03-29T02:30:00' || s === '2026-03-29T02:40:00') {
        // in Paris's spring-forward gap: the hour's offset after the change (luxon moves the time forward)
        if (zone === 'Europe/Paris') expect(got, s).toBe(Date.parse(s + '+02:00'));
        continue;
      }
      expect(got, `${s} in ${zone}`).toBe(s.endsWith('x') || s.includes(':60') || s.includes('1a') ? undefined : expected(s, zone));
    }
  });

  it('refuses what no calendar or clock has, and offsets beyond ±23:59', () => {
    const paris = new InstantReader('Europe/Paris');
    for (const s of ['2026-02-29T10:00:00', '2026-04-31T10:00:00Z', '2026-13-01T10:00:00', '2026-11-03T24:00:00', '2026-11-03T10:15:00+24:00', '2026-11-03T10:15:00+01:60', 'yesterday']) {
      expect(paris.read(s), s).toBeUndefined();
    }
    expect(paris.read('2028-02-29T10:00:00')).toBe(Date.parse('2028-02-29T10:00:00+01:00'));
    expect(paris.read('2026-11-03T10:15:00+23:59')).toBe(Date.parse('2026-11-03T10:15:00+23:59'));
    expect(paris.read(' 2026-11-03 10:15:00.123456789 ')).toBe(Date.parse('2026-11-03T10:15:00.123+01:00'));
    // other ISO 8601 forms: luxon's
    expect(paris.read('2026-11-03')).toBe(Date.parse('2026-11-03T00:00:00+01:00'));
    expect(paris.read('20261103T101500Z')).toBe(Date.parse('2026-11-03T10:15:00Z'));
  });
});
