import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sql } from 'kysely';
import type { Db } from '../../db/connection.js';
import type { Person } from '../../db/schema.js';
import type { Principal } from '../access/access.js';
import { recordAudit } from '../audit/audit.js';
import { checkPassword, hashPassword, passwordMatches } from './passwords.js';
import { hashToken, normalizeEmail, principalOfPerson } from './people.js';

/**
 * Sign-in, sessions and their CSRF tokens. A session is a random 256-bit token
 * in an HttpOnly cookie; the database keeps only its SHA-256, so a copy of the
 * table signs nobody in, and disabling a person or resetting a password ends
 * its sessions at once (a signed cookie could not be taken back).
 *
 * Throttling: 5 wrong passwords in a row lock the account for 15 minutes
 * (even the right password is refused meanwhile); 20 failures from one
 * address in 15 minutes refuse that address's sign-ins until they age out.
 */
/** How long a session lasts: idle (each use renews it) and at most from its sign-in; the defaults of cli/config.ts. */
export interface SessionLimits {
  idleMinutes: number;
  lifetimeHours: number;
}
/** Idle 30 minutes, 12 hours at most: what FORFAIT_SESSION_IDLE_MINUTES and FORFAIT_SESSION_HOURS default to. */
export const defaultSessionLimits: SessionLimits = { idleMinutes: 30, lifetimeHours: 12 };
/** A session's last use is written at most this often (not at every request of a page's scripts). */
const renewEveryMs = 60_000;
export const lockAfterFailures = 5;
export const lockMinutes = 15;
export const addressFailures = 20;
export const addressWindowMinutes = 15;

export type SignInResult =
  | { ok: true; token: string; csrf: string; person: Person; expiresAt: Date }
  | { ok: false; reason: 'invalid' | 'locked' | 'throttled' };

export async function signIn(db: Db, input: { email: string; password: string; address: string }, now: Date, limits = defaultSessionLimits): Promise<SignInResult> {
  const email = normalizeEmail(input.email).slice(0, 300);
  const since = new Date(now.getTime() - addressWindowMinutes * 60_000);
  const recent = await db
    .selectFrom('signInFailures')
    .select(sql<string>`count(*)`.as('n'))
    .where('address', '=', input.address)
    .where('at', '>', since)
    .executeTakeFirstOrThrow();
  if (Number(recent.n) >= addressFailures) return { ok: false, reason: 'throttled' };

  const person = await db.selectFrom('people').selectAll().where('email', '=', email).executeTakeFirst();
  if (person?.lockedUntil && person.lockedUntil > now) return { ok: false, reason: 'locked' };
  const usable = person && person.status === 'active' ? person.passwordHash : null;
  const matches = await passwordMatches(usable, input.password.slice(0, 1000));
  if (!matches || !person) {
    await db.insertInto('signInFailures').values({ address: input.address, email, at: now }).execute();
    if (!person) return { ok: false, reason: 'invalid' };
    const counted = await db
      .updateTable('people')
      .set({ failedAttempts: sql`failed_attempts + 1` })
      .where('id', '=', person.id)
      .returning('failedAttempts')
      .executeTakeFirstOrThrow();
    if (counted.failedAttempts >= lockAfterFailures) {
      // the lock and its audit row commit together
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('people')
          .set({ failedAttempts: 0, lockedUntil: new Date(now.getTime() + lockMinutes * 60_000) })
          .where('id', '=', person.id)
          .execute();
        await recordAudit(trx, { kind: 'system', id: 'sign-in', label: input.address }, {
          tenantId: person.tenantId,
          resellerId: person.resellerId,
          action: 'person.lock',
          targetType: 'person',
          targetId: person.id,
          after: { lockedForMinutes: lockMinutes, failures: lockAfterFailures },
        });
      });
      return { ok: false, reason: 'locked' };
    }
    return { ok: false, reason: 'invalid' };
  }
  await db.updateTable('people').set({ failedAttempts: 0, lockedUntil: null }).where('id', '=', person.id).execute();
  const token = randomBytes(32).toString('base64url');
  const csrf = randomBytes(32).toString('base64url');
  const expiresAt = new Date(now.getTime() + limits.lifetimeHours * 3_600_000);
  await db.insertInto('sessions').values({ tokenHash: hashToken(token), personId: person.id, csrf, address: input.address, createdAt: now, expiresAt, lastSeenAt: now }).execute();
  // old failures of this address no longer count against it once someone signs in from it
  await db.deleteFrom('signInFailures').where('at', '<', since).execute();
  return { ok: true, token, csrf, person, expiresAt };
}

export interface Session {
  person: Person;
  principal: Principal;
  csrf: string;
}

/**
 * The session of a cookie's token: undefined when unknown, past its lifetime,
 * idle longer than `limits.idleMinutes`, or its person is no longer active.
 * A use renews the idle time (written at most once a minute).
 */
export async function sessionOf(db: Db, token: string, now: Date, limits = defaultSessionLimits): Promise<Session | undefined> {
  if (!token || token.length > 100) return undefined;
  const tokenHash = hashToken(token);
  const row = await db
    .selectFrom('sessions')
    .innerJoin('people', 'people.id', 'sessions.personId')
    .selectAll('people')
    .select(['sessions.csrf', 'sessions.lastSeenAt'])
    .where('sessions.tokenHash', '=', tokenHash)
    .where('sessions.expiresAt', '>', now)
    .where('sessions.lastSeenAt', '>', new Date(now.getTime() - limits.idleMinutes * 60_000))
    .where('people.status', '=', 'active')
    .executeTakeFirst();
  if (!row) return undefined;
  const { csrf, lastSeenAt, ...person } = row;
  if (now.getTime() - lastSeenAt.getTime() >= renewEveryMs) {
    await db.updateTable('sessions').set({ lastSeenAt: now }).where('tokenHash', '=', tokenHash).where('lastSeenAt', '<', now).execute();
  }
  return { person, principal: await principalOfPerson(db, person), csrf };
}

export async function signOut(db: Db, token: string): Promise<void> {
  await db.deleteFrom('sessions').where('tokenHash', '=', hashToken(token)).execute();
}

/** The one CSRF comparison (constant time): the API's header check and the portal's own forms both call it. */
export function csrfMatches(expected: string, presented: string | undefined): boolean {
  if (!presented) return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * A signed-in person changes its password: the current one first (a session
 * left open on a shared screen cannot take the account), then its other
 * sessions end; this one goes on.
 */
export async function changePassword(db: Db, session: { person: Person; token: string }, current: string, next: string, now: Date): Promise<'changed' | 'wrong'> {
  checkPassword(next, 'newPassword');
  const row = await db.selectFrom('people').select('passwordHash').where('id', '=', session.person.id).executeTakeFirstOrThrow();
  if (!(await passwordMatches(row.passwordHash, current.slice(0, 1000)))) return 'wrong';
  const passwordHash = await hashPassword(next);
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('people').set({ passwordHash, updatedAt: now }).where('id', '=', session.person.id).execute();
    await trx.deleteFrom('sessions').where('personId', '=', session.person.id).where('tokenHash', '!=', hashToken(session.token)).execute();
    await recordAudit(trx, { kind: 'person', id: session.person.id, label: session.person.email }, {
      tenantId: session.person.tenantId,
      resellerId: session.person.resellerId,
      action: 'person.password',
      targetType: 'person',
      targetId: session.person.id,
    });
  });
  return 'changed';
}
