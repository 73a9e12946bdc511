/**
 * The process's settings: every environment variable of the README's Settings
 * table is read here, and only here, validated, and handed down as values.
 * Services, the database layer, the API and the jobs receive what they need as
 * arguments and never read process.env.
 *
 * It lives in cli/ because cli/ is the composition root: the only code that
 * starts a process (serve, migrate, the commands), where the environment is an
 * input like argv. Nothing below cli/ may import it, so a service cannot
 * quietly start reading a variable again; tests and benchmarks build the values
 * they need directly.
 *
 * A blank variable counts as unset (scripts write `DATABASE_URL=` to mean "the
 * embedded one"). An invalid one stops the command with every problem listed,
 * instead of falling back to a default.
 */
import path from 'node:path';
import { IANAZone } from 'luxon';
import type { LevelWithSilent } from 'pino';
import { z } from 'zod';
import type { Config } from '../api/context.js';
import { splitKey } from '../services/access/access.js';
import { defaultIssuer, type Issuer } from '../services/invoices/issuer.js';

export interface Settings {
  /** PORT, HOST: where the API listens. */
  port: number;
  host: string;
  /** FORFAIT_DATA_DIR, absolute: embedded PostgreSQL data, its password, the bootstrap key, the CDR spool. */
  dataDir: string;
  /** DATABASE_URL: this PostgreSQL instead of the embedded one. */
  databaseUrl: string | undefined;
  /** FORFAIT_BOOTSTRAP_KEY: a reseller key to register instead of a random one. */
  bootstrapKey: string | undefined;
  /** FORFAIT_PG_SETTINGS: `-c name=value` settings of the embedded PostgreSQL. */
  pgSettings: Record<string, string>;
  /** FORFAIT_BODY_LIMIT_MB, FORFAIT_IMPORT_LIMIT_MB (in bytes here), FORFAIT_METRICS_PUBLIC; the app's defaultConfig fills what is unset. */
  api: Partial<Pick<Config, 'bodyLimit' | 'importBodyLimit' | 'metricsPublic'>>;
  /** LOG_LEVEL */
  logLevel: LevelWithSilent;
  /** FORFAIT_ISSUER_*: who issues the invoices; FORFAIT_INVOICE_GRACE_HOURS: how long the monthly job waits for late CDRs. */
  invoicing: { issuer: Issuer; graceHours: number };
  /** FORFAIT_SMTP_URL, FORFAIT_MAIL_FROM, FORFAIT_PUBLIC_URL: the portal's mail (else .eml files in <data dir>/outbox) and links. */
  portal: Config['portal'];
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A variable that may be unset or blank; `schema` sees the trimmed text. */
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined), schema.optional());

/** A decimal number, in range. */
const number = (expected: string, inRange: (n: number) => boolean) =>
  z.string().transform((v, ctx) => {
    const n = Number(v);
    if (Number.isFinite(n) && inRange(n)) return n;
    ctx.addIssue({ code: 'custom', message: `expected ${expected}, got "${v}"` });
    return z.NEVER;
  });

const megabytes = number('a size in MB above 0, such as 1 or 0.5', (n) => n > 0).transform((mb) => Math.round(mb * 1024 * 1024));

/** "shared_buffers=1GB,max_connections=300": each becomes `-c name=value`. */
const pgSettings = z.string().transform((v, ctx) => {
  const out: Record<string, string> = {};
  for (const pair of v.split(',')) {
    const m = /^\s*([a-z_.]+)\s*=\s*(.+?)\s*$/.exec(pair);
    if (m) out[m[1]!] = m[2]!;
    else if (pair.trim()) ctx.addIssue({ code: 'custom', message: `"${pair}" is not name=value (expected e.g. shared_buffers=1GB,max_connections=300)` });
  }
  return out;
});

const schema = z.object({
  PORT: optional(number('a port number from 0 to 65535', (n) => Number.isInteger(n) && n >= 0 && n <= 65_535)),
  HOST: optional(z.string()),
  FORFAIT_DATA_DIR: optional(z.string()),
  // values that hold a secret are never repeated in a message
  DATABASE_URL: optional(
    z.string().refine((v) => URL.canParse(v) && ['postgres:', 'postgresql:'].includes(new URL(v).protocol), 'expected a postgres:// or postgresql:// URL'),
  ),
  FORFAIT_BOOTSTRAP_KEY: optional(
    z.string().refine((v) => splitKey(v) !== undefined, 'expected ffk_<16 hex digits>_<secret of 20+ url-safe characters>'),
  ),
  FORFAIT_PG_SETTINGS: optional(pgSettings),
  FORFAIT_BODY_LIMIT_MB: optional(megabytes),
  FORFAIT_IMPORT_LIMIT_MB: optional(megabytes),
  FORFAIT_METRICS_PUBLIC: optional(z.enum(['0', '1'], { error: 'expected 1 (serve /metrics to any client) or 0 (loopback only, the default)' })),
  LOG_LEVEL: optional(z.enum(LOG_LEVELS, { error: `expected one of ${LOG_LEVELS.join(', ')}` })),
  FORFAIT_ISSUER_NAME: optional(z.string()),
  FORFAIT_ISSUER_ADDRESS: optional(
    z
      .string()
      .transform((v) => v.split('|').map((line) => line.trim()).filter(Boolean))
      .refine((lines) => lines.length > 0, 'expected address lines separated by |'),
  ),
  FORFAIT_ISSUER_VAT_ID: optional(z.string()),
  FORFAIT_ISSUER_REGISTRATION: optional(z.string()),
  FORFAIT_ISSUER_EMAIL: optional(z.string().regex(/^[^\s@]+@[^\s@]+$/, 'expected an email address')),
  FORFAIT_ISSUER_TIMEZONE: optional(z.string().refine((v) => IANAZone.isValidZone(v), 'expected an IANA time zone such as Europe/Paris')),
  FORFAIT_INVOICE_GRACE_HOURS: optional(number('a number of hours ≥ 0, such as 2', (n) => n >= 0)),
  FORFAIT_SMTP_URL: optional(z.string().regex(/^smtps?:\/\/\S+$/, 'expected smtp://[user:password@]host[:port] or smtps://…')),
  FORFAIT_MAIL_FROM: optional(z.string().min(3)),
  FORFAIT_PUBLIC_URL: optional(z.string().regex(/^https?:\/\/[^\s/]+(\/\S*)?$/, 'expected the address people open, such as https://forfait.example.com')),
});

/** The settings are invalid: one line per variable at fault. */
export class SettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid settings (see the README's Settings table):\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'SettingsError';
  }
}

/** The settings from `env` (process.env by default); throws SettingsError listing every invalid variable. */
export function readSettings(env: Record<string, string | undefined> = process.env): Settings {
  const parsed = schema.safeParse(env);
  if (!parsed.success) throw new SettingsError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  const e = parsed.data;
  return {
    port: e.PORT ?? 8080,
    host: e.HOST ?? '0.0.0.0',
    dataDir: path.resolve(e.FORFAIT_DATA_DIR ?? './var'),
    databaseUrl: e.DATABASE_URL,
    bootstrapKey: e.FORFAIT_BOOTSTRAP_KEY,
    pgSettings: e.FORFAIT_PG_SETTINGS ?? {},
    api: {
      ...(e.FORFAIT_BODY_LIMIT_MB !== undefined && { bodyLimit: e.FORFAIT_BODY_LIMIT_MB }),
      ...(e.FORFAIT_IMPORT_LIMIT_MB !== undefined && { importBodyLimit: e.FORFAIT_IMPORT_LIMIT_MB }),
      ...(e.FORFAIT_METRICS_PUBLIC !== undefined && { metricsPublic: e.FORFAIT_METRICS_PUBLIC === '1' }),
    },
    logLevel: e.LOG_LEVEL ?? 'info',
    invoicing: {
      issuer: {
        name: e.FORFAIT_ISSUER_NAME ?? defaultIssuer.name,
        address: e.FORFAIT_ISSUER_ADDRESS ?? defaultIssuer.address,
        vatId: e.FORFAIT_ISSUER_VAT_ID ?? defaultIssuer.vatId,
        registration: e.FORFAIT_ISSUER_REGISTRATION ?? defaultIssuer.registration,
        email: e.FORFAIT_ISSUER_EMAIL ?? defaultIssuer.email,
        timezone: e.FORFAIT_ISSUER_TIMEZONE ?? defaultIssuer.timezone,
      },
      graceHours: e.FORFAIT_INVOICE_GRACE_HOURS ?? 2,
    },
    portal: {
      mail: {
        ...(e.FORFAIT_SMTP_URL !== undefined && { smtpUrl: e.FORFAIT_SMTP_URL }),
        from: e.FORFAIT_MAIL_FROM ?? 'Forfait <forfait@localhost>',
        outboxDir: path.join(path.resolve(e.FORFAIT_DATA_DIR ?? './var'), 'outbox'),
      },
      ...(e.FORFAIT_PUBLIC_URL !== undefined && { publicUrl: e.FORFAIT_PUBLIC_URL }),
    },
  };
}

/**
 * The command's settings, with `flags` (such as --port) standing for their
 * variables; invalid settings end the command with exit code 2 and the list.
 */
export function settings(flags: Record<string, string | undefined> = {}): Settings {
  const given = Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined));
  try {
    return readSettings({ ...process.env, ...given });
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    process.stderr.write(`forfait: ${err.message}\n`);
    process.exit(2);
  }
}

