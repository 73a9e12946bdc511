import { randomBytes, randomInt } from 'node:crypto';
import { hash, verify } from '@node-rs/argon2';
import { ValidationError } from '../shared/errors.js';

/**
 * Passwords hashed with argon2id by @node-rs/argon2 (the Rust argon2 crate,
 * prebuilt in its npm package; no build step, off the event loop) at OWASP's
 * minimum: 19 MiB, 2 passes, 1 lane. The PHC string keeps its parameters, so
 * stronger ones later still verify old hashes.
 */
const options = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const minPasswordLength = 12;
export const maxPasswordLength = 200;

export function checkPassword(password: string, field = 'password'): void {
  if (password.length < minPasswordLength || password.length > maxPasswordLength) {
    throw new ValidationError(`the password must have ${minPasswordLength} to ${maxPasswordLength} characters`, [
      { field, message: `${minPasswordLength} to ${maxPasswordLength} characters` },
    ]);
  }
}

export function hashPassword(password: string): Promise<string> {
  return hash(password, options);
}

/** A hash of nothing anyone knows: verified when the email is unknown, so both answers take as long. */
let decoy: Promise<string> | undefined;

export async function passwordMatches(stored: string | null, password: string): Promise<boolean> {
  if (stored === null) {
    decoy ??= hash(randomBytes(32).toString('hex'), options);
    await verify(await decoy, password).catch(() => false);
    return false;
  }
  return verify(stored, password).catch(() => false);
}

// no 0/O, 1/l/I: a generated password is read off a screen and typed
const alphabet = 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789';

/** A password shown once to whoever creates the person (seed 004): 16 characters, about 93 bits. */
export function generatePassword(): string {
  let s = '';
  for (let i = 0; i < 16; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}
