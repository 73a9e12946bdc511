import type { Logger } from 'pino';
import type { Db } from '../db/connection.js';
import type { Principal } from '../services/access/access.js';
import type postgres from 'postgres';
import { specExportLimits, type ExportQueueOptions } from '../services/exports/queue.js';
import { defaultIssuer, type Issuer } from '../services/invoices/issuer.js';
import type { MailSettings } from '../services/mail/mailer.js';

export interface Config {
  /** Default request body limit in bytes (per route overrides exist). */
  bodyLimit: number;
  /** Body limit of CSV imports (users, CDRs, tariffs). */
  importBodyLimit: number;
  /** POST /v1/cdrs: a JSON array of up to 100,000 CDRs is read whole (NDJSON with a length is streamed). */
  cdrBodyLimit: number;
  /** POST /v1/cdrs/import: streamed and rated in batches, so far larger than other imports. */
  cdrImportBodyLimit: number;
  /** Serve /metrics to non-loopback clients too. */
  metricsPublic: boolean;
  /** CSV exports: running at once, waiting, max wait (SPEC §7). */
  exportLimits: ExportQueueOptions;
  /** Who issues the invoices (FORFAIT_ISSUER_*). */
  issuer: Issuer;
  /** The portal (api/portal/): its mail (FORFAIT_SMTP_URL, FORFAIT_MAIL_FROM) and public address for links (FORFAIT_PUBLIC_URL). */
  portal: PortalSettings;
}

export interface PortalSettings {
  mail: MailSettings;
  /** The address people open, for the links in mails; unset: the address of the request. https: cookies are Secure. */
  publicUrl?: string;
}

export const defaultConfig: Config = {
  bodyLimit: 1024 * 1024,
  importBodyLimit: 50 * 1024 * 1024,
  cdrBodyLimit: 200 * 1024 * 1024,
  cdrImportBodyLimit: 4 * 1024 * 1024 * 1024,
  metricsPublic: false,
  exportLimits: specExportLimits,
  issuer: defaultIssuer,
  portal: { mail: { from: 'Forfait <forfait@localhost>', outboxDir: 'var/outbox' } },
};

export interface Deps {
  db: Db;
  sql: postgres.Sql;
  logger: Logger;
  config: Config;
}

export interface AppEnv {
  Variables: {
    requestId: string;
    principal: Principal;
  };
}
