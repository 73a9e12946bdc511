// Users of a tenant's directory (SPEC §2 User, §7): create, read, change,
// delete, search. Balances are not a field here: only the ledger moves them.
import { validate as isUuid } from 'uuid';
import { isUniqueViolation } from '../../db/errors.js';
import { sql } from 'kysely';
import { withTransaction, type Db, type Trx } from '../../db/connection.js';
import type { User } from '../../db/schema.js';
import { periodOf } from '../../engine/periods.js';
import { ConflictError, NotFoundError, ValidationError, type FieldError } from '../shared/errors.js';
import {
  identifiantProblem,
  matriculeProblem,
  nameProblem,
  NumberParser,
  numbersParam,
  slotCount,
  slotsFromDb,
  userView,
  type AccountStatus,
  type UserView,
} from './fields.js';
import { countUsers, directoryTenant, lockDirectory, type DirectoryTenant } from './repo.js';
import { recordAudit, type Actor } from '../audit/audit.js';

/**
 * Authorized numbers as given in JSON: an array of up to 10 slots (slot 1
 * first; missing slots are empty) or an object keyed "1"…"10". On PATCH the
 * array replaces all 10 slots and the object changes only the slots it names.
 * Empty strings and null both mean an empty slot.
 */
export type AuthorizedNumbersInput = (string | null)[] | Record<string, string | null>;

export interface UserInput {
  fullName: string;
  matricule: string;
  identifiant: string;
  generalState?: string | null;
  accountStatus?: AccountStatus;
  forfaitMinutes?: number;
  billingEnabled?: boolean;
  authorizedNumbers?: AuthorizedNumbersInput;
}

export type UserPatch = Partial<UserInput>;

/** Parses the slots given into E.164, starting from `base` (the current 10). */
export function resolveNumbers(
  input: AuthorizedNumbersInput,
  base: readonly (string | null)[],
  parser: NumberParser,
  errors: FieldError[],
): (string | null)[] {
  const slots: (string | null)[] = Array.from({ length: slotCount }, (_, i) => base[i] ?? null);
  const assign = (slot: number, value: string | null) => {
    const text = value === null ? '' : value.trim();
    if (text === '') {
      slots[slot - 1] = null;
      return;
    }
    const parsed = parser.parse(text);
    if (parsed.ok) slots[slot - 1] = parsed.e164;
    else errors.push({ field: `authorizedNumbers.${slot}`, value: text, message: parsed.message });
  };
  if (Array.isArray(input)) {
    if (input.length > slotCount) {
      errors.push({ field: 'authorizedNumbers', message: `at most ${slotCount} numbers (slots 1 to ${slotCount})` });
      return slots;
    }
    for (let i = 0; i < slotCount; i++) assign(i + 1, input[i] ?? null);
  } else {
    for (const [key, value] of Object.entries(input)) {
      const slot = /^(10|[1-9])$/.test(key) ? Number(key) : NaN;
      if (Number.isNaN(slot)) errors.push({ field: `authorizedNumbers.${key}`, message: `slots are numbered 1 to ${slotCount}` });
      else assign(slot, value);
    }
  }
  return slots;
}

function checkFields(input: UserPatch, errors: FieldError[]): void {
  if (input.fullName !== undefined) {
    const p = nameProblem(input.fullName.trim());
    if (p) errors.push({ field: 'fullName', value: input.fullName, message: p });
  }
  if (input.matricule !== undefined) {
    const p = matriculeProblem(input.matricule);
    if (p) errors.push({ field: 'matricule', value: input.matricule, message: p });
  }
  if (input.identifiant !== undefined) {
    const p = identifiantProblem(input.identifiant);
    if (p) errors.push({ field: 'identifiant', value: input.identifiant, message: p });
  }
}

/** Writes the user's row; a unique violation becomes a CONFLICT naming the field a caller must change. */
async function writeUser(input: UserPatch, write: () => Promise<User>): Promise<User> {
  try {
    return await write();
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const field = err.constraint_name === 'users_identifiant_uq' ? 'identifiant' : 'matricule';
    const value = field === 'identifiant' ? input.identifiant : input.matricule;
    throw new ConflictError('CONFLICT', `another user of this tenant already has ${field} ${value ?? ''}`.trim(), [
      { field, ...(value !== undefined ? { value } : {}), message: 'already used by another user' },
    ]);
  }
}

export async function createUser(db: Db, tenantId: string, input: UserInput, actor?: Actor): Promise<UserView> {
  const errors: FieldError[] = [];
  checkFields(input, errors);
  return withTransaction(db, async (trx) => {
    // the lock makes "count, then insert" safe against concurrent creations and imports
    const tenant = await lockDirectory(trx, tenantId);
    const numbers = resolveNumbers(input.authorizedNumbers ?? [], [], new NumberParser(tenant.country), errors);
    if (errors.length) throw new ValidationError('invalid user', errors);
    const count = await countUsers(trx, tenantId);
    if (count + 1 > tenant.maxUsers) {
      throw new ConflictError('LICENCE_LIMIT', `product type ${tenant.productType} allows ${tenant.maxUsers} users and the directory has ${count}`);
    }
    const row = await writeUser(input, () =>
      trx
        .insertInto('users')
        .values({
          tenantId,
          fullName: input.fullName.trim(),
          matricule: input.matricule,
          identifiant: input.identifiant,
          generalState: input.generalState ?? null,
          accountStatus: input.accountStatus ?? 'enabled',
          forfaitMinutes: input.forfaitMinutes ?? tenant.defaultForfaitMinutes,
          forfaitPeriod: periodOf(new Date(), tenant.timezone),
          billingEnabled: input.billingEnabled ?? true,
          authorizedNumbers: numbersParam(numbers),
          balance: '0',
        })
        .returningAll()
        .executeTakeFirstOrThrow(),
    );
    const view = userView(row, tenant);
    if (actor) await recordAudit(trx, actor, { tenantId, action: 'user.create', targetType: 'user', targetId: row.id, after: view });
    return view;
  });
}

async function findUser(db: Db | Trx, tenantId: string, id: string, lock = false): Promise<User> {
  if (!isUuid(id)) throw new NotFoundError('user');
  let q = db.selectFrom('users').selectAll().where('tenantId', '=', tenantId).where('id', '=', id);
  if (lock && db.isTransaction) q = q.forUpdate();
  const row = await q.executeTakeFirst();
  if (!row) throw new NotFoundError('user');
  return row;
}


/**
 * Whose call history `id` is: a user of the directory, or a deleted one whose
 * CDRs stay (identifiant null then). NotFoundError when the tenant has neither.
 */
export async function callHistoryOwner(db: Db, tenantId: string, id: string): Promise<{ identifiant: string | null }> {
  if (!isUuid(id)) throw new NotFoundError('user');
  const row = await db
    .selectNoFrom((eb) => eb.selectFrom('users').select('identifiant').where('tenantId', '=', tenantId).where('id', '=', id).as('identifiant'))
    .where((eb) =>
      eb.or([
        eb.exists(eb.selectFrom('users').select('id').where('tenantId', '=', tenantId).where('id', '=', id)),
        eb.exists(eb.selectFrom('cdrs').select('id').where('tenantId', '=', tenantId).where('userId', '=', id)),
      ]),
    )
    .executeTakeFirst();
  if (!row) throw new NotFoundError('user');
  return row;
}

export async function getUser(db: Db, tenantId: string, id: string): Promise<{ user: UserView; tenant: DirectoryTenant }> {
  const row = await findUser(db, tenantId, id);
  const tenant = await directoryTenant(db, tenantId);
  return { user: userView(row, tenant), tenant };
}

export async function updateUser(db: Db, tenantId: string, id: string, patch: UserPatch, actor?: Actor): Promise<UserView> {
  const errors: FieldError[] = [];
  checkFields(patch, errors);
  return withTransaction(db, async (trx) => {
    const tenant = await lockDirectory(trx, tenantId);
    const current = await findUser(trx, tenantId, id, true);
    const currentNumbers = slotsFromDb(current.authorizedNumbers);
    const numbers =
      patch.authorizedNumbers === undefined
        ? currentNumbers
        : resolveNumbers(patch.authorizedNumbers, Array.isArray(patch.authorizedNumbers) ? [] : currentNumbers, new NumberParser(tenant.country), errors);
    if (errors.length) throw new ValidationError('invalid user', errors);
    const row = await writeUser(patch, () =>
      trx
        .updateTable('users')
        .set({
          ...(patch.fullName !== undefined ? { fullName: patch.fullName.trim() } : {}),
          ...(patch.matricule !== undefined ? { matricule: patch.matricule } : {}),
          ...(patch.identifiant !== undefined ? { identifiant: patch.identifiant } : {}),
          ...(patch.generalState !== undefined ? { generalState: patch.generalState } : {}),
          ...(patch.accountStatus !== undefined ? { accountStatus: patch.accountStatus } : {}),
          ...(patch.forfaitMinutes !== undefined ? { forfaitMinutes: patch.forfaitMinutes } : {}),
          ...(patch.billingEnabled !== undefined ? { billingEnabled: patch.billingEnabled } : {}),
          authorizedNumbers: numbersParam(numbers),
          updatedAt: sql`now()`,
        })
        .where('tenantId', '=', tenantId)
        .where('id', '=', id)
        .returningAll()
        .executeTakeFirstOrThrow(),
    );
    const view = userView(row, tenant);
    if (actor) await recordAudit(trx, actor, { tenantId, action: 'user.update', targetType: 'user', targetId: id, before: userView(current, tenant), after: view });
    return view;
  });
}

/** Removes the user from the directory; its ledger entries and CDRs stay. */
export async function deleteUser(db: Db, tenantId: string, id: string, actor?: Actor): Promise<UserView> {
  return withTransaction(db, async (trx) => {
    const tenant = await lockDirectory(trx, tenantId);
    const current = await findUser(trx, tenantId, id, true);
    await trx.deleteFrom('users').where('tenantId', '=', tenantId).where('id', '=', id).execute();
    const view = userView(current, tenant);
    if (actor) await recordAudit(trx, actor, { tenantId, action: 'user.delete', targetType: 'user', targetId: id, before: view });
    return view;
  });
}

/**
 * Users in matricule order. `q` matches a part of the name (any case), or the
 * start of a matricule or identifiant. Cursor: the last matricule seen.
 */
export async function listUsers(db: Db, tenantId: string, options: { q?: string; limit: number; cursor?: string }) {
  const tenant = await directoryTenant(db, tenantId);
  let query = db.selectFrom('users').selectAll().where('tenantId', '=', tenantId).orderBy('matricule').limit(options.limit + 1);
  const q = options.q?.trim();
  if (q) {
    const like = q.replace(/[\\%_]/g, (ch) => `\\${ch}`);
    query = query.where((eb) =>
      eb.or([
        eb('fullName', 'ilike', `%${like}%`),
        ...(/^[0-9]+$/.test(q) ? [eb('matricule', 'like', `${like}%`), eb('identifiant', 'like', `${like}%`)] : []),
      ]),
    );
  }
  if (options.cursor !== undefined) query = query.where('matricule', '>', options.cursor);
  const rows = await query.execute();
  const items = rows.slice(0, options.limit).map((u) => userView(u, tenant));
  return { items, nextCursor: rows.length > options.limit ? items[items.length - 1]!.matricule : null };
}
