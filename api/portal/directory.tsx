import { randomUUID } from 'node:crypto';
import type { Hono } from 'hono';
import type { LedgerEntryView } from '../../services/ledger/ledger.js';
import type { ImportResult } from '../../services/users/import.js';
import type { ImportView } from '../../services/users/restore.js';
import type { UserView } from '../../services/users/fields.js';
import type { ApiFailure } from './client.js';
import { apiOf, formOf, licenceOf, type PortalContext, type PortalDeps, type PortalEnv } from './env.js';
import { Csrf, duration, Field, Layout, money, when } from './layout.js';
import { say } from './labels.js';
import { ImportPlan, refused, statusOf, Submit, Table, tr, type List, type PageStatus } from './page.js';

interface Extra {
  error?: ApiFailure;
  notice?: string;
  status?: PageStatus;
}

export function directoryPages(app: Hono<PortalEnv>, pd: PortalDeps) {
  // ---- the list (seed 001's columns) ---------------------------------------------
  const listPage = async (c: PortalContext, extra: Extra = {}) => {
    const t = tr(c);
    const locale = c.get('locale');
    const q = c.req.query('q') ?? '';
    const cursor = c.req.query('cursor');
    const params = new URLSearchParams({ limit: '100', ...(q ? { q } : {}), ...(cursor ? { cursor } : {}) });
    const [users, licence] = await Promise.all([apiOf(pd, c).get<List<UserView>>(`/v1/users?${params}`), licenceOf(pd, c)]);
    if (!users.ok) return refused(c, users.error, users.status);
    return c.html(
      <Layout locale={locale} title={t('directory')} viewer={c.get('viewer')} current="directory" licence={licence} path={`/portal/directory${q ? `?q=${encodeURIComponent(q)}` : ''}`} {...extra}>
        <div class="toolbar">
          <form method="get" action="/portal/directory" class="search">
            <label for="q" class="sr-only">
              {t('search')}
            </label>
            <input id="q" name="q" type="search" value={q} placeholder={t('searchHelp')} aria-describedby="q-hint" />
            <span id="q-hint" class="sr-only">
              {t('searchHelp')}
            </span>
            <button type="submit" class="secondary">
              {t('search')}
            </button>
          </form>
          {licence ? <span class="licences">{t('licences', { used: licence.used, max: licence.max })}</span> : null}
          <a class="button primary" href="/portal/directory/new">
            {t('newUser')}
          </a>
        </div>
        <Table class="list" head={[t('name'), t('matricule'), t('identifiant'), t('state'), t('account'), t('forfait'), t('totalCallTime'), t('balance'), t('billing')]}>
              {users.json.items.length === 0 ? (
                <tr>
                  <td colspan={9} class="empty">
                    {t('noUsers')}
                  </td>
                </tr>
              ) : (
                users.json.items.map((u) => (
                  <tr>
                    <td>
                      <a href={`/portal/directory/${u.id}`}>{u.fullName}</a>
                    </td>
                    <td>{u.matricule}</td>
                    <td>{u.identifiant}</td>
                    <td>{u.generalState ?? ''}</td>
                    <td>{u.accountStatus === 'enabled' ? t('on') : t('off')}</td>
                    <td>{u.forfaitMinutes}</td>
                    <td>{duration(u.totalCallSeconds)}</td>
                    <td>{money(locale, u.balance)}</td>
                    <td>{u.billingEnabled ? t('on') : t('off')}</td>
                  </tr>
                ))
              )}
            </Table>
        {users.json.nextCursor ? (
          <p>
            <a href={`/portal/directory?${new URLSearchParams({ ...(q ? { q } : {}), cursor: users.json.nextCursor })}`}>{t('next')} →</a>
          </p>
        ) : null}
      </Layout>,
      extra.status ?? 200,
    );
  };
  app.get('/directory', (c) => listPage(c));

  // ---- one user: edit, numbers, balance, history, print, calls, delete -------------
  const userForm = (c: PortalContext, u: Partial<UserView> | undefined, action: string) => {
    const t = tr(c);
    const numbers = u?.authorizedNumbers ?? Array<string | null>(10).fill(null);
    return (
      <form method="post" action={action} class="card form grid-form">
        <Csrf viewer={c.get('viewer')} />
        <Field id="fullName" label={t('name')}>
          <input id="fullName" name="fullName" required maxlength={200} value={u?.fullName ?? ''} />
        </Field>
        <Field id="matricule" label={t('matricule')}>
          <input id="matricule" name="matricule" required inputmode="numeric" value={u?.matricule ?? ''} />
        </Field>
        <Field id="identifiant" label={t('identifiant')}>
          <input id="identifiant" name="identifiant" required inputmode="numeric" value={u?.identifiant ?? ''} />
        </Field>
        <Field id="generalState" label={t('state')}>
          <input id="generalState" name="generalState" maxlength={100} value={u?.generalState ?? ''} />
        </Field>
        <Field id="forfaitMinutes" label={t('forfait')}>
          <input id="forfaitMinutes" name="forfaitMinutes" type="number" min={0} value={u?.forfaitMinutes === undefined ? '' : String(u.forfaitMinutes)} />
        </Field>
        <Field id="accountStatus" label={t('account')}>
          <select id="accountStatus" name="accountStatus">
            <option value="enabled" selected={u?.accountStatus !== 'disabled'}>
              {t('enabled')}
            </option>
            <option value="disabled" selected={u?.accountStatus === 'disabled'}>
              {t('disabled')}
            </option>
          </select>
        </Field>
        <Field id="billingEnabled" label={t('billing')}>
          <select id="billingEnabled" name="billingEnabled">
            <option value="true" selected={u?.billingEnabled !== false}>
              {t('on')}
            </option>
            <option value="false" selected={u?.billingEnabled === false}>
              {t('off')}
            </option>
          </select>
        </Field>
        <fieldset class="numbers">
          <legend>{t('numbers')}</legend>
          {numbers.map((n, i) => (
            <Field id={`n${i + 1}`} label={t('numberSlot', { n: i + 1 })}>
              <input id={`n${i + 1}`} name={`n${i + 1}`} type="tel" value={n ?? ''} />
            </Field>
          ))}
        </fieldset>
        <Submit label={t('save')} />
      </form>
    );
  };

  /** The form's user fields as the API's JSON body (the API judges them). */
  const userBody = (f: Record<string, string>) => ({
    fullName: f.fullName ?? '',
    matricule: (f.matricule ?? '').trim(),
    identifiant: (f.identifiant ?? '').trim(),
    generalState: f.generalState?.trim() ? f.generalState.trim() : null,
    accountStatus: f.accountStatus === 'disabled' ? 'disabled' : 'enabled',
    billingEnabled: f.billingEnabled !== 'false',
    ...(f.forfaitMinutes?.trim() ? { forfaitMinutes: /^\d+$/.test(f.forfaitMinutes.trim()) ? Number(f.forfaitMinutes.trim()) : f.forfaitMinutes } : {}),
    authorizedNumbers: Array.from({ length: 10 }, (_, i) => f[`n${i + 1}`]?.trim() || null),
  });

  const newPage = async (c: PortalContext, extra: Extra = {}, values?: Partial<UserView>) => {
    const t = tr(c);
    const licence = await licenceOf(pd, c);
    return c.html(
      <Layout locale={c.get('locale')} title={t('newUser')} viewer={c.get('viewer')} current="directory" licence={licence} path="/portal/directory/new" {...extra}>
        {licence ? <p class="licences">{t('licences', { used: licence.used, max: licence.max })}</p> : null}
        {userForm(c, values, '/portal/directory/new')}
      </Layout>,
      extra.status ?? 200,
    );
  };
  app.get('/directory/new', (c) => newPage(c));
  app.post('/directory/new', async (c) => {
    const { fields, csrf } = await formOf(c);
    const body = userBody(fields);
    const r = await apiOf(pd, c, csrf).call<UserView>('POST', '/v1/users', { json: body });
    if (!r.ok) return newPage(c, { error: r.error, status: statusOf(r.status) }, { ...body, forfaitMinutes: undefined } as Partial<UserView>);
    return c.redirect(`/portal/directory/${r.json.id}?ok=saved`, 303);
  });

  const userPage = async (c: PortalContext, extra: Extra = {}) => {
    const t = tr(c);
    const locale = c.get('locale');
    const id = c.req.param('id') ?? '';
    const v = c.get('viewer');
    const api = apiOf(pd, c);
    const user = await api.get<UserView>(`/v1/users/${encodeURIComponent(id)}`);
    if (!user.ok) return refused(c, user.error, user.status);
    const u = user.json;
    const canBalance = v.permissions.has('balances:manage');
    const ledger = canBalance || v.permissions.has('invoices:read') ? await api.get<List<LedgerEntryView>>(`/v1/users/${u.id}/ledger?limit=50`) : undefined;
    const ok = c.req.query('ok');
    return c.html(
      <Layout
        locale={locale}
        title={t('userTitle', { name: u.fullName })}
        viewer={v}
        current="directory"
        path={`/portal/directory/${u.id}`}
        notice={extra.notice ?? (ok === 'saved' || ok === 'deleted' ? t(ok) : undefined)}
        error={extra.error}
      >
        <div class="toolbar">
          <span class="balance-now">
            {t('balance')} : <strong>{money(locale, u.balance)}</strong>
          </span>
          <a class="button secondary" href={`/v1/users/${u.id}.pdf`} target="_blank" rel="noopener">
            {t('print')}
          </a>
          {v.permissions.has('cdrs:read') ? (
            <a class="button secondary" href={`/v1/users/${u.id}/calls.csv`} download>
              {t('downloadCalls')}
            </a>
          ) : null}
          <a class="button danger" href={`/portal/directory/${u.id}/delete`}>
            {t('delete')}
          </a>
        </div>
        <h2>{t('edit')}</h2>
        {userForm(c, u, `/portal/directory/${u.id}`)}
        {canBalance ? (
          <section>
            <h2>{t('topUp')}</h2>
            <form method="post" action={`/portal/directory/${u.id}/ledger`} class="card form grid-form">
              <Csrf viewer={v} />
              {/* one key per form shown: a double submit appends one entry */}
              <input type="hidden" name="idempotencyKey" value={`portal-${randomUUID()}`} />
              <Field id="kind" label={t('kind')}>
                <select id="kind" name="kind">
                  <option value="topup">{t('topup')}</option>
                  <option value="adjustment">{t('adjustment')}</option>
                  <option value="refund">{t('refund')}</option>
                </select>
              </Field>
              <Field id="amount" label={t('amount')}>
                <input id="amount" name="amount" required inputmode="decimal" pattern="-?[0-9]+([.,][0-9]{1,4})?" />
              </Field>
              <Field id="reason" label={t('reason')}>
                <input id="reason" name="reason" required maxlength={500} />
              </Field>
              <Submit label={t('apply')} />
            </form>
          </section>
        ) : null}
        {ledger?.ok ? (
          <section>
            <h2>{t('history')}</h2>
            <Table class="list" head={[t('date'), t('kind'), t('amount'), t('balanceAfter'), t('reason'), t('by')]}>
                  {ledger.json.items.map((e) => (
                    <tr>
                      <td>{when(locale, e.createdAt)}</td>
                      <td>{e.kind === 'topup' || e.kind === 'adjustment' || e.kind === 'refund' ? t(e.kind) : e.kind}</td>
                      <td>{money(locale, e.amount)}</td>
                      <td>{money(locale, e.balanceAfter)}</td>
                      <td>{e.reason ?? ''}</td>
                      <td>{e.createdBy ?? ''}</td>
                    </tr>
                  ))}
                </Table>
          </section>
        ) : null}
      </Layout>,
      extra.status ?? 200,
    );
  };
  app.get('/directory/:id', (c) => userPage(c));
  app.post('/directory/:id', async (c) => {
    const { fields, csrf } = await formOf(c);
    const id = encodeURIComponent(c.req.param('id'));
    const r = await apiOf(pd, c, csrf).call<UserView>('PATCH', `/v1/users/${id}`, { json: userBody(fields) });
    if (!r.ok) return r.status === 404 ? refused(c, r.error, 404) : userPage(c, { error: r.error, status: statusOf(r.status) });
    return c.redirect(`/portal/directory/${id}?ok=saved`, 303);
  });
  app.post('/directory/:id/ledger', async (c) => {
    const { fields, csrf } = await formOf(c);
    const id = encodeURIComponent(c.req.param('id'));
    const body = {
      kind: fields.kind,
      amount: (fields.amount ?? '').trim().replace(',', '.'),
      reason: fields.reason ?? '',
      idempotencyKey: fields.idempotencyKey ?? '',
    };
    const r = await apiOf(pd, c, csrf).call('POST', `/v1/users/${id}/ledger`, { json: body });
    if (!r.ok) return r.status === 404 ? refused(c, r.error, 404) : userPage(c, { error: r.error, status: statusOf(r.status) });
    return c.redirect(`/portal/directory/${id}?ok=saved`, 303);
  });
  app.get('/directory/:id/delete', async (c) => {
    const t = tr(c);
    const id = c.req.param('id');
    const user = await apiOf(pd, c).get<UserView>(`/v1/users/${encodeURIComponent(id)}`);
    if (!user.ok) return refused(c, user.error, user.status);
    return c.html(
      <Layout locale={c.get('locale')} title={t('deleteTitle', { name: user.json.fullName })} viewer={c.get('viewer')} current="directory">
        <form method="post" action={`/portal/directory/${user.json.id}/delete`} class="card form narrow">
          <Csrf viewer={c.get('viewer')} />
          <p>{t('deleteHelp')}</p>
          <p>
            {user.json.matricule} · {user.json.identifiant}
          </p>
          <div class="form-actions">
            <button type="submit" class="danger">
              {t('confirmDelete')}
            </button>
            <a class="button secondary" href={`/portal/directory/${user.json.id}`}>
              {t('cancel')}
            </a>
          </div>
        </form>
      </Layout>,
    );
  });
  app.post('/directory/:id/delete', async (c) => {
    const { csrf } = await formOf(c);
    const r = await apiOf(pd, c, csrf).call<UserView>('DELETE', `/v1/users/${encodeURIComponent(c.req.param('id'))}`);
    if (!r.ok) return refused(c, r.error, r.status);
    return listPage(c, { notice: `${say(c.get('locale'), 'deleted')} ${r.json.fullName} (${r.json.matricule})` });
  });

  // ---- import: a dry run, then the same file confirmed; history and restore ----------
  const modes = ['append', 'upsert', 'sync'] as const;
  const importPage = async (c: PortalContext, extra: Extra & { plan?: ImportResult; csv?: string; mode?: string } = {}) => {
    const t = tr(c);
    const locale = c.get('locale');
    const [history, licence] = await Promise.all([apiOf(pd, c).get<List<ImportView>>('/v1/users/imports?limit=20'), licenceOf(pd, c)]);
    if (!history.ok) return refused(c, history.error, history.status);
    const v = c.get('viewer');
    const plan = extra.plan;
    const ok = c.req.query('ok');
    return c.html(
      <Layout
        locale={locale}
        title={t('importTitle')}
        viewer={v}
        current="import"
        licence={licence}
        path="/portal/import"
        notice={extra.notice ?? (ok === 'imported' || ok === 'restoredOk' ? t(ok) : undefined)}
        error={extra.error}
      >
        {licence ? <p class="licences">{t('licences', { used: licence.used, max: licence.max })}</p> : null}
        {plan && extra.csv !== undefined ? (
          <ImportPlan
            locale={locale}
            viewer={v}
            action="/portal/import/confirm"
            csv={extra.csv}
            groups={[
              { key: 'created', label: 'created', count: plan.created, items: plan.matricules?.created },
              { key: 'updated', label: 'updated', count: plan.updated, items: plan.matricules?.updated },
              { key: 'deleted', label: 'deletedCount', count: plan.deleted, items: plan.matricules?.deleted },
              { key: 'unchanged', label: 'unchanged', count: plan.unchanged },
            ]}
          >
            <input type="hidden" name="mode" value={extra.mode ?? 'upsert'} />
          </ImportPlan>
        ) : null}
        <form method="post" action="/portal/import" enctype="multipart/form-data" class="card form grid-form">
          <Csrf viewer={v} />
          <Field id="file" label={t('file')}>
            <input id="file" name="file" type="file" accept=".csv,text/csv" required />
          </Field>
          <fieldset class="radios">
            <legend>{t('mode')}</legend>
            {modes.map((m) => (
              <label>
                <input type="radio" name="mode" value={m} checked={(extra.mode ?? 'upsert') === m} /> {t(m)}
              </label>
            ))}
          </fieldset>
          <div class="form-actions">
            <button type="submit" class="primary">
              {t('dryRun')}
            </button>
            {v.permissions.has('directory:manage') ? (
              <a class="button secondary" href="/v1/users/export?format=portal" download>
                {t('export')}
              </a>
            ) : null}
          </div>
        </form>
        <h2>{t('importHistory')}</h2>
        <Table class="list" head={[t('date'), t('mode'), t('created'), t('updated'), t('deletedCount'), t('by'), t('actions')]}>
              {history.json.items.map((i) => (
                <tr>
                  <td>{when(locale, i.createdAt)}</td>
                  <td>{i.mode}</td>
                  <td>{i.created}</td>
                  <td>{i.updated}</td>
                  <td>{i.deleted}</td>
                  <td>{i.createdBy ?? ''}</td>
                  <td>
                    {i.restoredAt ? (
                      t('restored', { at: when(locale, i.restoredAt) })
                    ) : (
                      <form method="post" action={`/portal/import/${i.id}/restore`} class="inline" data-confirm={t('restore')}>
                        <Csrf viewer={v} />
                        <button type="submit" class="secondary small">
                          {t('restore')}
                        </button>
                      </form>
                    )}
                  </td>
                </tr>
              ))}
            </Table>
      </Layout>,
      extra.status ?? 200,
    );
  };
  const modeOf = (m: string | undefined) => (modes as readonly string[]).includes(m ?? '') ? (m as string) : 'upsert';
  app.get('/import', (c) => importPage(c));
  app.post('/import', async (c) => {
    const { fields, csrf } = await formOf(c);
    const mode = modeOf(fields.mode);
    const csv = fields.file ?? ''; // formOf read it as the API reads a CSV (its BOM dropped)
    const r = await apiOf(pd, c, csrf).call<ImportResult>('POST', `/v1/users/import?mode=${mode}&dryRun=true`, { csv });
    if (!r.ok) return importPage(c, { error: r.error, status: statusOf(r.status), mode });
    return importPage(c, { plan: r.json, csv, mode });
  });
  app.post('/import/confirm', async (c) => {
    const { fields, csrf } = await formOf(c);
    const mode = modeOf(fields.mode);
    const r = await apiOf(pd, c, csrf).call<ImportResult>('POST', `/v1/users/import?mode=${mode}`, { csv: fields.csv ?? '' });
    if (!r.ok) return importPage(c, { error: r.error, status: statusOf(r.status), mode });
    return c.redirect('/portal/import?ok=imported', 303);
  });
  app.post('/import/:id/restore', async (c) => {
    const { csrf } = await formOf(c);
    const r = await apiOf(pd, c, csrf).call('POST', `/v1/users/imports/${encodeURIComponent(c.req.param('id'))}/restore`);
    if (!r.ok) return r.status === 404 ? refused(c, r.error, 404) : importPage(c, { error: r.error, status: statusOf(r.status) });
    return c.redirect('/portal/import?ok=restoredOk', 303);
  });
}
