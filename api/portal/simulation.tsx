import type { Hono } from 'hono';
import type { SimulationResult, SumsView } from '../../services/simulation/report.js';
import { apiOf, formOf, type PortalContext, type PortalDeps, type PortalEnv } from './env.js';
import { Csrf, Field, Layout, money } from './layout.js';
import { statusOf, Table, tr, type PageStatus } from './page.js';
import type { ApiFailure } from './client.js';

/** What POST /v1/tariffs/{id}/simulate answers. */
interface SimulationJob {
  jobId: string;
  status: string;
  progress: { cdrs: number };
  result?: SimulationResult;
}

/**
 * The what-if page (issue 25): a tariff, a period and optionally a draft price
 * list uploaded as a file; the table of what each client would have paid. It
 * calls POST /v1/tariffs/{id}/simulate as the signed-in person (a reseller, or
 * tariffs:manage for its own tenant): the API decides what is allowed.
 */
export function simulationPages(app: Hono<PortalEnv>, pd: PortalDeps) {
  const page = (c: PortalContext, o: { fields?: Record<string, string>; job?: SimulationJob; error?: ApiFailure; status?: PageStatus } = {}) => {
    const t = tr(c);
    const locale = c.get('locale');
    const v = c.get('viewer');
    const f = o.fields ?? {};
    const r = o.job?.result;
    const row = (name: string, s: SumsView) => (
      <tr>
        <td>{name}</td>
        <td>{s.calls}</td>
        <td>{money(locale, s.currentCost)}</td>
        <td>{money(locale, s.simulatedCost)}</td>
        <td>{money(locale, s.difference)}</td>
        <td>{s.differencePercent ?? '—'}</td>
      </tr>
    );
    return c.html(
      <Layout locale={locale} title={t('simulationTitle')} viewer={v} current="simulation" path="/portal/simulation" error={o.error}>
        <p>{t('simulationIntro')}</p>
        <form method="post" action="/portal/simulation" enctype="multipart/form-data" class="card form grid-form">
          <Csrf viewer={v} />
          <Field id="tariff" label={t('tariffId')}>
            <input id="tariff" name="tariff" required value={f.tariff ?? ''} />
          </Field>
          <Field id="from" label={t('from')}>
            <input id="from" name="from" type="date" required value={f.from ?? ''} />
          </Field>
          <Field id="to" label={t('to')}>
            <input id="to" name="to" type="date" required value={f.to ?? ''} />
          </Field>
          <Field id="file" label={t('draftTariff')}>
            <input id="file" name="file" type="file" accept=".csv,text/csv" />
          </Field>
          <div class="form-actions">
            <button type="submit" class="primary">
              {t('simulate')}
            </button>
          </div>
        </form>
        {o.job && !r ? (
          <p class="status" role="status">
            {t('simulationRunning', { cdrs: o.job.progress.cdrs })} <a href={`/v1/simulations/${o.job.jobId}`}>{o.job.jobId}</a>
          </p>
        ) : null}
        {r ? (
          <Table class="list simulation" head={[t('tenant'), t('calls'), t('currentCost'), t('simulatedCost'), t('difference'), t('differencePercent')]}>
            {r.tenants.map((x) => row(x.name, x))}
            {row(t('allTenants'), r.total)}
          </Table>
        ) : null}
        {r?.tenants.some((x) => x.topUsers.length > 0) ? (
          <Table class="list" head={[t('topUsers'), t('calls'), t('currentCost'), t('simulatedCost'), t('difference'), t('differencePercent')]}>
            {r.tenants.flatMap((x) => x.topUsers.map((u) => row(`${x.name} · ${u.identifiant} ${u.fullName}`, u)))}
          </Table>
        ) : null}
      </Layout>,
      o.status ?? 200,
    );
  };
  app.get('/simulation', (c) => page(c));
  app.post('/simulation', async (c) => {
    const { fields, csrf } = await formOf(c);
    const draft = fields.file?.trim() ? fields.file : undefined;
    const body = { from: fields.from ?? '', to: fields.to ?? '', ...(draft ? { tariffCsv: draft } : {}) };
    const shown = { tariff: fields.tariff ?? '', from: body.from, to: body.to };
    const a = await apiOf(pd, c, csrf).call<SimulationJob>('POST', `/v1/tariffs/${encodeURIComponent(fields.tariff ?? '')}/simulate?wait=30000`, { json: body });
    if (!a.ok) return page(c, { fields: shown, error: a.error, status: statusOf(a.status) });
    return page(c, { fields: shown, job: a.json });
  });
}
