/**
 * Periods: a calendar month ('YYYY-MM') in a tenant's timezone. Forfaits renew
 * (SPEC §10) and invoices bill (SPEC §9) by these months. Pure: the caller
 * passes the instant, never the clock.
 */
import { DateTime } from 'luxon';

export const PERIOD_RE = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** [start, end) of the month in the zone, as instants. */
export function monthWindow(period: string, zone: string): { start: Date; end: Date } {
  const [y, mo] = period.split('-').map(Number) as [number, number];
  const start = DateTime.fromObject({ year: y, month: mo, day: 1 }, { zone });
  return { start: start.toJSDate(), end: start.plus({ months: 1 }).toJSDate() };
}

/** The period an instant belongs to in the zone. */
export function periodOf(instant: Date, zone: string): string {
  return DateTime.fromJSDate(instant, { zone }).toFormat('yyyy-MM');
}

/** The month before the one `instant` falls in, in the zone. */
export function previousPeriod(instant: Date, zone: string): string {
  return DateTime.fromJSDate(instant, { zone }).startOf('month').minus({ months: 1 }).toFormat('yyyy-MM');
}

/** The start of the month `instant` falls in, in the zone. */
export function monthStart(instant: Date, zone: string): Date {
  return DateTime.fromJSDate(instant, { zone }).startOf('month').toJSDate();
}

/**
 * periodOf for many instants of one zone: the last month's window is kept, so
 * the CDRs of a batch (mostly of one month) cost a comparison each, not a luxon
 * conversion.
 */
export function periodKeyer(zone: string): (instantMs: number) => string {
  let start = 0;
  let end = -1;
  let key = '';
  return (ms) => {
    if (ms >= start && ms < end) return key;
    const local = DateTime.fromMillis(ms, { zone }).startOf('month');
    start = local.toMillis();
    end = local.plus({ months: 1 }).toMillis();
    key = local.toFormat('yyyy-MM');
    return key;
  };
}
