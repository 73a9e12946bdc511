/**
 * cli/config.ts reads every variable of the README's Settings table: the
 * defaults the README states, each variable's effect, blank meaning unset, and
 * every invalid variable listed at once — without repeating a secret.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readSettings, SettingsError } from '../../cli/config.js';
import { defaultConfig } from '../../api/context.js';
import { defaultIssuer } from '../../services/invoices/issuer.js';
import { defaultRateLimits } from '../../api/limits.js';

const root = path.resolve(import.meta.dirname, '../..');
const MB = 1024 * 1024;

function problems(env: Record<string, string>): string[] {
  try {
    readSettings(env);
  } catch (err) {
    if (err instanceof SettingsError) return err.problems;
    throw err;
  }
  throw new Error('expected a SettingsError');
}

describe('readSettings', () => {
  it('gives the README defaults when nothing is set', () => {
    const s = readSettings({});
    expect([s.port, s.host, s.dataDir, s.databaseUrl, s.bootstrapKey, s.logLevel]).toEqual([8080, '0.0.0.0', path.resolve('./var'), undefined, undefined, 'info']);
    expect(s.archiveDir).toBe(path.resolve('./var/archive'));
    expect(s.pgSettings).toEqual({});
    expect(s.api).toEqual({ rateLimits: defaultRateLimits });
    expect({ ...defaultConfig, ...s.api }).toMatchObject({ bodyLimit: 1 * MB, importBodyLimit: 50 * MB, metricsPublic: false, kamailioRpc: null });
    expect(s.invoicing).toEqual({ issuer: defaultIssuer, graceHours: 2 });
    expect(s.shutdownGraceSeconds).toBe(10);
  });

  it('reads every variable of the Settings table', () => {
    const s = readSettings({
      PORT: '9090',
      HOST: '127.0.0.1',
      FORFAIT_DATA_DIR: '/srv/forfait',
      DATABASE_URL: 'postgres://forfait:pw@db:5432/forfait',
      FORFAIT_BOOTSTRAP_KEY: 'ffk_0123456789abcdef_a-secret-of-twenty-chars',
      FORFAIT_BODY_LIMIT_MB: '2',
      FORFAIT_IMPORT_LIMIT_MB: '0.5',
      FORFAIT_METRICS_PUBLIC: '1',
      FORFAIT_KAMAILIO_RPC_URL: 'http://127.0.0.1:5071/RPC',
      FORFAIT_KAMAILIO_RPC_TIMEOUT_S: '10',
      LOG_LEVEL: 'debug',
      FORFAIT_ADVERTISE_URL: 'http://10.0.0.5:9090/',
      FORFAIT_ISSUER_NAME: ' Opérateur SA ',
      FORFAIT_ISSUER_ADDRESS: '1 rue A | 75001 Paris |',
      FORFAIT_ISSUER_VAT_ID: 'FR99999999999',
      FORFAIT_ISSUER_REGISTRATION: 'RCS Paris 999',
      FORFAIT_ISSUER_EMAIL: 'billing@example.org',
      FORFAIT_ISSUER_TIMEZONE: 'America/Martinique',
      FORFAIT_INVOICE_GRACE_HOURS: '0.5',
      FORFAIT_SESSION_IDLE_MINUTES: '20',
      FORFAIT_SESSION_HOURS: '10',
      FORFAIT_PG_SETTINGS: 'shared_buffers=1GB, max_connections = 300',
      FORFAIT_SHUTDOWN_GRACE_S: '2.5',
      FORFAIT_AUTH_FAILURES_PER_ADDRESS: '5',
      FORFAIT_AUTH_FAILURES_PER_KEY: '3',
      FORFAIT_AUTH_FAILURE_WINDOW_S: '120',
      FORFAIT_AUTH_BLOCK_S: '600',
      FORFAIT_KEY_REQUESTS: '0',
      FORFAIT_KEY_WINDOW_S: '10',
      FORFAIT_PBX_AUTHORIZE_FLOOR: '2000',
      FORFAIT_TRUSTED_PROXIES: '127.0.0.1, 10.0.0.0/8,2001:db8::/32',
      FORFAIT_PRELOAD_BOOKS: '0',
      FORFAIT_ARCHIVE_DIR: '/mnt/archive',
    });
    expect(s).toEqual({
      port: 9090,
      host: '127.0.0.1',
      dataDir: '/srv/forfait',
      databaseUrl: 'postgres://forfait:pw@db:5432/forfait',
      bootstrapKey: 'ffk_0123456789abcdef_a-secret-of-twenty-chars',
      pgSettings: { shared_buffers: '1GB', max_connections: '300' },
      api: {
        bodyLimit: 2 * MB,
        importBodyLimit: Math.round(0.5 * MB),
        metricsPublic: true,
        rateLimits: {
          failuresPerAddress: 5,
          failuresPerKey: 3,
          failureWindowSeconds: 120,
          blockSeconds: 600,
          keyRequests: 0,
          keyWindowSeconds: 10,
          pbxAuthorizeFloor: 2000,
          trustedProxies: ['127.0.0.1', '10.0.0.0/8', '2001:db8::/32'],
        },
        kamailioRpc: { url: 'http://127.0.0.1:5071/RPC', timeoutMs: 10_000 },
      },
      advertiseUrl: 'http://10.0.0.5:9090',
      logLevel: 'debug',
      preloadBooks: false,
      invoicing: {
        issuer: {
          name: 'Opérateur SA',
          address: ['1 rue A', '75001 Paris'],
          vatId: 'FR99999999999',
          registration: 'RCS Paris 999',
          email: 'billing@example.org',
          timezone: 'America/Martinique',
        },
        graceHours: 0.5,
      },
      shutdownGraceSeconds: 2.5,
      archiveDir: '/mnt/archive',
      portal: { mail: { from: 'Forfait <forfait@localhost>', outboxDir: '/srv/forfait/outbox' }, session: { idleMinutes: 20, lifetimeHours: 10 } },
    });
  });

  it('takes a DATABASE_URL of several hosts (a Patroni cluster), and still refuses a malformed one', () => {
    const url = 'postgres://forfait:pw@db1:5432,db2:5432,db3:5432/forfait?target_session_attrs=read-write';
    expect(readSettings({ DATABASE_URL: url }).databaseUrl).toBe(url);
    expect(problems({ DATABASE_URL: 'postgres://forfait:pw@db1:5432,,db2/forfait' })).toHaveLength(1);
    expect(problems({ DATABASE_URL: 'postgres://forfait:pw@db1:port/forfait' })).toHaveLength(1);
  });

  it('takes a blank variable as unset (DATABASE_URL= means the embedded PostgreSQL)', () => {
    const s = readSettings({ DATABASE_URL: '', FORFAIT_BOOTSTRAP_KEY: ' ', FORFAIT_ISSUER_NAME: '', FORFAIT_METRICS_PUBLIC: '0', PORT: '' });
    expect(s.databaseUrl).toBeUndefined();
    expect(s.bootstrapKey).toBeUndefined();
    expect(s.invoicing.issuer.name).toBe(defaultIssuer.name);
    expect(s.api.metricsPublic).toBe(false);
    expect(s.port).toBe(8080);
    expect(s.preloadBooks).toBe(true);
  });

  it('lists every invalid variable at once, by name, with what it expects', () => {
    // variable: [value, what the message says]
    const invalid: Record<string, [string, string]> = {
      PORT: ['80a', 'expected a port number from 0 to 65535, got "80a"'],
      FORFAIT_BODY_LIMIT_MB: ['0', 'expected a size in MB above 0, such as 1 or 0.5, got "0"'],
      FORFAIT_METRICS_PUBLIC: ['yes', 'expected 1 (serve /metrics to any client) or 0 (loopback only, the default)'],
      FORFAIT_PRELOAD_BOOKS: ['yes', 'expected 1 (load the books of tenants with a PBX key at start, the default) or 0 (on their first call)'],
      FORFAIT_ADVERTISE_URL: ['10.0.0.5:8080', 'expected an http:// URL such as http://10.0.0.5:8080'],
      LOG_LEVEL: ['verbose', 'expected one of fatal, error, warn, info, debug, trace, silent'],
      FORFAIT_ISSUER_ADDRESS: ['| |', 'expected address lines separated by |'],
      FORFAIT_ISSUER_EMAIL: ['billing', 'expected an email address'],
      FORFAIT_ISSUER_TIMEZONE: ['Europe/Nowhere', 'expected an IANA time zone such as Europe/Paris'],
      FORFAIT_INVOICE_GRACE_HOURS: ['-1', 'expected a number of hours ≥ 0, such as 2, got "-1"'],
      FORFAIT_AUTH_FAILURES_PER_ADDRESS: ['0', 'expected failed authentications per client address and window, a whole number ≥ 1, got "0"'],
      FORFAIT_KEY_REQUESTS: ['-5', 'expected requests per key and window (0: no limit), a whole number ≥ 0, got "-5"'],
      FORFAIT_PBX_AUTHORIZE_FLOOR: ['1.5', 'expected authorizations per pbx key and window, a whole number ≥ 1, got "1.5"'],
      FORFAIT_TRUSTED_PROXIES: ['10.0.0.0/8,haproxy', '"haproxy" is not an address or a range such as 10.0.0.0/8'],
      FORFAIT_PG_SETTINGS: ['shared_buffers', '"shared_buffers" is not name=value (expected e.g. shared_buffers=1GB,max_connections=300)'],
      FORFAIT_KAMAILIO_RPC_URL: ['ftp://kamailio/RPC', 'expected the URL of Kamailio’s JSON-RPC, such as http://127.0.0.1:5071/RPC'],
      FORFAIT_KAMAILIO_RPC_TIMEOUT_S: ['0', 'expected a number of seconds from 1 to 120, such as 35, got "0"'],
    };
    const found = problems(Object.fromEntries(Object.entries(invalid).map(([name, [value]]) => [name, value])));
    expect([...found].sort()).toEqual(Object.entries(invalid).map(([name, [, message]]) => `${name}: ${message}`).sort());
  });

  it('reads how long portal sessions last (FORFAIT_SESSION_IDLE_MINUTES, FORFAIT_SESSION_HOURS)', () => {
    expect(readSettings({ FORFAIT_SESSION_IDLE_MINUTES: '5', FORFAIT_SESSION_HOURS: '8' }).portal.session).toEqual({ idleMinutes: 5, lifetimeHours: 8 });
    expect(() => readSettings({ FORFAIT_SESSION_IDLE_MINUTES: '0', FORFAIT_SESSION_HOURS: '1.5' })).toThrow(
      /FORFAIT_SESSION_IDLE_MINUTES: expected minutes, a whole number ≥ 1, got "0".*FORFAIT_SESSION_HOURS: expected hours, a whole number ≥ 1, got "1.5"/s,
    );
  });

  it('reads the portal’s mail and public address (FORFAIT_SMTP_URL, FORFAIT_MAIL_FROM, FORFAIT_PUBLIC_URL)', () => {
    const s = readSettings({ FORFAIT_DATA_DIR: '/srv/f', FORFAIT_SMTP_URL: 'smtp://u:p@mail:2525', FORFAIT_MAIL_FROM: 'Forfait <no@x.fr>', FORFAIT_PUBLIC_URL: 'https://f.example.com' });
    expect(s.portal).toEqual({
      mail: { smtpUrl: 'smtp://u:p@mail:2525', from: 'Forfait <no@x.fr>', outboxDir: '/srv/f/outbox' },
      publicUrl: 'https://f.example.com',
      session: { idleMinutes: 30, lifetimeHours: 12 },
    });
    expect(() => readSettings({ FORFAIT_SMTP_URL: 'mail.example.com', FORFAIT_PUBLIC_URL: 'forfait.example.com' })).toThrow(/FORFAIT_SMTP_URL: expected smtp:\/\/.*\n.*FORFAIT_PUBLIC_URL: expected the address/s);
  });

  it('never repeats the value of a secret', () => {
    const found = problems({ DATABASE_URL: 'mysql://root:hunter2-secret@db/forfait', FORFAIT_BOOTSTRAP_KEY: 'ffk_short_hunter2-secret' });
    expect(found).toHaveLength(2);
    expect(found.join('\n')).not.toContain('hunter2');
  });
});

describe('forfait with an invalid setting', () => {
  it('exits 2 before touching any database and says which variables are wrong', async () => {
    const result = await promisify(execFile)(process.execPath, [path.join(root, 'bin/forfait.js'), 'migrate'], {
      cwd: root,
      env: { ...process.env, DATABASE_URL: 'postgres://x:y@127.0.0.1:1/none', FORFAIT_INVOICE_GRACE_HOURS: 'soon', LOG_LEVEL: 'loud' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('FORFAIT_INVOICE_GRACE_HOURS: expected a number of hours ≥ 0, such as 2, got "soon"');
    expect(result.stderr).toContain('LOG_LEVEL: expected one of');
  }, 60_000);
});
