/** Invoice periods as the API takes them. */
import { monthWindow, PERIOD_RE } from '../../engine/periods.js';
import { ValidationError } from '../shared/errors.js';

/** '2026-10' or a 400 naming the field. */
export function parsePeriod(value: string, field = 'period'): string {
  const m = PERIOD_RE.exec(value);
  if (!m || Number(m[1]) < 2000 || Number(m[1]) > 2999) {
    throw new ValidationError(`invalid ${field}`, [{ field, value, message: 'a month as YYYY-MM, e.g. 2026-10' }]);
  }
  return value;
}

/**
 * The instants a tenant's invoice of `period` bills: the month in its zone,
 * starting at trialEndsAt when the trial ends inside it (the trial part is free).
 */
export function billedWindow(period: string, tenant: { timezone: string; trialEndsAt: Date | null }): { start: Date; from: Date; end: Date } {
  const { start, end } = monthWindow(period, tenant.timezone);
  const from = tenant.trialEndsAt !== null && tenant.trialEndsAt > start ? tenant.trialEndsAt : start;
  return { start, from, end };
}
