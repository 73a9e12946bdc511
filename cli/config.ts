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
import { defaultSessionLimits, type Config } from '../api/context.js';
import { splitKey } from '../services/access/access.js';
import { defaultIssuer, type Issuer } from '../services/invoices/issuer.js';
import { addressRange, defaultRateLimits } from '../api/limits.js';

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
  api: Partial<Pick<Config, 'bodyLimit' | 'importBodyLimit' | 'metricsPublic' | 'rateLimits' | 'kamailioRpc'>>;
  /** FORFAIT_ADVERTISE_URL: where the other servers on the same database reach this one (default: http://HOST:PORT, 127.0.0.1 for 0.0.0.0). */
  advertiseUrl: string | undefined;
  /** LOG_LEVEL */
  logLevel: LevelWithSilent;
  /** FORFAIT_PRELOAD_BOOKS: load the account books of tenants with a PBX key at start (on by default), not on their first call. */
  preloadBooks: boolean;
  /** FORFAIT_ISSUER_*: who issues the invoices; FORFAIT_INVOICE_GRACE_HOURS: how long the monthly job waits for late CDRs. */
  invoicing: { issuer: Issuer; graceHours: number };
  /** FORFAIT_SHUTDOWN_GRACE_S: on SIGINT/SIGTERM, how long requests in flight may go on before their connections are cut. */
  shutdownGraceSeconds: number;
  /** FORFAIT_ARCHIVE_DIR, absolute: where the archive job writes CDR archives (default <dataDir>/archive, var/archive). */
  archiveDir: string;
  /**
   * FORFAIT_SMTP_URL, FORFAIT_MAIL_FROM, FORFAIT_PUBLIC_URL: the portal's mail (else .eml files in <data dir>/outbox) and links;
   * FORFAIT_SESSION_IDLE_MINUTES (30), FORFAIT_SESSION_HOURS (12): a session ends idle, and at most that long after sign-in.
   */
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

/** A whole number of at least `min`. */
const whole = (expected: string, min: number) => number(`${expected}, a whole number ≥ ${min}`, (n) => Number.isInteger(n) && n >= min);

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

/**
 * A postgres:// URL, with one host or several (`postgres://u:p@a:5432,b:5432/db?target_session_attrs=read-write`,
 * which postgres.js reads and WHATWG URL does not: it is checked with the first host alone).
 */
function isPostgresUrl(v: string): boolean {
  const m = /^(postgres(?:ql)?:\/\/(?:[^@/]*@)?)([^/?#]*)(.*)$/.exec(v);
  if (!m) return false;
  const hosts = m[2]!.split(',');
  if (hosts.some((h) => h === '')) return false;
  return URL.canParse(m[1]! + hosts[0]! + m[3]!);
}

const schema = z.object({
  PORT: optional(number('a port number from 0 to 65535', (n) => Number.isInteger(n) && n >= 0 && n <= 65_535)),
  HOST: optional(z.string()),
  FORFAIT_DATA_DIR: optional(z.string()),
  // values that hold a secret are never repeated in a message
  DATABASE_URL: optional(
    z.string().refine(isPostgresUrl, 'expected a postgres:// or postgresql:// URL (several hosts separated by commas for a Patroni cluster)'),
  ),
  FORFAIT_BOOTSTRAP_KEY: optional(
    z.string().refine((v) => splitKey(v) !== undefined, 'expected ffk_<16 hex digits>_<secret of 20+ url-safe characters>'),
  ),
  FORFAIT_PG_SETTINGS: optional(pgSettings),
  FORFAIT_BODY_LIMIT_MB: optional(megabytes),
  FORFAIT_IMPORT_LIMIT_MB: optional(megabytes),
  FORFAIT_METRICS_PUBLIC: optional(z.enum(['0', '1'], { error: 'expected 1 (serve /metrics to any client) or 0 (loopback only, the default)' })),
  FORFAIT_PRELOAD_BOOKS: optional(z.enum(['0', '1'], { error: 'expected 1 (load the books of tenants with a PBX key at start, the default) or 0 (on their first call)' })),
  FORFAIT_ADVERTISE_URL: optional(
    z.string().refine((v) => URL.canParse(v) && ['http:', 'https:'].includes(new URL(v).protocol), 'expected an http:// URL such as http://10.0.0.5:8080'),
  ),
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
  FORFAIT_KAMAILIO_RPC_URL: optional(z.url({ protocol: /^https?$/, error: 'expected the URL of Kamailio’s JSON-RPC, such as http://127.0.0.1:5071/RPC' })),
  FORFAIT_KAMAILIO_RPC_TIMEOUT_S: optional(number('a number of seconds from 1 to 120, such as 35', (n) => n >= 1 && n <= 120)),
  FORFAIT_INVOICE_GRACE_HOURS: optional(number('a number of hours ≥ 0, such as 2', (n) => n >= 0)),
  FORFAIT_TRUSTED_PROXIES: optional(
    z
      .string()
      .transform((v) => v.split(',').map((p) => p.trim()).filter(Boolean))
      .superRefine((list, ctx) => {
        for (const p of list) if (!addressRange(p)) ctx.addIssue({ code: 'custom', message: `"${p}" is not an address or a range such as 10.0.0.0/8` });
      }),
  ),
  FORFAIT_SHUTDOWN_GRACE_S: optional(number('a number of seconds ≥ 0, such as 10', (n) => n >= 0)),
  FORFAIT_AUTH_FAILURES_PER_ADDRESS: optional(whole('failed authentications per client address and window', 1)),
  FORFAIT_AUTH_FAILURES_PER_KEY: optional(whole('failed authentications per key id and window', 1)),
  FORFAIT_AUTH_FAILURE_WINDOW_S: optional(whole('seconds', 1)),
  FORFAIT_AUTH_BLOCK_S: optional(whole('seconds', 1)),
  FORFAIT_KEY_REQUESTS: optional(whole('requests per key and window (0: no limit)', 0)),
  FORFAIT_KEY_WINDOW_S: optional(whole('seconds', 1)),
  FORFAIT_PBX_AUTHORIZE_FLOOR: optional(whole('authorizations per pbx key and window', 1)),
  FORFAIT_ARCHIVE_DIR: optional(z.string()),
  FORFAIT_SMTP_URL: optional(z.string().regex(/^smtps?:\/\/\S+$/, 'expected smtp://[user:password@]host[:port] or smtps://…')),
  FORFAIT_MAIL_FROM: optional(z.string().min(3)),
  FORFAIT_PUBLIC_URL: optional(z.string().regex(/^https?:\/\/[^\s/]+(\/\S*)?$/, 'expected the address people open, such as https://forfait.example.com')),
  FORFAIT_SESSION_IDLE_MINUTES: optional(whole('minutes', 1)),
  FORFAIT_SESSION_HOURS: optional(whole('hours', 1)),
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
  const dataDir = path.resolve(e.FORFAIT_DATA_DIR ?? './var');
  return {
    port: e.PORT ?? 8080,
    host: e.HOST ?? '0.0.0.0',
    dataDir,
    databaseUrl: e.DATABASE_URL,
    bootstrapKey: e.FORFAIT_BOOTSTRAP_KEY,
    pgSettings: e.FORFAIT_PG_SETTINGS ?? {},
    api: {
      ...(e.FORFAIT_BODY_LIMIT_MB !== undefined && { bodyLimit: e.FORFAIT_BODY_LIMIT_MB }),
      ...(e.FORFAIT_IMPORT_LIMIT_MB !== undefined && { importBodyLimit: e.FORFAIT_IMPORT_LIMIT_MB }),
      ...(e.FORFAIT_METRICS_PUBLIC !== undefined && { metricsPublic: e.FORFAIT_METRICS_PUBLIC === '1' }),
      rateLimits: {
        failuresPerAddress: e.FORFAIT_AUTH_FAILURES_PER_ADDRESS ?? defaultRateLimits.failuresPerAddress,
        failuresPerKey: e.FORFAIT_AUTH_FAILURES_PER_KEY ?? defaultRateLimits.failuresPerKey,
        failureWindowSeconds: e.FORFAIT_AUTH_FAILURE_WINDOW_S ?? defaultRateLimits.failureWindowSeconds,
        blockSeconds: e.FORFAIT_AUTH_BLOCK_S ?? defaultRateLimits.blockSeconds,
        keyRequests: e.FORFAIT_KEY_REQUESTS ?? defaultRateLimits.keyRequests,
        keyWindowSeconds: e.FORFAIT_KEY_WINDOW_S ?? defaultRateLimits.keyWindowSeconds,
        pbxAuthorizeFloor: e.FORFAIT_PBX_AUTHORIZE_FLOOR ?? defaultRateLimits.pbxAuthorizeFloor,
        trustedProxies: e.FORFAIT_TRUSTED_PROXIES ?? defaultRateLimits.trustedProxies,
      },
      ...(e.FORFAIT_KAMAILIO_RPC_URL !== undefined && {
        kamailioRpc: { url: e.FORFAIT_KAMAILIO_RPC_URL, timeoutMs: (e.FORFAIT_KAMAILIO_RPC_TIMEOUT_S ?? 35) * 1000 },
      }),
    },
    advertiseUrl: e.FORFAIT_ADVERTISE_URL?.replace(/\/+$/, ''),
    logLevel: e.LOG_LEVEL ?? 'info',
    preloadBooks: e.FORFAIT_PRELOAD_BOOKS !== '0',
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
    shutdownGraceSeconds: e.FORFAIT_SHUTDOWN_GRACE_S ?? 10,
    archiveDir: e.FORFAIT_ARCHIVE_DIR !== undefined ? path.resolve(e.FORFAIT_ARCHIVE_DIR) : path.join(dataDir, 'archive'),
    portal: {
      mail: {
        ...(e.FORFAIT_SMTP_URL !== undefined && { smtpUrl: e.FORFAIT_SMTP_URL }),
        from: e.FORFAIT_MAIL_FROM ?? 'Forfait <forfait@localhost>',
        outboxDir: path.join(path.resolve(e.FORFAIT_DATA_DIR ?? './var'), 'outbox'),
      },
      ...(e.FORFAIT_PUBLIC_URL !== undefined && { publicUrl: e.FORFAIT_PUBLIC_URL }),
      session: {
        idleMinutes: e.FORFAIT_SESSION_IDLE_MINUTES ?? defaultSessionLimits.idleMinutes,
        lifetimeHours: e.FORFAIT_SESSION_HOURS ?? defaultSessionLimits.lifetimeHours,
      },
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

