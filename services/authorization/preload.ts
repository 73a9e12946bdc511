import type { Logger } from 'pino';
import type { Db } from '../../db/connection.js';
import { UnavailableError } from '../shared/errors.js';
import type { AuthorizationService } from './authorize.js';

/**
 * The tenants a PBX calls for: those with a live (not revoked) pbx key. Their
 * books are worth loading before the first call.
 */
export async function tenantsWithPbxKeys(db: Db): Promise<string[]> {
  const rows = await db
    .selectFrom('apiKeys')
    .select('tenantId')
    .distinct()
    .where('principal', '=', 'pbx')
    .where('revokedAt', 'is', null)
    .where('tenantId', 'is not', null)
    .execute();
  return rows.flatMap((r) => (r.tenantId === null ? [] : [r.tenantId]));
}

export interface Preloaded {
  /** Tenants whose book (and tariff) this server now holds. */
  loaded: string[];
  /** Tenants another server owns (their advisory lock is taken): left to it. */
  elsewhere: string[];
  /** Tenants whose load failed (logged); their first call tries again. */
  failed: string[];
}

/**
 * Loads the account books of `tenantIds`, and the tariff each uses, one tenant
 * after the other, and starts the reservation commit worker: what the first
 * authorization of each would otherwise wait for (a tenant of 100,000 users takes 0.5–1 s to read). `forfait serve` runs
 * it before it listens. A tenant that fails to load is logged and left to load
 * on its first call.
 */
export async function preloadBooks(svc: AuthorizationService, tenantIds: readonly string[], logger: Logger): Promise<Preloaded> {
  const out: Preloaded = { loaded: [], elsewhere: [], failed: [] };
  // the commit worker's thread and connection, which the first allow would otherwise wait for
  const writerReady = tenantIds.length > 0 ? svc.writer.ready() : Promise.resolve();
  for (const tenantId of tenantIds) {
    try {
      const tb = await svc.book.tenant(tenantId);
      if (tb.settings.tariffId !== null) await svc.tariffs.get(tb.settings.tariffId);
      out.loaded.push(tenantId);
    } catch (err) {
      if (err instanceof UnavailableError) out.elsewhere.push(tenantId);
      else {
        out.failed.push(tenantId);
        logger.error({ err, tenantId }, 'account book preload failed');
      }
    }
  }
  await writerReady.catch((err: unknown) => logger.error({ err }, 'reservation commit worker failed to start'));
  return out;
}
