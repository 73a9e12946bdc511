/**
 * A device's registration status (issue 21, seed 003): the one rule.
 *
 *   registered    a current registration: one whose expiry is after `now`;
 *   aged          none current, but one expired (or was removed) within the
 *                 last 24 hours;
 *   unregistered  none at all, or the last expired more than 24 hours ago.
 *
 * Pure: `now` is given (the service's clock), never read here.
 */
export type DeviceStatus = 'registered' | 'aged' | 'unregistered';
export const DEVICE_STATUSES = ['registered', 'aged', 'unregistered'] as const satisfies readonly DeviceStatus[];

/** How long an expired registration keeps a device `aged`. */
export const AGED_WINDOW_MS = 24 * 60 * 60 * 1000;

/** The status from the latest expiry among a device's registrations (null: it never registered, or those were forgotten). */
export function deviceStatus(latestExpiry: Date | null, now: Date): DeviceStatus {
  if (latestExpiry === null) return 'unregistered';
  const t = latestExpiry.getTime();
  if (t > now.getTime()) return 'registered';
  return now.getTime() - t <= AGED_WINDOW_MS ? 'aged' : 'unregistered';
}

/**
 * The same rule as a range of the latest expiry, for a query that filters by
 * status: `from` inclusive, `before` exclusive, `none` when having no
 * registration at all belongs to the status. deviceStatus(e, now) === s
 * exactly when e lies in statusRange(s, now) (test/devices/engine.test.ts).
 */
export function statusRange(status: DeviceStatus, now: Date): { from?: Date; before?: Date; none: boolean } {
  const agedFrom = new Date(now.getTime() - AGED_WINDOW_MS);
  const justAfterNow = new Date(now.getTime() + 1);
  if (status === 'registered') return { from: justAfterNow, none: false };
  if (status === 'aged') return { from: agedFrom, before: justAfterNow, none: false };
  return { before: agedFrom, none: true };
}
