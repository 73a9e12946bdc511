import { createHash, randomBytes } from 'node:crypto';
import { validate as isUuid } from 'uuid';
import { isUniqueViolation } from '../../db/errors.js';
import type { Db, Trx } from '../../db/connection.js';
import type { Person } from '../../db/schema.js';
import { checkGrantableRoles, permissionsOfRoles, type Permission, type Principal } from '../access/access.js';
import { actorOf, recordAudit } from '../audit/audit.js';
import type { Mailer } from '../mail/mailer.js';
import { writeToString } from 'fast-csv';
import { guardText } from '../exports/csvCells.js';
import { readCsvRecords } from '../shared/csvRecords.js';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError, type FieldError } from '../shared/errors.js';
import { mailTexts } from './messages.js';
import { checkPassword, generatePassword, hashPassword } from './passwords.js';

/**
 * People of the portal (issue 20): a person has an email, a name, a language,
 * a tenant (or none: the reseller's own), the same roles keys have, and a
 * status (invited until a password is chosen, active, disabled). Created by an
 * invitation (a one-time link that expires), with a generated password shown
 * once, or by CSV; every change is in the audit trail.
 */
export const invitationHours = 72;
export const resetMinutes = 60;

export interface PeopleContext {
  mailer: Mailer;
  /** The portal's address for the links in mails, e.g. https://forfait.example.com */
  linkBase: string;
  now: Date;
}

export interface PersonView {
  id: string;
  tenantId: string | null;
  email: string;
  name: string;
  locale: 'fr' | 'en';
  roles: string[];
  status: 'invited' | 'active' | 'disabled';
  locked: boolean;
  createdAt: string;
  updatedAt: string;
}

export function personView(p: Person, now = new Date()): PersonView {
  return {
    id: p.id,
    tenantId: p.tenantId,
    email: p.email,
    name: p.name,
    locale: p.locale,
    roles: p.roles,
    status: p.status,
    locked: p.lockedUntil !== null && p.lockedUntil > now,
    createdAt: p.createdAt.toISOString(),
    updatedAt: p.updatedAt.toISOString(),
  };
}

export const emailRe = /^[^\s@,;]{1,64}@[^\s@,;]{1,190}\.[^\s@,;]{2,}$/;
export const normalizeEmail = (e: string) => e.trim().toLowerCase();

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}

/** The principal of a person: a tenant person's permissions are its roles', read as a key's are. */
export async function principalOfPerson(db: Db, p: Pick<Person, 'id' | 'email' | 'tenantId' | 'resellerId' | 'roles'>): Promise<Principal> {
  const person = { id: p.id, email: p.email };
  if (p.tenantId === null) return { kind: 'reseller', keyId: `person:${p.id}`, resellerId: p.resellerId, person };
  const permissions = await permissionsOfRoles(db, p.tenantId, p.roles);
  return { kind: 'tenant', keyId: `person:${p.id}`, tenantId: p.tenantId, pbx: false, permissions, person };
}

/** The reseller of a principal's scope, and the tenant a new person goes to. */
async function placeOf(db: Db | Trx, creator: Principal, tenantId: string | null | undefined): Promise<{ resellerId: string; tenantId: string | null }> {
  if (creator.kind === 'tenant') {
    const t = await db.selectFrom('tenants').select('resellerId').where('id', '=', creator.tenantId).executeTakeFirstOrThrow();
    return { resellerId: t.resellerId, tenantId: creator.tenantId };
  }
  if (!tenantId) return { resellerId: creator.resellerId, tenantId: null };
  if (!isUuid(tenantId)) throw new NotFoundError('tenant');
  const t = await db.selectFrom('tenants').select('id').where('id', '=', tenantId).where('resellerId', '=', creator.resellerId).executeTakeFirst();
  if (!t) throw new NotFoundError('tenant');
  return { resellerId: creator.resellerId, tenantId };
}

/** A person the principal may see: its tenant's, or for a reseller its own and its tenants'. 404 otherwise. */
export async function findPerson(db: Db | Trx, principal: Principal, id: string): Promise<Person> {
  if (!isUuid(id)) throw new NotFoundError('person');
  let q = db.selectFrom('people').selectAll('people').where('people.id', '=', id);
  q = principal.kind === 'tenant' ? q.where('people.tenantId', '=', principal.tenantId) : q.where('people.resellerId', '=', principal.resellerId);
  const p = await q.executeTakeFirst();
  if (!p) throw new NotFoundError('person');
  return p;
}

export async function listPeople(db: Db, principal: Principal, options: { tenantId?: string; limit: number; cursor?: string }) {
  let q = db.selectFrom('people').selectAll().orderBy('email').limit(options.limit + 1);
  if (principal.kind === 'tenant') q = q.where('tenantId', '=', principal.tenantId);
  else {
    const place = await placeOf(db, principal, options.tenantId);
    q = q.where('resellerId', '=', place.resellerId);
    q = place.tenantId ? q.where('tenantId', '=', place.tenantId) : q.where('tenantId', 'is', null);
  }
  if (options.cursor) q = q.where('email', '>', options.cursor);
  const rows = await q.execute();
  const items = rows.slice(0, options.limit).map((p) => personView(p));
  return { items, nextCursor: rows.length > options.limit ? items[items.length - 1]!.email : null };
}

/**
 * The people as a CSV the import reads back (`email,name,roles,locale`, a
 * header line, roles separated by `|`): a tenant's, or a reseller's own or
 * (with tenantId) one of its tenants'. Text cells guarded against formulas.
 */
export async function peopleCsv(db: Db, principal: Principal, tenantId?: string): Promise<string> {
  const rows: string[][] = [['email', 'name', 'roles', 'locale']];
  let cursor: string | undefined;
  do {
    const page = await listPeople(db, principal, { tenantId, limit: 1000, cursor });
    for (const p of page.items) rows.push([guardText(p.email), guardText(p.name), guardText(p.roles.join('|')), p.locale]);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return writeToString(rows, { rowDelimiter: '\r\n', includeEndRowDelimiter: true });
}

export interface PersonInput {
  email: string;
  name: string;
  locale?: 'fr' | 'en';
  roles?: string[];
  /** A reseller's principal only: the tenant the person belongs to (absent: the reseller's own person). */
  tenantId?: string | null;
  /** invitation: a one-time link by mail; password: a generated password, answered once. */
  delivery: 'invitation' | 'password';
}

interface Outgoing {
  person: Person;
  token: string;
}

async function issueToken(trx: Trx | Db, personId: string, purpose: 'invitation' | 'reset', now: Date): Promise<string> {
  const token = randomBytes(32).toString('base64url');
  const ttl = purpose === 'invitation' ? invitationHours * 3_600_000 : resetMinutes * 60_000;
  // a new link replaces the older ones of the same purpose
  await trx.updateTable('personTokens').set({ usedAt: now }).where('personId', '=', personId).where('purpose', '=', purpose).where('usedAt', 'is', null).execute();
  await trx
    .insertInto('personTokens')
    .values({ tokenHash: hashToken(token), personId, purpose, expiresAt: new Date(now.getTime() + ttl), createdAt: now })
    .execute();
  return token;
}

function link(ctx: PeopleContext, purpose: 'invitation' | 'reset', token: string): string {
  const page = purpose === 'invitation' ? 'accept' : 'reset';
  return `${ctx.linkBase.replace(/\/+$/, '')}/portal/${page}?token=${encodeURIComponent(token)}`;
}

async function sendInvitation(ctx: PeopleContext, by: string, o: Outgoing): Promise<void> {
  const url = link(ctx, 'invitation', o.token);
  const m = mailTexts[o.person.locale].invitation({ name: o.person.name, by, link: url, hours: invitationHours });
  await ctx.mailer.send({ to: o.person.email, subject: m.subject, text: m.text, link: url });
}

function byWhom(creator: Principal): string {
  return creator.person?.email ?? 'Forfait';
}

async function checkInput(db: Db | Trx, creator: Principal, place: { tenantId: string | null }, input: PersonInput, line?: number): Promise<FieldError[]> {
  const errors: FieldError[] = [];
  const at = line === undefined ? {} : { line };
  if (!emailRe.test(normalizeEmail(input.email))) errors.push({ ...at, field: 'email', value: input.email, message: 'not an email address' });
  if (!input.name.trim() || input.name.length > 200) errors.push({ ...at, field: 'name', value: input.name, message: '1 to 200 characters' });
  if (place.tenantId) {
    try {
      await checkGrantableRoles(db, creator, place.tenantId, input.roles ?? []);
    } catch (err) {
      if (err instanceof ValidationError) errors.push(...err.details.map((d) => ({ ...at, ...d })));
      else throw err;
    }
  }
  return errors;
}

async function insertPerson(trx: Trx, creator: Principal, place: { resellerId: string; tenantId: string | null }, input: PersonInput, now: Date) {
  const password = input.delivery === 'password' ? generatePassword() : undefined;
  try {
    const person = await trx
      .insertInto('people')
      .values({
        resellerId: place.resellerId,
        tenantId: place.tenantId,
        email: normalizeEmail(input.email),
        name: input.name.trim(),
        locale: input.locale ?? 'fr',
        roles: place.tenantId ? (input.roles ?? []) : [],
        status: password ? 'active' : 'invited',
        passwordHash: password ? await hashPassword(password) : null,
        createdBy: creator.keyId,
        createdAt: now,
        updatedAt: now,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    await recordAudit(trx, actorOf(creator), {
      tenantId: place.tenantId,
      resellerId: place.resellerId,
      action: 'person.create',
      targetType: 'person',
      targetId: person.id,
      after: { ...personView(person, now), delivery: input.delivery },
    });
    const token = password ? undefined : await issueToken(trx, person.id, 'invitation', now);
    return { person, password, token };
  } catch (err) {
    if (isUniqueViolation(err, 'people_email_key')) {
      throw new ConflictError('CONFLICT', `a person with the email ${input.email} already exists`, [{ field: 'email', value: input.email, message: 'already taken' }]);
    }
    throw err;
  }
}

/** A new person; with delivery "password" the generated password is in the answer, once (it is stored only hashed). */
export async function createPerson(db: Db, creator: Principal, input: PersonInput, ctx: PeopleContext): Promise<{ person: PersonView; password?: string }> {
  if (creator.kind === 'tenant' && input.tenantId && input.tenantId !== creator.tenantId) throw new NotFoundError('tenant');
  const place = await placeOf(db, creator, input.tenantId);
  const errors = await checkInput(db, creator, place, input);
  if (errors.length) throw new ValidationError('invalid person', errors);
  const made = await db.transaction().execute((trx) => insertPerson(trx, creator, place, input, ctx.now));
  if (made.token) await sendInvitation(ctx, byWhom(creator), { person: made.person, token: made.token });
  return { person: personView(made.person, ctx.now), ...(made.password ? { password: made.password } : {}) };
}

/**
 * People from a CSV: `email,name,roles[,locale]` a line (roles separated by
 * `|`; a header line starting with "email" is skipped). Every line is checked
 * first: one error and nothing is written, the answer names each line at
 * fault. Each person is invited by mail.
 */
export async function importPeople(db: Db, creator: Principal, csv: string, ctx: PeopleContext & { tenantId?: string }): Promise<{ created: PersonView[] }> {
  const place = await placeOf(db, creator, creator.kind === 'tenant' ? undefined : ctx.tenantId);
  const body = csv.replace(/^\uFEFF/, '');
  const delimiter = body.split('\n', 1)[0]!.includes(';') && !body.split('\n', 1)[0]!.includes(',') ? ';' : ',';
  const records = await readCsvRecords(body, delimiter);
  const errors: FieldError[] = [];
  const inputs: PersonInput[] = [];
  const seen = new Map<string, number>();
  for (const r of records) {
    if (!('cells' in r)) {
      errors.push({ line: r.line, field: r.field, value: r.value, message: r.message });
      continue;
    }
    const cells = r.cells.map((c) => c.trim());
    if (cells.every((c) => c === '')) continue;
    if (r.line === 1 && cells[0]?.toLowerCase() === 'email') continue;
    if (cells.length < 3 || cells.length > 4) {
      errors.push({ line: r.line, field: 'row', value: r.cells.join(delimiter).slice(0, 200), message: `expected 3 or 4 fields (email, name, roles, locale), got ${cells.length}` });
      continue;
    }
    const [email, name, roles, locale = ''] = cells as [string, string, string, string?];
    if (locale !== '' && locale !== 'fr' && locale !== 'en') errors.push({ line: r.line, field: 'locale', value: locale, message: 'fr or en' });
    const input: PersonInput = {
      email,
      name,
      roles: roles.split('|').map((x) => x.trim()).filter(Boolean),
      locale: locale === 'en' ? 'en' : 'fr',
      delivery: 'invitation',
    };
    errors.push(...(await checkInput(db, creator, place, input, r.line)));
    const key = normalizeEmail(email);
    const first = seen.get(key);
    if (first !== undefined) errors.push({ line: r.line, field: 'email', value: email, message: `the same email as line ${first}` });
    seen.set(key, r.line);
    inputs.push(input);
  }
  if (errors.length === 0 && inputs.length === 0) errors.push({ field: 'body', message: 'no person in the file' });
  if (errors.length === 0) {
    const taken = await db.selectFrom('people').select('email').where('email', 'in', [...seen.keys()]).execute();
    for (const t of taken) errors.push({ line: seen.get(t.email), field: 'email', value: t.email, message: 'already taken' });
  }
  if (errors.length) throw new ValidationError(`${errors.length} error(s) in the file; nothing was written`, errors.sort((a, b) => (a.line ?? 0) - (b.line ?? 0)));
  const made = await db.transaction().execute(async (trx) => {
    const out: Outgoing[] = [];
    for (const input of inputs) {
      const r = await insertPerson(trx, creator, place, input, ctx.now);
      out.push({ person: r.person, token: r.token! });
    }
    return out;
  });
  for (const m of made) await sendInvitation(ctx, byWhom(creator), m);
  return { created: made.map((m) => personView(m.person, ctx.now)) };
}

export interface PersonPatch {
  name?: string;
  locale?: 'fr' | 'en';
  roles?: string[];
  /** disabled: signed out at once and refused; active: enabled again and unlocked (an invited person stays invited). */
  status?: 'active' | 'disabled';
}

/** What a tenant principal holds that a person has: a person holding more is not its to change (like keys). */
async function checkReach(db: Db | Trx, actor: Principal, p: Person): Promise<void> {
  if (actor.kind !== 'tenant' || p.tenantId === null) return;
  const held: ReadonlySet<Permission> = await permissionsOfRoles(db, p.tenantId, p.roles);
  const beyond = [...held].filter((x) => !actor.permissions.has(x));
  if (beyond.length) throw new ForbiddenError(`cannot change a person holding permissions you do not hold: ${beyond.join(', ')}`);
}

export async function updatePerson(db: Db, actor: Principal, id: string, patch: PersonPatch, now: Date): Promise<PersonView> {
  return db.transaction().execute(async (trx) => {
    const before = await findPerson(trx, actor, id);
    await checkReach(trx, actor, before);
    if (patch.name !== undefined && (!patch.name.trim() || patch.name.length > 200)) {
      throw new ValidationError('invalid name', [{ field: 'name', value: patch.name, message: '1 to 200 characters' }]);
    }
    if (patch.roles !== undefined && before.tenantId) await checkGrantableRoles(trx, actor, before.tenantId, patch.roles);
    if (patch.status === 'disabled' && actor.person?.id === before.id) {
      throw new ValidationError('you cannot disable yourself', [{ field: 'status', value: 'disabled', message: 'ask another administrator' }]);
    }
    const status = patch.status === undefined ? before.status : patch.status === 'disabled' ? 'disabled' : before.passwordHash ? 'active' : 'invited';
    const after = await trx
      .updateTable('people')
      .set({
        ...(patch.name !== undefined && { name: patch.name.trim() }),
        ...(patch.locale !== undefined && { locale: patch.locale }),
        ...(patch.roles !== undefined && before.tenantId && { roles: patch.roles }),
        status,
        ...(patch.status === 'active' && { lockedUntil: null, failedAttempts: 0 }),
        updatedAt: now,
      })
      .where('id', '=', before.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    if (status === 'disabled') await trx.deleteFrom('sessions').where('personId', '=', before.id).execute();
    await recordAudit(trx, actorOf(actor), {
      tenantId: before.tenantId,
      resellerId: before.resellerId,
      action: 'person.update',
      targetType: 'person',
      targetId: before.id,
      before: personView(before, now),
      after: personView(after, now),
    });
    return personView(after, now);
  });
}

/** Sends a person a new invitation link (an invited person) or a reset link (an active one), on an administrator's request. */
export async function sendLink(db: Db, actor: Principal, id: string, ctx: PeopleContext): Promise<{ sent: 'invitation' | 'reset' }> {
  const p = await findPerson(db, actor, id);
  await checkReach(db, actor, p);
  if (p.status === 'disabled') throw new ConflictError('CONFLICT', 'the person is disabled: enable it first');
  const purpose = p.status === 'invited' ? 'invitation' : 'reset';
  // the link and its audit row commit together; the mail goes once they have
  const token = await db.transaction().execute(async (trx) => {
    const t = await issueToken(trx, p.id, purpose, ctx.now);
    await recordAudit(trx, actorOf(actor), { tenantId: p.tenantId, resellerId: p.resellerId, action: `person.${purpose}`, targetType: 'person', targetId: p.id });
    return t;
  });
  if (purpose === 'invitation') await sendInvitation(ctx, byWhom(actor), { person: p, token });
  else await mailReset(ctx, p, token);
  return { sent: purpose };
}

async function mailReset(ctx: PeopleContext, p: Person, token: string): Promise<void> {
  const url = link(ctx, 'reset', token);
  const m = mailTexts[p.locale].reset({ name: p.name, link: url, minutes: resetMinutes });
  await ctx.mailer.send({ to: p.email, subject: m.subject, text: m.text, link: url });
}

/** "Forgot password": a reset link to an active person; the same silence for any other address (no account discovery). */
export async function requestReset(db: Db, email: string, ctx: PeopleContext): Promise<void> {
  const p = await db.selectFrom('people').selectAll().where('email', '=', normalizeEmail(email)).where('status', '=', 'active').executeTakeFirst();
  if (!p) return;
  await mailReset(ctx, p, await issueToken(db, p.id, 'reset', ctx.now));
}

/** The person a link is for, when it is still good (unused, unexpired, person not disabled). */
export async function personOfToken(db: Db | Trx, purpose: 'invitation' | 'reset', token: string, now: Date): Promise<Person | undefined> {
  if (!token || token.length > 100) return undefined;
  return db
    .selectFrom('personTokens')
    .innerJoin('people', 'people.id', 'personTokens.personId')
    .selectAll('people')
    .where('personTokens.tokenHash', '=', hashToken(token))
    .where('personTokens.purpose', '=', purpose)
    .where('personTokens.usedAt', 'is', null)
    .where('personTokens.expiresAt', '>', now)
    .where('people.status', '!=', 'disabled')
    .executeTakeFirst();
}

/**
 * Accepts an invitation or a reset: the password is set, the link used up,
 * the person active and unlocked, its other sessions ended. Undefined when
 * the link is unknown, used or expired.
 */
export async function redeemToken(db: Db, purpose: 'invitation' | 'reset', token: string, password: string, now: Date): Promise<Person | undefined> {
  checkPassword(password);
  const passwordHash = await hashPassword(password);
  return db.transaction().execute(async (trx) => {
    const p = await personOfToken(trx, purpose, token, now);
    if (!p) return undefined;
    const used = await trx
      .updateTable('personTokens')
      .set({ usedAt: now })
      .where('tokenHash', '=', hashToken(token))
      .where('usedAt', 'is', null)
      .returning('personId')
      .executeTakeFirst();
    if (!used) return undefined; // used at the same moment by another request
    const after = await trx
      .updateTable('people')
      .set({ passwordHash, status: 'active', failedAttempts: 0, lockedUntil: null, updatedAt: now })
      .where('id', '=', p.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    await trx.deleteFrom('sessions').where('personId', '=', p.id).execute();
    await recordAudit(trx, { kind: 'person', id: p.id, label: p.email }, {
      tenantId: p.tenantId,
      resellerId: p.resellerId,
      action: purpose === 'invitation' ? 'person.accept' : 'person.reset',
      targetType: 'person',
      targetId: p.id,
      before: { status: p.status },
      after: { status: after.status },
    });
    return after;
  });
}
