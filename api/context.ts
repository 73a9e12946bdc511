import type { Logger } from 'pino';
import { defaultSessionLimits, type SessionLimits } from '../services/people/sessions.js';
import type { Db } from '../db/connection.js';
import type { Principal } from '../services/access/access.js';
import type postgres from 'postgres';
import { specExportLimits, type ExportQueueOptions } from '../services/exports/queue.js';
import { defaultIssuer, type Issuer } from '../services/invoices/issuer.js';
import { defaultRateLimits, type RateLimits } from './limits.js';
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
  /** Failed authentications and requests per key (FORFAIT_AUTH_*, FORFAIT_KEY_*, FORFAIT_PBX_AUTHORIZE_FLOOR). */
  rateLimits: RateLimits;
  /** Kamailio's JSON-RPC over HTTP, for device restarts (FORFAIT_KAMAILIO_RPC_URL); null: restarts answer 503. */
  kamailioRpc: { url: string; timeoutMs: number } | null;
  /** Exports from one key or session start this far apart (seed 003: 5 s). */
  exportSpacingMs: number;
  /** The same line-state export asked again within this window is served from the first (seed 003: a minute). */
  exportShareMs: number;
  /** The portal (api/portal/): its mail (FORFAIT_SMTP_URL, FORFAIT_MAIL_FROM) and public address for links (FORFAIT_PUBLIC_URL). */
  portal: PortalSettings;
}

export interface PortalSettings {
  mail: MailSettings;
  /** The address people open, for the links in mails; unset: the address of the request. https: cookies are Secure. */
  publicUrl?: string;
  /** How long a portal session lasts: idle (renewed on activity) and at most (from sign-in). FORFAIT_SESSION_IDLE_MINUTES, FORFAIT_SESSION_HOURS. */
  session?: SessionLimits;
}

export { defaultSessionLimits };

export const defaultConfig: Config = {
  bodyLimit: 1024 * 1024,
  importBodyLimit: 50 * 1024 * 1024,
  cdrBodyLimit: 200 * 1024 * 1024,
  cdrImportBodyLimit: 4 * 1024 * 1024 * 1024,
  metricsPublic: false,
  exportLimits: specExportLimits,
  issuer: defaultIssuer,
  rateLimits: defaultRateLimits,
  kamailioRpc: null,
  exportSpacingMs: 5_000,
  exportShareMs: 60_000,
  portal: { mail: { from: 'Forfait <forfait@localhost>', outboxDir: 'var/outbox' }, session: defaultSessionLimits },
};

export interface Deps {
  db: Db;
  sql: postgres.Sql;
  logger: Logger;
  config: Config;
  /** The time, for what depends on it (device status); the system clock when absent. */
  clock?: () => Date;
}

export interface AppEnv {
  Variables: {
    requestId: string;
    principal: Principal;
  };
}
