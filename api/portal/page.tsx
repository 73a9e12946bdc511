import type { Child, FC } from 'hono/jsx';
import type { ApiFailure } from './client.js';
import type { PortalContext } from './env.js';
import { Csrf, Layout, type Viewer } from './layout.js';
import { say, type LabelKey } from './labels.js';
import type { Locale } from '../../services/invoices/labels.js';

/** What list routes of the API answer. */
export type List<T> = { items: T[]; nextCursor: string | null };

/** The page's words in the person's language. */
export const tr = (c: PortalContext) => (k: LabelKey, v?: Record<string, string | number>) => say(c.get('locale'), k, v);

export type PageStatus = 200 | 400 | 403 | 404 | 409 | 413 | 429;

/** The status a page shows an API refusal with: the API's own. */
export function statusOf(n: number): PageStatus {
  return ([400, 403, 404, 409, 413, 429] as const).find((s) => s === n) ?? 400;
}

/** The page for an API refusal that is about the page itself (another tenant's id, a missing permission). */
export function refused(c: PortalContext, error: ApiFailure, status: number) {
  const t = tr(c);
  const title = status === 404 ? t('notFoundTitle') : status === 403 ? t('forbiddenTitle') : t('errorTitle');
  return c.html(
    <Layout locale={c.get('locale')} title={title} viewer={c.get('viewer')} error={status === 404 ? undefined : error}>
      {status === 404 ? <p>{t('notFound')}</p> : null}
    </Layout>,
    statusOf(status),
  );
}

/** A list table in a card that scrolls on its own (focusable, so a keyboard can scroll it). */
export const Table: FC<{ class: string; head: string[]; children?: Child }> = (p) => (
  <div class="card table-wrap" tabindex={0}>
    <table class={p.class}>
      <thead>
        <tr>
          {p.head.map((h) => (
            <th scope="col">{h}</th>
          ))}
        </tr>
      </thead>
      <tbody>{p.children}</tbody>
    </table>
  </div>
);

/** A form's submit button, alone on its row. */
export const Submit: FC<{ label: string }> = ({ label }) => (
  <div class="form-actions">
    <button type="submit" class="primary">
      {label}
    </button>
  </div>
);

/**
 * A download of the API's export queue through the portal (calls, line states):
 * the API's response streamed as it sends it, or its refusal for the page to
 * show (with the status the page answers) — a full queue (SPEC §7: 3 running, 10 waiting; 408 after 30 s of
 * waiting) said in words with its Retry-After, any other error as the API gave it.
 */
export async function exportThrough(res: Response, locale: Locale, extraHeaders: readonly string[] = []): Promise<{ ok: true; response: Response } | { ok: false; error: ApiFailure; status: number }> {
  if (res.ok) {
    const headers: Record<string, string> = { 'content-type': res.headers.get('content-type') ?? 'text/csv', 'content-disposition': res.headers.get('content-disposition') ?? 'attachment' };
    for (const h of extraHeaders) {
      const v = res.headers.get(h);
      if (v !== null) headers[h] = v;
    }
    return { ok: true, response: new Response(res.body, { status: 200, headers }) };
  }
  const answer = (await res.json().catch(() => undefined)) as { error?: ApiFailure } | undefined;
  const error = answer?.error ?? { code: 'INTERNAL', message: `export failed (${res.status})` };
  if (res.status === 429 || res.status === 408) {
    const seconds = res.headers.get('retry-after') ?? '30';
    return { ok: false, error: { code: error.code, message: say(locale, 'exportsBusy', { seconds }), said: true }, status: res.status };
  }
  return { ok: false, error, status: statusOf(res.status) };
}

/** A group of a dry run's plan: its count, and the keys (matricules, MACs) it holds when listed. */
export interface PlanGroup {
  key: string;
  label: LabelKey;
  count: number;
  items?: readonly string[];
}

/**
 * A dry run's plan (the directory's and the devices' imports): the counts, the
 * keys of each group, and the same file sent again to confirm (`children`: the
 * form's other fields).
 */
export const ImportPlan: FC<{ locale: Locale; viewer: Viewer; action: string; csv: string; groups: PlanGroup[]; children?: Child }> = (p) => {
  const t = (k: LabelKey) => say(p.locale, k);
  return (
    <section class="card plan" aria-labelledby="plan-title">
      <h2 id="plan-title">{t('plan')}</h2>
      <dl class="counts">
        {p.groups.map((g) => (
          <div>
            <dt>{t(g.label)}</dt>
            <dd data-count={g.key}>{g.count}</dd>
          </div>
        ))}
      </dl>
      {p.groups.map((g) =>
        g.items?.length ? (
          <details open={g.items.length <= 50}>
            <summary>
              {t(g.label)} ({g.items.length})
            </summary>
            <p class="matricules">{g.items.slice(0, 2000).join(', ')}</p>
          </details>
        ) : null,
      )}
      <form method="post" action={p.action}>
        <Csrf viewer={p.viewer} />
        {p.children}
        <textarea name="csv" hidden>
          {p.csv}
        </textarea>
        <button type="submit" class="primary">
          {t('confirmImport')}
        </button>
      </form>
    </section>
  );
};
