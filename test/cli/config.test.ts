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
    expect(s.pgSettings).toEqual({});
    expect(s.api).toEqual({});
    expect({ ...defaultConfig, ...s.api }).toMatchObject({ bodyLimit: 1 * MB, importBodyLimit: 50 * MB, metricsPublic: false });
    expect(s.invoicing).toEqual({ issuer: defaultIssuer, graceHours: 2 });
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
      LOG_LEVEL: 'debug',
      FORFAIT_ISSUER_NAME: ' Opérateur SA ',
      FORFAIT_ISSUER_ADDRESS: '1 rue A | 75001 Paris |',
      FORFAIT_ISSUER_VAT_ID: 'FR99999999999',
      FORFAIT_ISSUER_REGISTRATION: 'RCS Paris 999',
      FORFAIT_ISSUER_EMAIL: 'billing@example.org',
      FORFAIT_ISSUER_TIMEZONE: 'America/Martinique',
      FORFAIT_INVOICE_GRACE_HOURS: '0.5',
      FORFAIT_PG_SETTINGS: 'shared_buffers=1GB, max_connections = 300',
    });
    expect(s).toEqual({
      port: 9090,
      host: '127.0.0.1',
      dataDir: '/srv/forfait',
      databaseUrl: 'postgres://forfait:pw@db:5432/forfait',
      bootstrapKey: 'ffk_0123456789abcdef_a-secret-of-twenty-chars',
      pgSettings: { shared_buffers: '1GB', max_connections: '300' },
      api: { bodyLimit: 2 * MB, importBodyLimit: Math.round(0.5 * MB), metricsPublic: true },
      logLevel: 'debug',
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
      portal: { mail: { from: 'Forfait <forfait@localhost>', outboxDir: '/srv/forfait/outbox' } },
    });
  });

  it('takes a blank variable as unset (DATABASE_URL= means the embedded PostgreSQL)', () => {
    const s = readSettings({ DATABASE_URL: '', FORFAIT_BOOTSTRAP_KEY: ' ', FORFAIT_ISSUER_NAME: '', FORFAIT_METRICS_PUBLIC: '0', PORT: '' });
    expect(s.databaseUrl).toBeUndefined();
    expect(s.bootstrapKey).toBeUndefined();
    expect(s.invoicing.issuer.name).toBe(defaultIssuer.name);
    expect(s.api.metricsPublic).toBe(false);
    expect(s.port).toBe(8080);
  });

  it('lists every invalid variable at once, by name, with what it expects', () => {
    // variable: [value, what the message says]
    const invalid: Record<string, [string, string]> = {
      PORT: ['80a', 'expected a port number from 0 to 65535, got "80a"'],
      FORFAIT_BODY_LIMIT_MB: ['0', 'expected a size in MB above 0, such as 1 or 0.5, got "0"'],
      FORFAIT_METRICS_PUBLIC: ['yes', 'expected 1 (serve /metrics to any client) or 0 (loopback only, the default)'],
      LOG_LEVEL: ['verbose', 'expected one of fatal, error, warn, info, debug, trace, silent'],
      FORFAIT_ISSUER_ADDRESS: ['| |', 'expected address lines separated by |'],
      FORFAIT_ISSUER_EMAIL: ['billing', 'expected an email address'],
      FORFAIT_ISSUER_TIMEZONE: ['Europe/Nowhere', 'expected an IANA time zone such as Europe/Paris'],
      FORFAIT_INVOICE_GRACE_HOURS: ['-1', 'expected a number of hours ≥ 0, such as 2, got "-1"'],
      FORFAIT_PG_SETTINGS: ['shared_buffers', '"shared_buffers" is not name=value (expected e.g. shared_buffers=1GB,max_connections=300)'],
    };
    const found = problems(Object.fromEntries(Object.entries(invalid).map(([name, [value]]) => [name, value])));
    expect([...found].sort()).toEqual(Object.entries(invalid).map(([name, [, message]]) => `${name}: ${message}`).sort());
  });

  it('reads the portal’s mail and public address (FORFAIT_SMTP_URL, FORFAIT_MAIL_FROM, FORFAIT_PUBLIC_URL)', () => {
    const s = readSettings({ FORFAIT_DATA_DIR: '/srv/f', FORFAIT_SMTP_URL: 'smtp://u:p@mail:2525', FORFAIT_MAIL_FROM: 'Forfait <no@x.fr>', FORFAIT_PUBLIC_URL: 'https://f.example.com' });
    expect(s.portal).toEqual({ mail: { smtpUrl: 'smtp://u:p@mail:2525', from: 'Forfait <no@x.fr>', outboxDir: '/srv/f/outbox' }, publicUrl: 'https://f.example.com' });
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
