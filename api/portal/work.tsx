import type { Hono } from 'hono';
import type { CdrView } from '../../services/cdrs/view.js';
import type { InvoiceView } from '../../services/invoices/read.js';
import { apiOf, formOf, type PortalContext, type PortalDeps, type PortalEnv } from './env.js';
import { Csrf, Field, Layout, money } from './layout.js';
import { say } from './labels.js';
import { exportThrough, refused, statusOf, Table, tr, type List, type PageStatus } from './page.js';
import type { ApiFailure } from './client.js';

const filterNames = ['from', 'to', 'identifiant', 'direction'] as const;

export function workPages(app: Hono<PortalEnv>, pd: PortalDeps) {
  // ---- calls: the filtered CDR list and its CSV export ---------------------------------
  const filtersOf = (c: PortalContext) => {
    const filters = new URLSearchParams();
    for (const n of filterNames) {
      const v = c.req.query(n)?.trim();
      if (v) filters.set(n, v);
    }
    return filters;
  };

  // the export through the portal: streamed as the API sends it, or, when the export
  // queue is full (SPEC §7: 3 running, 10 waiting, 30 s), the calls page saying so
  app.get('/calls/export', async (c) => {
    const r = await exportThrough(await apiOf(pd, c).raw(`/v1/cdrs/export.csv?${filtersOf(c)}`), c.get('locale'));
    if (r.ok) return r.response;
    return callsPage(c, { error: r.error, status: r.status });
  });

  const callsPage = async (c: PortalContext, extra: { error?: ApiFailure; status?: number } = {}) => {
    const t = tr(c);
    const locale = c.get('locale');
    const filters = filtersOf(c);
    const cursor = c.req.query('cursor');
    const list = await apiOf(pd, c).get<List<CdrView>>(`/v1/cdrs?limit=100&${filters}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    if (!list.ok && list.status !== 400) return refused(c, list.error, list.status);
    const { running, waiting } = pd.exports.stats;
    return c.html(
      <Layout locale={locale} title={t('callsTitle')} viewer={c.get('viewer')} current="calls" path={`/portal/calls?${filters}`} error={extra.error ?? (list.ok ? undefined : list.error)}>
        <form method="get" action="/portal/calls" class="card filters">
          <Field id="from" label={t('from')}>
            <input id="from" name="from" type="date" value={filters.get('from') ?? ''} />
          </Field>
          <Field id="to" label={t('to')}>
            <input id="to" name="to" type="date" value={filters.get('to') ?? ''} />
          </Field>
          <Field id="identifiant" label={t('identifiant')}>
            <input id="identifiant" name="identifiant" value={filters.get('identifiant') ?? ''} />
          </Field>
          <Field id="direction" label={t('direction')}>
            <select id="direction" name="direction">
              <option value="">{t('all')}</option>
              <option value="out" selected={filters.get('direction') === 'out'}>
                {t('out')}
              </option>
              <option value="in" selected={filters.get('direction') === 'in'}>
                {t('in')}
              </option>
            </select>
          </Field>
          <div class="actions">
            <button type="submit" class="primary">
              {t('filter')}
            </button>
            <a class="button secondary" href={`/portal/calls/export?${filters}`} download>
              {t('exportCsv')}
            </a>
          </div>
        </form>
        <p class="status" data-exports={`${running}/${waiting}`}>
          {t('exportsQueue', { running, waiting })}
        </p>
        <Table class="list" head={[t('startedAt'), t('identifiant'), t('direction'), t('caller'), t('callee'), t('duration'), t('cost')]}>
              {!list.ok || list.json.items.length === 0 ? (
                <tr>
                  <td colspan={7} class="empty">
                    {t('noCalls')}
                  </td>
                </tr>
              ) : (
                list.json.items.map((r) => (
                  <tr>
                    <td>{r.startedAt}</td>
                    <td>{r.identifiant ?? ''}</td>
                    <td>{r.direction === 'out' ? t('out') : t('in')}</td>
                    <td>{r.caller ?? ''}</td>
                    <td>{r.callee}</td>
                    <td>{r.durationSeconds}</td>
                    <td>{money(locale, r.cost)}</td>
                  </tr>
                ))
              )}
            </Table>
        {list.ok && list.json.nextCursor ? (
          <p>
            <a href={`/portal/calls?${filters}&cursor=${encodeURIComponent(list.json.nextCursor)}`}>{t('next')} →</a>
          </p>
        ) : null}
      </Layout>,
      (extra.status ?? (list.ok ? 200 : 400)) as 200,
    );
  };
  app.get('/calls', (c) => callsPage(c));

  // ---- invoices: list, PDF and CSV, run a month ----------------------------------------
  const invoicesPage = async (c: PortalContext, extra: { error?: ApiFailure; notice?: string; status?: PageStatus } = {}) => {
    const t = tr(c);
    const locale = c.get('locale');
    const v = c.get('viewer');
    const list = await apiOf(pd, c).get<List<InvoiceView>>('/v1/invoices?limit=100');
    if (!list.ok) return refused(c, list.error, list.status);
    return c.html(
      <Layout locale={locale} title={t('invoicesTitle')} viewer={v} current="invoices" path="/portal/invoices" {...extra}>
        {v.permissions.has('invoices:run') ? (
          <form method="post" action="/portal/invoices/run" class="card filters">
            <Csrf viewer={v} />
            <Field id="period" label={t('runMonth')}>
              <input id="period" name="period" type="month" required pattern="[0-9]{4}-[0-9]{2}" placeholder="2026-10" />
            </Field>
            <div class="actions">
              <button type="submit" class="primary">
                {t('run')}
              </button>
            </div>
          </form>
        ) : null}
        <Table class="list" head={[t('number'), t('period'), t('status'), t('total'), t('actions')]}>
              {list.json.items.length === 0 ? (
                <tr>
                  <td colspan={5} class="empty">
                    {t('noInvoices')}
                  </td>
                </tr>
              ) : (
                list.json.items.map((i) => (
                  <tr>
                    <td>{i.number}</td>
                    <td>{i.period}</td>
                    <td>{t(i.status === 'issued' ? 'issued' : 'notBilled')}</td>
                    <td>{money(locale, i.total, i.currency)}</td>
                    <td class="links">
                      <a href={`/v1/invoices/${i.id}.pdf`} target="_blank" rel="noopener" aria-label={`${t('pdf')} ${i.number}`}>
                        {t('pdf')}
                      </a>{' '}
                      <a href={`/v1/invoices/${i.id}/details.csv`} download aria-label={`${t('details')} ${i.number}`}>
                        {t('details')}
                      </a>
                    </td>
                  </tr>
                ))
              )}
            </Table>
      </Layout>,
      extra.status ?? 200,
    );
  };
  app.get('/invoices', (c) => invoicesPage(c));
  app.post('/invoices/run', async (c) => {
    const { fields, csrf } = await formOf(c);
    const r = await apiOf(pd, c, csrf).call<{ created: string[]; skipped: unknown[] }>('POST', '/v1/invoices/run', { json: { period: fields.period ?? '' } });
    if (!r.ok) return invoicesPage(c, { error: r.error, status: statusOf(r.status) });
    return invoicesPage(c, { notice: say(c.get('locale'), 'ran', { created: r.json.created.length, skipped: r.json.skipped.length }) });
  });
}
