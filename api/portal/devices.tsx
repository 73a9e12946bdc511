import type { Hono } from 'hono';
import type { FC } from 'hono/jsx';
import { DEVICE_STATUSES, type DeviceStatus } from '../../engine/deviceStatus.js';
import type { DeviceTypeView, SiteView } from '../../services/devices/catalog.js';
import type { DeviceImportResult } from '../../services/devices/csv.js';
import type { DeviceView } from '../../services/devices/inventory.js';
import { sipAccepted, type RestartAnswer, type RestartView } from '../../services/devices/restart.js';
import type { Locale } from '../../services/invoices/labels.js';
import type { ApiFailure } from './client.js';
import { apiOf, formOf, type PortalContext, type PortalDeps, type PortalEnv } from './env.js';
import { Csrf, Field, Layout, when } from './layout.js';
import { say } from './labels.js';
import { exportThrough, ImportPlan, refused, statusOf, Submit, Table, tr, type List } from './page.js';

/**
 * The Devices pages (issue 21 point 5, seed 003's "Appareils" tab): the
 * inventory with its status from the registrar, a device's page (status, last
 * registration, lines, restart, retire, edit), the CSV import with its dry run,
 * the template, the export and the line-state report, the sites. Like every
 * page of the portal they act through the API as the signed-in person
 * (client.ts): `devices:manage`, the 404 across tenants, every check and
 * error are the API's.
 */

interface Extra {
  error?: ApiFailure;
  notice?: string;
  /** the page's HTTP status: the API's refusal, a full export queue (429/408) or an unreachable registrar (503) */
  status?: number;
}

/** What GET /v1/devices/{id}/status answers. */
interface StatusView {
  status: DeviceStatus;
  lastRegistration: DeviceView['lastRegistration'];
  lastRestart: RestartView | null;
}

/** A device as a form shows it: what the person typed, or the device as it is. */
interface DeviceValues {
  mac?: string;
  deviceType?: string;
  site?: string;
  lines: Map<number, string>;
  dectStationId?: string | null;
  notes?: string | null;
}

const statusIcon: Record<DeviceStatus, string> = { registered: '●', aged: '◐', unregistered: '○' };

/** The status in colour and in words (the colour alone says nothing to everyone). */
export const StatusBadge: FC<{ locale: Locale; status: DeviceStatus }> = ({ locale, status }) => (
  <span class={`badge ${status}`} data-status={status}>
    <span aria-hidden="true">{statusIcon[status]}</span> {say(locale, status)}
  </span>
);

/** A time of the API (UTC), written for people. */
const at = (locale: Locale, iso: string | null | undefined) => (iso ? `${when(locale, iso)} ${say(locale, 'utc')}` : say(locale, 'never'));

/** The form's fields as the API's JSON body (the API judges them). */
function deviceBody(f: Record<string, string>) {
  const lines = Object.entries(f)
    .filter(([k, v]) => /^line\d+$/.test(k) && v.trim() !== '')
    .map(([k, v]) => ({ port: Number(k.slice(4)), identifiant: v.trim() }))
    .sort((a, b) => a.port - b.port);
  return {
    deviceType: (f.deviceType ?? '').trim(),
    site: (f.site ?? '').trim(),
    lines,
    dectStationId: f.dectStationId?.trim() ? f.dectStationId.trim() : null,
    notes: f.notes?.trim() ? f.notes.trim() : null,
  };
}

function valuesOf(body: ReturnType<typeof deviceBody>, mac?: string): DeviceValues {
  return { ...body, mac, lines: new Map(body.lines.map((l) => [l.port, l.identifiant])) };
}

export function devicePages(app: Hono<PortalEnv>, pd: PortalDeps) {
  /** The catalog and the sites, for the forms and filters. */
  const catalogOf = async (c: PortalContext) => {
    const api = apiOf(pd, c);
    const [types, sites] = await Promise.all([api.get<List<DeviceTypeView>>('/v1/device-types'), api.get<List<SiteView>>('/v1/sites')]);
    return { types: types.ok ? types.json.items : [], sites: sites.ok ? sites.json.items : [] };
  };

  // ---- the list: status badges, site and status filters, search by MAC -----------------
  const filtersOf = (c: PortalContext) => {
    const f = new URLSearchParams();
    for (const n of ['q', 'site', 'status'] as const) {
      const v = c.req.query(n)?.trim();
      if (v) f.set(n, v);
    }
    if (c.req.query('retired') === 'true') f.set('retired', 'true');
    return f;
  };

  const listPage = async (c: PortalContext, extra: Extra = {}) => {
    const t = tr(c);
    const locale = c.get('locale');
    const filters = filtersOf(c);
    const cursor = c.req.query('cursor');
    const [list, { sites }] = await Promise.all([
      apiOf(pd, c).get<List<DeviceView>>(`/v1/devices?limit=100&${filters}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`),
      catalogOf(c),
    ]);
    // a filter the API refuses (an unknown status) is shown on the page; no permission is the API's 403
    if (!list.ok && list.status !== 400) return refused(c, list.error, list.status);
    const retired = filters.get('retired') === 'true';
    const lineFilters = new URLSearchParams([...filters].filter(([k]) => k === 'site' || k === 'status'));
    const { running, waiting } = pd.exports.stats;
    // after a retirement or an import: said from the device itself (never words from the URL), or the counts
    const ok = c.req.query('ok');
    const count = (n: string) => (/^\d{1,9}$/.test(c.req.query(n) ?? '') ? Number(c.req.query(n)) : 0);
    const gone = ok === 'retired' ? await apiOf(pd, c).get<DeviceView>(`/v1/devices/${encodeURIComponent(c.req.query('id') ?? '')}`) : undefined;
    const notice =
      extra.notice ??
      (gone?.ok && gone.json.retiredAt !== null
        ? t('retiredOk', { mac: gone.json.macDisplay })
        : ok === 'imported'
          ? t('devicesImported', { created: count('created'), updated: count('updated'), unchanged: count('unchanged') })
          : undefined);
    return c.html(
      <Layout
        locale={locale}
        title={t('devicesTitle')}
        viewer={c.get('viewer')}
        current="devices"
        path={`/portal/devices?${filters}`}
        notice={notice}
        error={extra.error ?? (list.ok ? undefined : list.error)}
      >
        <div class="toolbar">
          <a class="button primary" href="/portal/devices/new">
            {t('newDevice')}
          </a>
          <a class="button secondary" href="/portal/devices/import">
            {t('importDevices')}
          </a>
          <a class="button secondary" href={`/v1/devices/export.csv${filters.get('site') ? `?site=${encodeURIComponent(filters.get('site')!)}` : ''}`} download>
            {t('exportDevices')}
          </a>
          <a class="button secondary" href="/portal/devices/sites">
            {t('sites')}
          </a>
        </div>
        <form method="get" action="/portal/devices" class="card filters">
          <Field id="q" label={t('macSearch')}>
            <input id="q" name="q" type="search" value={filters.get('q') ?? ''} />
          </Field>
          <Field id="site" label={t('site')}>
            <select id="site" name="site">
              <option value="">{t('allSites')}</option>
              {sites.map((s) => (
                <option value={s.name} selected={filters.get('site') === s.name}>
                  {s.name}
                </option>
              ))}
            </select>
          </Field>
          <Field id="status" label={t('status')}>
            <select id="status" name="status">
              <option value="">{t('allStatuses')}</option>
              {DEVICE_STATUSES.map((s) => (
                <option value={s} selected={filters.get('status') === s}>
                  {t(s)}
                </option>
              ))}
            </select>
          </Field>
          {retired ? <input type="hidden" name="retired" value="true" /> : null}
          <div class="actions">
            <button type="submit" class="primary">
              {t('filter')}
            </button>
            <a class="button secondary" href={`/portal/devices/line-states?${lineFilters}`} download>
              {t('lineStatesExport')}
            </a>
          </div>
        </form>
        <p class="status" data-exports={`${running}/${waiting}`}>
          {t('lineStatesHelp')} {t('exportsQueue', { running, waiting })}
        </p>
        <p>
          <a href={retired ? '/portal/devices' : '/portal/devices?retired=true'}>{retired ? t('showLive') : t('showRetired')}</a>
        </p>
        <Table class="list devices" head={[t('mac'), t('status'), t('site'), t('deviceType'), t('lastRegistration'), t('lines'), t('notes'), t('actions')]}>
          {!list.ok || list.json.items.length === 0 ? (
            <tr>
              <td colspan={8} class="empty">
                {t('noDevices')}
              </td>
            </tr>
          ) : (
            list.json.items.map((d) => (
              <tr>
                <td>
                  <a href={`/portal/devices/${d.id}`} class="mac">
                    {d.macDisplay}
                  </a>
                </td>
                <td>{d.retiredAt ? t('retiredAt', { at: at(locale, d.retiredAt) }) : <StatusBadge locale={locale} status={d.status} />}</td>
                <td>{d.site.name}</td>
                <td>
                  {d.deviceType.vendor} {d.deviceType.model}
                </td>
                <td>{at(locale, d.lastRegistration?.registeredAt)}</td>
                <td>{t('linesUsed', { used: d.lines.length, ports: d.deviceType.ports })}</td>
                <td>{d.notes ?? ''}</td>
                <td>
                  {/* seed 003's "Actions" menu of a device: its status, restart, retire */}
                  <details class="row-actions">
                    <summary>
                      {t('actions')}
                      <span class="sr-only"> {d.macDisplay}</span>
                    </summary>
                    <div>
                      <a href={`/portal/devices/${d.id}`}>{t('deviceStatus')}</a>
                      {d.retiredAt === null ? (
                        <form method="post" action={`/portal/devices/${d.id}/restart`} data-confirm={t('restartConfirm')}>
                          <Csrf viewer={c.get('viewer')} />
                          <button type="submit" class="link">
                            {t('restart')}
                          </button>
                        </form>
                      ) : null}
                      {d.retiredAt === null ? <a href={`/portal/devices/${d.id}/retire`}>{t('retire')}</a> : null}
                    </div>
                  </details>
                </td>
              </tr>
            ))
          )}
        </Table>
        {list.ok && list.json.nextCursor ? (
          <p>
            <a href={`/portal/devices?${filters}&cursor=${encodeURIComponent(list.json.nextCursor)}`}>{t('next')} →</a>
          </p>
        ) : null}
      </Layout>,
      (extra.status ?? (list.ok ? 200 : 400)) as 200,
    );
  };
  app.get('/devices', (c) => listPage(c));

  // the line-state report through the portal: the API's export streamed, or this list saying why not
  app.get('/devices/line-states', async (c) => {
    const f = filtersOf(c);
    const query = new URLSearchParams([...f].filter(([k]) => k === 'site' || k === 'status'));
    const r = await exportThrough(await apiOf(pd, c).raw(`/v1/devices/line-states.csv?${query}`), c.get('locale'), ['x-forfait-export']);
    if (r.ok) return r.response;
    if (r.status === 403 || r.status === 404) return refused(c, r.error, r.status);
    return listPage(c, { error: r.error, status: r.status });
  });

  // ---- the form of a device (add, edit) --------------------------------------------------
  const deviceForm = (c: PortalContext, o: { action: string; values: DeviceValues; types: DeviceTypeView[]; sites: SiteView[]; ports: number; isNew: boolean }) => {
    const t = tr(c);
    const { values } = o;
    const approvedAt = (code: string) => o.sites.filter((s) => s.deviceTypes.includes(code)).map((s) => s.name);
    return (
      <form method="post" action={o.action} class="card form grid-form device-form">
        <Csrf viewer={c.get('viewer')} />
        {o.isNew ? (
          <Field id="mac" label={t('mac')} hint={t('macHelp')}>
            <input id="mac" name="mac" required maxlength={40} autocomplete="off" spellcheck={false} value={values.mac ?? ''} aria-describedby="mac-hint" />
          </Field>
        ) : null}
        <Field id="device-site" label={t('site')}>
          <select id="device-site" name="site" required>
            <option value="" />
            {o.sites.map((s) => (
              <option value={s.name} selected={values.site === s.name}>
                {s.name}
              </option>
            ))}
          </select>
        </Field>
        <Field id="deviceType" label={t('deviceType')} hint={t('deviceTypeHelp')}>
          <select id="deviceType" name="deviceType" required aria-describedby="deviceType-hint">
            <option value="" />
            {o.types.map((ty) => {
              const where = approvedAt(ty.code);
              return (
                <option value={ty.code} selected={values.deviceType === ty.code}>
                  {`${ty.vendor} ${ty.model} · ${ty.ports} ${t('portShort').toLowerCase()}${ty.ports > 1 ? 's' : ''}${ty.dect ? ' · DECT' : ''}${where.length ? ` — ${where.join(', ')}` : ''}`}
                </option>
              );
            })}
          </select>
        </Field>
        {o.types.some((ty) => ty.dect) ? (
          <Field id="dectStationId" label={t('dectStationId')} hint={t('dectStationIdHelp')}>
            <input id="dectStationId" name="dectStationId" maxlength={100} value={values.dectStationId ?? ''} aria-describedby="dectStationId-hint" />
          </Field>
        ) : null}
        <fieldset class="numbers lines">
          <legend>{t('lines')}</legend>
          <small class="hint">{t('linesHelp')}</small>
          {Array.from({ length: o.ports }, (_, i) => i + 1).map((port) => (
            <Field id={`line${port}`} label={t('port', { n: port })}>
              <input id={`line${port}`} name={`line${port}`} inputmode="numeric" autocomplete="off" value={values.lines.get(port) ?? ''} />
            </Field>
          ))}
        </fieldset>
        <div class="field wide">
          <label for="notes">{t('notes')}</label>
          <textarea id="notes" name="notes" rows={2} maxlength={2000}>
            {values.notes ?? ''}
          </textarea>
        </div>
        <Submit label={t('save')} />
      </form>
    );
  };

  // ---- add ------------------------------------------------------------------------------
  const newPage = async (c: PortalContext, extra: Extra = {}, values: DeviceValues = { lines: new Map() }) => {
    const t = tr(c);
    const { types, sites } = await catalogOf(c);
    // as many port fields as the largest type some site approves
    const approved = types.filter((ty) => sites.some((s) => s.deviceTypes.includes(ty.code)));
    const ports = Math.max(1, ...approved.map((ty) => ty.ports));
    return c.html(
      <Layout locale={c.get('locale')} title={t('newDevice')} viewer={c.get('viewer')} current="devices" path="/portal/devices/new" {...extra}>
        {sites.length === 0 ? (
          <p>
            <a href="/portal/devices/sites">{t('noSites')}</a>
          </p>
        ) : null}
        {deviceForm(c, { action: '/portal/devices/new', values, types, sites, ports, isNew: true })}
      </Layout>,
      (extra.status ?? 200) as 200,
    );
  };
  app.get('/devices/new', async (c) => {
    // no devices:manage: the API's own 403, not a form that cannot be sent
    const probe = await apiOf(pd, c).get<List<SiteView>>('/v1/sites');
    if (!probe.ok) return refused(c, probe.error, probe.status);
    return newPage(c);
  });
  app.post('/devices/new', async (c) => {
    const { fields, csrf } = await formOf(c);
    const body = deviceBody(fields);
    const mac = (fields.mac ?? '').trim();
    const r = await apiOf(pd, c, csrf).call<DeviceView>('POST', '/v1/devices', { json: { mac, ...body } });
    if (!r.ok) {
      if (r.status === 403) return refused(c, r.error, r.status);
      return newPage(c, { error: r.error, status: statusOf(r.status) }, valuesOf(body, mac));
    }
    return c.redirect(`/portal/devices/${r.json.id}?ok=saved`, 303);
  });

  // ---- import: the dry run (every line error, or the plan), then the same file confirmed ----
  const importPage = async (c: PortalContext, extra: Extra & { plan?: DeviceImportResult; csv?: string } = {}) => {
    const t = tr(c);
    const v = c.get('viewer');
    const plan = extra.plan;
    return c.html(
      <Layout locale={c.get('locale')} title={t('importDevicesTitle')} viewer={v} current="devices" path="/portal/devices/import" {...extra}>
        {plan && extra.csv !== undefined ? (
          <ImportPlan
            locale={c.get('locale')}
            viewer={v}
            action="/portal/devices/import/confirm"
            csv={extra.csv}
            groups={[
              { key: 'created', label: 'created', count: plan.created, items: plan.macs.created },
              { key: 'updated', label: 'updated', count: plan.updated, items: plan.macs.updated },
              { key: 'unchanged', label: 'unchanged', count: plan.unchanged },
            ]}
          />
        ) : null}
        <form method="post" action="/portal/devices/import" enctype="multipart/form-data" class="card form grid-form">
          <Csrf viewer={v} />
          <p class="wide">{t('importDevicesHelp')}</p>
          <Field id="file" label={t('file')}>
            <input id="file" name="file" type="file" accept=".csv,text/csv" required />
          </Field>
          <div class="form-actions">
            <button type="submit" class="primary">
              {t('dryRun')}
            </button>
            <a class="button secondary" href="/v1/devices/template.csv" download>
              {t('template')}
            </a>
          </div>
        </form>
      </Layout>,
      (extra.status ?? 200) as 200,
    );
  };
  app.get('/devices/import', async (c) => {
    const probe = await apiOf(pd, c).get<List<SiteView>>('/v1/sites');
    if (!probe.ok) return refused(c, probe.error, probe.status);
    return importPage(c);
  });
  app.post('/devices/import', async (c) => {
    const { fields, csrf } = await formOf(c);
    const csv = fields.file ?? ''; // formOf read it as the API reads a CSV (its BOM dropped)
    const r = await apiOf(pd, c, csrf).call<DeviceImportResult>('POST', '/v1/devices/import?dryRun=true', { csv });
    if (!r.ok) return r.status === 403 ? refused(c, r.error, r.status) : importPage(c, { error: r.error, status: statusOf(r.status) });
    return importPage(c, { plan: r.json, csv });
  });
  app.post('/devices/import/confirm', async (c) => {
    const { fields, csrf } = await formOf(c);
    const r = await apiOf(pd, c, csrf).call<DeviceImportResult>('POST', '/v1/devices/import', { csv: fields.csv ?? '' });
    if (!r.ok) return r.status === 403 ? refused(c, r.error, r.status) : importPage(c, { error: r.error, status: statusOf(r.status) });
    const counts = new URLSearchParams({ ok: 'imported', created: String(r.json.created), updated: String(r.json.updated), unchanged: String(r.json.unchanged) });
    return c.redirect(`/portal/devices?${counts}`, 303);
  });

  // ---- sites: the tenant's sites and the device types each approves ------------------------
  const sitesPage = async (c: PortalContext, extra: Extra = {}) => {
    const t = tr(c);
    const v = c.get('viewer');
    const api = apiOf(pd, c);
    const sites = await api.get<List<SiteView>>('/v1/sites');
    if (!sites.ok) return refused(c, sites.error, sites.status);
    const types = await api.get<List<DeviceTypeView>>('/v1/device-types');
    const catalog = types.ok ? types.json.items : [];
    const typeBoxes = (prefix: string, checked: readonly string[]) => (
      <fieldset class="chips">
        <legend>{t('approvedTypes')}</legend>
        {catalog.map((ty) => (
          <label>
            <input type="checkbox" name="deviceTypes" value={ty.code} checked={checked.includes(ty.code)} id={`${prefix}-${ty.code}`} /> {ty.vendor} {ty.model}
          </label>
        ))}
      </fieldset>
    );
    return c.html(
      <Layout locale={c.get('locale')} title={t('sites')} viewer={v} current="devices" path="/portal/devices/sites" {...extra}>
        <p>
          <a href="/portal/devices">← {t('devicesTitle')}</a>
        </p>
        {sites.json.items.map((s) => (
          <form method="post" action={`/portal/devices/sites/${s.id}`} class="card form grid-form" aria-label={s.name}>
            <Csrf viewer={v} />
            <Field id={`site-${s.id}`} label={t('siteName')}>
              <input id={`site-${s.id}`} name="name" required maxlength={200} value={s.name} />
            </Field>
            {typeBoxes(s.id, s.deviceTypes)}
            <Submit label={t('save')} />
          </form>
        ))}
        <h2>{t('newSite')}</h2>
        <form method="post" action="/portal/devices/sites" class="card form grid-form">
          <Csrf viewer={v} />
          <Field id="new-site" label={t('siteName')}>
            <input id="new-site" name="name" required maxlength={200} />
          </Field>
          {typeBoxes('new', [])}
          <Submit label={t('create')} />
        </form>
      </Layout>,
      (extra.status ?? 200) as 200,
    );
  };
  app.get('/devices/sites', (c) => sitesPage(c));
  app.post('/devices/sites', async (c) => {
    const { fields, all, csrf } = await formOf(c);
    const r = await apiOf(pd, c, csrf).call<SiteView>('POST', '/v1/sites', { json: { name: fields.name ?? '', deviceTypes: all.deviceTypes ?? [] } });
    if (!r.ok) return r.status === 403 ? refused(c, r.error, r.status) : sitesPage(c, { error: r.error, status: statusOf(r.status) });
    return sitesPage(c, { notice: say(c.get('locale'), 'siteCreated', { name: r.json.name }) });
  });
  app.post('/devices/sites/:id', async (c) => {
    const { fields, all, csrf } = await formOf(c);
    const r = await apiOf(pd, c, csrf).call<SiteView>('PATCH', `/v1/sites/${encodeURIComponent(c.req.param('id'))}`, {
      json: { name: fields.name ?? '', deviceTypes: all.deviceTypes ?? [] },
    });
    if (!r.ok) return r.status === 403 || r.status === 404 ? refused(c, r.error, r.status) : sitesPage(c, { error: r.error, status: statusOf(r.status) });
    return sitesPage(c, { notice: say(c.get('locale'), 'saved') });
  });

  // ---- one device: its status, lines, restart, retire, edit ----------------------------------
  const devicePage = async (c: PortalContext, extra: Extra & { values?: DeviceValues } = {}) => {
    const t = tr(c);
    const locale = c.get('locale');
    const v = c.get('viewer');
    const id = encodeURIComponent(c.req.param('id') ?? '');
    const api = apiOf(pd, c);
    const [device, status] = await Promise.all([api.get<DeviceView>(`/v1/devices/${id}`), api.get<StatusView>(`/v1/devices/${id}/status`)]);
    if (!device.ok) return refused(c, device.error, device.status);
    if (!status.ok) return refused(c, status.error, status.status);
    const d = device.json;
    const s = status.json;
    const reg = s.lastRegistration;
    const live = d.retiredAt === null;
    const { types, sites } = live ? await catalogOf(c) : { types: [], sites: [] };
    const byPort = new Map(d.lines.map((l) => [l.port, l]));
    const restart = s.lastRestart;
    // after a restart (?restart=<its id>): the SIP answer it got, said once
    const answered = restart && restart.restartId === c.req.query('restart') && restart.sipStatus !== null ? { status: restart.sipStatus, reason: restart.sipReason ?? '' } : undefined;
    const restartNotice = answered && sipAccepted(answered.status) ? t('restartAccepted', answered) : undefined;
    const restartError =
      answered && !sipAccepted(answered.status)
        ? { code: answered.status === 408 ? 'REQUEST_TIMEOUT' : 'SIP_REFUSED', message: t(answered.status === 408 ? 'restartNoAnswer' : 'restartRefused', answered), said: true }
        : undefined;
    return c.html(
      <Layout
        locale={locale}
        title={t('deviceTitle', { mac: d.macDisplay })}
        viewer={v}
        current="devices"
        path={`/portal/devices/${d.id}`}
        notice={extra.notice ?? restartNotice ?? (c.req.query('ok') === 'saved' ? t('saved') : undefined)}
        error={extra.error ?? restartError}
      >
        <div class="toolbar">
          {live ? <StatusBadge locale={locale} status={s.status} /> : <strong>{t('retiredAt', { at: at(locale, d.retiredAt) })}</strong>}
          <a class="button secondary" href={`/portal/devices/${d.id}`}>
            {t('refreshStatus')}
          </a>
          {live ? (
            <form method="post" action={`/portal/devices/${d.id}/restart`} class="inline" data-confirm={t('restartConfirm')}>
              <Csrf viewer={v} />
              <button type="submit" class="secondary">
                {t('restart')}
              </button>
            </form>
          ) : null}
          {live ? (
            <a class="button danger" href={`/portal/devices/${d.id}/retire`}>
              {t('retire')}
            </a>
          ) : null}
        </div>
        <section class="card device-status" aria-labelledby="status-title">
          <h2 id="status-title">{t('deviceStatus')}</h2>
          <dl class="facts">
            <div>
              <dt>{t('deviceType')}</dt>
              <dd>
                {d.deviceType.vendor} {d.deviceType.model} ({d.deviceType.code})
              </dd>
            </div>
            <div>
              <dt>{t('site')}</dt>
              <dd>{d.site.name}</dd>
            </div>
            <div>
              <dt>{t('lastRegistration')}</dt>
              <dd data-field="registeredAt">{at(locale, reg?.registeredAt)}</dd>
            </div>
            <div>
              <dt>{t('expiresAt')}</dt>
              <dd>{reg ? at(locale, reg.expiresAt) : '—'}</dd>
            </div>
            <div>
              <dt>{t('userAgent')}</dt>
              <dd data-field="userAgent">{reg?.userAgent ?? '—'}</dd>
            </div>
            <div>
              <dt>{t('ipAddress')}</dt>
              <dd data-field="ip">{reg?.ip ? `${reg.ip}${reg.port ? `:${reg.port}` : ''}` : '—'}</dd>
            </div>
            <div>
              <dt>{t('contact')}</dt>
              <dd class="contact">{reg?.contact ?? '—'}</dd>
            </div>
            {d.deviceType.dect ? (
              <div>
                <dt>{t('dectStationId')}</dt>
                <dd>{d.dectStationId ?? '—'}</dd>
              </div>
            ) : null}
            <div>
              <dt>{t('lastRestart')}</dt>
              <dd data-field="lastRestart">
                {restart ? `${at(locale, restart.requestedAt)} · ${restart.sipStatus === null ? t('restartPending') : `${restart.sipStatus} ${restart.sipReason ?? ''}`}` : '—'}
              </dd>
            </div>
            <div>
              <dt>{t('createdAt')}</dt>
              <dd>{at(locale, d.createdAt)}</dd>
            </div>
            <div>
              <dt>{t('updatedAt')}</dt>
              <dd>{at(locale, d.updatedAt)}</dd>
            </div>
          </dl>
          {d.notes ? <p class="notes">{d.notes}</p> : null}
        </section>
        <h2>{t('lines')}</h2>
        <Table class="list lines" head={[t('portShort'), t('user'), t('identifiant')]}>
          {Array.from({ length: d.deviceType.ports }, (_, i) => i + 1).map((port) => {
            const line = byPort.get(port);
            return (
              <tr>
                <td>{port}</td>
                <td>{line ? v.permissions.has('directory:manage') ? <a href={`/portal/directory/${line.userId}`}>{line.fullName}</a> : line.fullName : '—'}</td>
                <td>{line?.identifiant ?? ''}</td>
              </tr>
            );
          })}
        </Table>
        {live ? (
          <section>
            <h2>{t('edit')}</h2>
            {deviceForm(c, {
              action: `/portal/devices/${d.id}`,
              values: extra.values ?? {
                deviceType: d.deviceType.code,
                site: d.site.name,
                lines: new Map(d.lines.map((l) => [l.port, l.identifiant])),
                dectStationId: d.dectStationId,
                notes: d.notes,
              },
              types,
              sites,
              ports: d.deviceType.ports,
              isNew: false,
            })}
          </section>
        ) : null}
      </Layout>,
      (extra.status ?? 200) as 200,
    );
  };
  app.get('/devices/:id', (c) => devicePage(c));
  app.post('/devices/:id', async (c) => {
    const { fields, csrf } = await formOf(c);
    const body = deviceBody(fields);
    const r = await apiOf(pd, c, csrf).call<DeviceView>('PATCH', `/v1/devices/${encodeURIComponent(c.req.param('id'))}`, { json: body });
    if (!r.ok) return r.status === 403 || r.status === 404 ? refused(c, r.error, r.status) : devicePage(c, { error: r.error, status: statusOf(r.status), values: valuesOf(body) });
    return c.redirect(`/portal/devices/${r.json.id}?ok=saved`, 303);
  });

  // restart: then the device's page with the SIP answer that came back (or the 408); a reload does not restart again
  app.post('/devices/:id/restart', async (c) => {
    const { csrf } = await formOf(c);
    const r = await apiOf(pd, c, csrf).call<RestartAnswer>('POST', `/v1/devices/${encodeURIComponent(c.req.param('id'))}/restart`);
    if (!r.ok) {
      if (r.status === 403 || r.status === 404) return refused(c, r.error, r.status);
      // 409 (not registered, retired), 503 (no registrar to ask): said with the API's status
      return devicePage(c, { error: r.error, status: r.status === 503 ? 503 : statusOf(r.status) });
    }
    return c.redirect(`/portal/devices/${r.json.deviceId}?${new URLSearchParams({ restart: r.json.restartId })}`, 303);
  });

  // retire, after a confirmation page
  app.get('/devices/:id/retire', async (c) => {
    const t = tr(c);
    const device = await apiOf(pd, c).get<DeviceView>(`/v1/devices/${encodeURIComponent(c.req.param('id'))}`);
    if (!device.ok) return refused(c, device.error, device.status);
    const d = device.json;
    return c.html(
      <Layout locale={c.get('locale')} title={t('retireTitle', { mac: d.macDisplay })} viewer={c.get('viewer')} current="devices" path={`/portal/devices/${d.id}/retire`}>
        <form method="post" action={`/portal/devices/${d.id}/retire`} class="card form narrow">
          <Csrf viewer={c.get('viewer')} />
          <p>{t('retireHelp')}</p>
          <p>
            {d.deviceType.vendor} {d.deviceType.model} · {d.site.name} · {t('linesUsed', { used: d.lines.length, ports: d.deviceType.ports })}
          </p>
          <div class="form-actions">
            <button type="submit" class="danger">
              {t('confirmRetire')}
            </button>
            <a class="button secondary" href={`/portal/devices/${d.id}`}>
              {t('cancel')}
            </a>
          </div>
        </form>
      </Layout>,
    );
  });
  app.post('/devices/:id/retire', async (c) => {
    const { csrf } = await formOf(c);
    const r = await apiOf(pd, c, csrf).call<DeviceView>('POST', `/v1/devices/${encodeURIComponent(c.req.param('id'))}/retire`);
    if (!r.ok) return r.status === 409 ? devicePage(c, { error: r.error, status: 409 }) : refused(c, r.error, r.status);
    return c.redirect(`/portal/devices?${new URLSearchParams({ ok: 'retired', id: r.json.id })}`, 303);
  });
}
