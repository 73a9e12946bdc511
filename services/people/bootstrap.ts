import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Db } from '../../db/connection.js';
import { defaultReseller } from '../access/bootstrap.js';
import { generatePassword, hashPassword } from './passwords.js';

export const bootstrapEmail = 'admin@forfait.local';

/**
 * First start with nobody to sign in: the reseller's first person, with a
 * generated password, printed once by the caller (like the bootstrap key) and
 * written to <dataDir>/bootstrap-credentials with mode 0600. It should change
 * its password (forgot password, or an administrator's reset link).
 */
export async function ensureBootstrapPerson(db: Db, options: { dataDir: string }): Promise<{ created: boolean; email?: string; password?: string; file?: string }> {
  const anyone = await db.selectFrom('people').select('id').limit(1).executeTakeFirst();
  if (anyone) return { created: false };
  const resellerId = await defaultReseller(db);
  const password = generatePassword();
  const row = await db
    .insertInto('people')
    .values({ resellerId, tenantId: null, email: bootstrapEmail, name: 'Administrateur', locale: 'fr', roles: [], status: 'active', passwordHash: await hashPassword(password), createdBy: 'bootstrap' })
    .onConflict((oc) => oc.constraint('people_email_key').doNothing())
    .returning('id')
    .executeTakeFirst();
  if (!row) return { created: false };
  await mkdir(options.dataDir, { recursive: true });
  const file = path.join(options.dataDir, 'bootstrap-credentials');
  await writeFile(file, `${bootstrapEmail}\n${password}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  return { created: true, email: bootstrapEmail, password, file };
}
