/* Forfait manager dashboard: GET /v1/indicators shown as figures, charts and tables.
 * The API key is typed by the manager and kept in sessionStorage (this tab only);
 * every request sends it as a Bearer token to this same server. No CDN, no build step. */
(() => {
  

  var KEY = 'forfait.dashboard.key';
  // served by the portal (/portal/dashboard): the session cookie stands for the key
  var SESSION = document.body.hasAttribute('data-session');
  var LANG = 'forfait.dashboard.lang';

  var T = {
    fr: {
      title: 'Activité téléphonique', signout: 'Changer de clé', loginTitle: 'Ouvrir le tableau de bord',
      dashTitle: 'Tableau de bord',
      loginHelp: 'Saisissez une clé d’API qui a le droit « indicateurs ». Elle reste dans cet onglet du navigateur et n’est envoyée qu’à ce serveur.',
      key: 'Clé d’API', open: 'Ouvrir', period: 'Période', thisMonth: 'Ce mois-ci', lastMonth: 'Le mois dernier', last7: '7 derniers jours',
      today: 'Aujourd’hui', custom: 'Personnalisée', from: 'Du', to: 'Au (inclus)', granularity: 'Par', hour: 'heure', day: 'jour', month: 'mois',
      site: 'Site', line: 'Ligne', class: 'Type', all: 'tous', allClasses: 'tous', fixed: 'fixe', mobile: 'mobile', international: 'international',
      special: 'spécial', free: 'gratuit', apply: 'Afficher', export: 'Exporter CSV', outCalls: 'Appels sortants', inCalls: 'Appels entrants',
      answeredLower: 'aboutis', missedLower: 'manqués', talkTime: 'Temps de communication', outShort: 'sortant', inShort: 'entrant',
      cost: 'Coût des appels', perAnswered: 'par appel abouti', callsOverTime: 'Appels dans le temps', minutesByDestination: 'Minutes par destination',
      costOverTime: 'Coût dans le temps', topOut: 'Lignes les plus actives — sortants', topIn: 'Lignes les plus actives — entrants',
      tabSeries: 'Détail par période', tabDestinations: 'Destinations', tabLines: 'Lignes', total: 'Total', answered: 'Aboutis',
      missedIn: 'Entrants manqués', outgoing: 'Sortants', incoming: 'Entrants', missed: 'Manqués', minutes: 'Minutes', calls: 'Appels',
      destination: 'Destination', direction: 'Sens', noData: 'Aucun appel sur cette période.', loading: 'Chargement…',
      updated: 'Mis à jour à {time} · fuseau {zone}', badKey: 'Cette clé n’est pas reconnue.', noRight: 'Cette clé n’a pas le droit de voir les indicateurs.',
      failed: 'Le serveur n’a pas pu répondre ({status}).', exporting: 'Préparation de l’export…', exported: 'Export téléchargé : {name}',
      exportMissing: 'L’export CSV n’est pas encore disponible sur ce serveur.', exportBusy: 'Trop d’exports en cours, réessayez dans un instant.',
      noCdrRight: 'Cette clé n’a pas le droit d’exporter les appels.', unknownDest: '(sans tarif)', totalRow: 'Total',
      freeNumbers: 'Numéros gratuits',
    },
    en: {
      title: 'Call activity', signout: 'Change key', loginTitle: 'Open the dashboard',
      dashTitle: 'Dashboard',
      loginHelp: 'Enter an API key with the “indicators” permission. It stays in this browser tab and is only sent to this server.',
      key: 'API key', open: 'Open', period: 'Period', thisMonth: 'This month', lastMonth: 'Last month', last7: 'Last 7 days',
      today: 'Today', custom: 'Custom', from: 'From', to: 'To (included)', granularity: 'By', hour: 'hour', day: 'day', month: 'month',
      site: 'Site', line: 'Line', class: 'Type', all: 'all', allClasses: 'all', fixed: 'fixed', mobile: 'mobile', international: 'international',
      special: 'special', free: 'free', apply: 'Show', export: 'Export CSV', outCalls: 'Outgoing calls', inCalls: 'Incoming calls',
      answeredLower: 'answered', missedLower: 'missed', talkTime: 'Talk time', outShort: 'out', inShort: 'in',
      cost: 'Call cost', perAnswered: 'per answered call', callsOverTime: 'Calls over time', minutesByDestination: 'Minutes by destination',
      costOverTime: 'Cost over time', topOut: 'Most active lines — outgoing', topIn: 'Most active lines — incoming',
      tabSeries: 'By period', tabDestinations: 'Destinations', tabLines: 'Lines', total: 'Total', answered: 'Answered',
      missedIn: 'Missed incoming', outgoing: 'Outgoing', incoming: 'Incoming', missed: 'Missed', minutes: 'Minutes', calls: 'Calls',
      destination: 'Destination', direction: 'Direction', noData: 'No calls in this period.', loading: 'Loading…',
      updated: 'Updated at {time} · time zone {zone}', badKey: 'This key is not recognised.', noRight: 'This key may not read indicators.',
      failed: 'The server could not answer ({status}).', exporting: 'Preparing the export…', exported: 'Export downloaded: {name}',
      exportMissing: 'The CSV export is not available on this server yet.', exportBusy: 'Too many exports running, try again in a moment.',
      noCdrRight: 'This key may not export calls.', unknownDest: '(no rate)', totalRow: 'Total',
      freeNumbers: 'Free numbers',
    },
  };

  var COLORS = { out: '#2563eb', outSoft: '#93c5fd', answered: '#16a34a', in: '#7c3aed', inSoft: '#c4b5fd', missed: '#ea580c', cost: '#d97706' };

  var $ = (id) => document.getElementById(id);
  var lang = sessionStorage.getItem(LANG) || document.body.getAttribute('data-lang') || null;
  var data = null;
  var charts = {};
  var tab = 'series';

  function t(k, vars) {
    var s = (T[lang || 'fr'][k]) || k;
    if (vars) Object.keys(vars).forEach((v) => { s = s.replace('{' + v + '}', vars[v]); });
    return s;
  }
  function locale() { return lang === 'en' ? 'en-GB' : 'fr-FR'; }
  function int(n) { return new Intl.NumberFormat(locale()).format(n); }
  function money(s) {
    // the API's decimal string, formatted exactly (Intl takes decimal strings)
    return new Intl.NumberFormat(locale(), { style: 'currency', currency: (data?.currency) || 'EUR' }).format(s);
  }
  function pct(a, b) { return b === 0 ? '—' : new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 1 }).format(a / b); }
  function duration(seconds) {
    var m = Math.round(seconds / 60);
    var h = Math.floor(m / 60);
    var mm = m % 60;
    if (h === 0) return mm + ' min';
    return int(h) + ' h ' + String(mm).padStart(2, '0') + ' min';
  }
  /** "188 h 22" (fr) / "188h 22m" (en): the short form of the KPI sub-lines */
  function durationShort(seconds) {
    var m = Math.round(seconds / 60), h = Math.floor(m / 60), mm = String(m % 60).padStart(2, '0');
    if (h === 0) return (m % 60) + ' min';
    return lang === 'en' ? int(h) + 'h ' + mm + 'm' : int(h) + ' h ' + mm;
  }
  function minutes(seconds) { return int(Math.round(seconds / 60)); }
  /** "12.3456" / n, half-up to 4 decimals, as a decimal string: no binary floats on money. */
  function divideMoney(s, n) {
    if (n === 0) return null;
    var neg = s.charAt(0) === '-';
    var parts = s.replace('-', '').split('.');
    var units = BigInt(parts[0] + ((parts[1] || '') + '0000').slice(0, 4));
    var q = (units * 2n + BigInt(n)) / (2n * BigInt(n));
    var digits = q.toString().padStart(5, '0');
    return (neg ? '-' : '') + digits.slice(0, -4) + '.' + digits.slice(-4);
  }

  // ---- dates: local dates of the tenant's zone, as YYYY-MM-DD strings ----
  function todayIn(zone) { return new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(new Date()); }
  function addDays(d, n) { var x = new Date(d + 'T00:00:00Z'); x.setUTCDate(x.getUTCDate() + n); return x.toISOString().slice(0, 10); }
  function monthStart(d) { return d.slice(0, 8) + '01'; }
  function addMonths(d, n) { var x = new Date(monthStart(d) + 'T00:00:00Z'); x.setUTCMonth(x.getUTCMonth() + n); return x.toISOString().slice(0, 10); }
  function presetDates(p, zone) {
    var today = todayIn(zone);
    if (p === 'today') return [today, today];
    if (p === 'last7') return [addDays(today, -6), today];
    if (p === 'lastMonth') return [addMonths(today, -1), addDays(monthStart(today), -1)];
    return [monthStart(today), addDays(addMonths(today, 1), -1)];
  }
  function bucketLabel(start, g) {
    // the ISO start carries the local time of the tenant's zone: read it as written
    var y = +start.slice(0, 4), mo = +start.slice(5, 7) - 1, d = +start.slice(8, 10);
    var utc = new Date(Date.UTC(y, mo, d));
    if (g === 'month') return new Intl.DateTimeFormat(locale(), { timeZone: 'UTC', month: 'short', year: 'numeric' }).format(utc);
    var day = new Intl.DateTimeFormat(locale(), { timeZone: 'UTC', weekday: 'short', day: 'numeric', month: 'short' }).format(utc);
    if (g === 'day') return day;
    return new Intl.DateTimeFormat(locale(), { timeZone: 'UTC', day: '2-digit', month: '2-digit' }).format(utc) + ' ' + start.slice(11, 16);
  }

  // ---- i18n of the static page ----
  function applyLang() {
    document.documentElement.lang = lang || 'fr';
    document.title = 'Forfait — ' + t('title');
    document.querySelectorAll('[data-i18n]').forEach((el) => { el.textContent = t(el.getAttribute('data-i18n')); });
    document.querySelectorAll('[data-i18n-placeholder]').forEach((el) => { el.placeholder = t(el.getAttribute('data-i18n-placeholder')); });
    document.querySelectorAll('[data-lang]').forEach((b) => { b.classList.toggle('active', b.getAttribute('data-lang') === (lang || 'fr')); });
    if (data) render();
    if (lastStatus) setStatus(lastStatus.key, lastStatus.key === 'updated' && data ? updatedVars() : lastStatus.vars, lastStatus.isError);
  }

  // ---- API ----
  function api(path) {
    if (SESSION) return fetch(path, { credentials: 'same-origin' });
    return fetch(path, { headers: { authorization: 'Bearer ' + sessionStorage.getItem(KEY) } });
  }
  function query(forExport) {
    var p = new URLSearchParams();
    p.set('from', $('from').value);
    p.set('to', addDays($('to').value, 1));
    if (!forExport) p.set('granularity', $('granularity').value);
    ['site', 'line', 'class'].forEach((f) => { var v = $(f).value.trim(); if (v) p.set(f, v); });
    return p;
  }
  var lastStatus = null;
  /** A status message by its key, so that a change of language re-words it. */
  function setStatus(key, vars, isError) {
    lastStatus = { key: key, vars: vars, isError: isError };
    $('status').textContent = t(key, vars);
    $('status').classList.toggle('error', !!isError);
  }
  function updatedVars() {
    return { time: new Intl.DateTimeFormat(locale(), { timeStyle: 'short' }).format(loadedAt), zone: data.period.timezone };
  }
  var loadedAt = new Date();

  function load(first) {
    setStatus('loading');
    var path = first && !$('from').value ? '/v1/indicators' : '/v1/indicators?' + query(false).toString();
    return api(path).then((res) => {
      if (SESSION && res.status === 401) { location.href = '/portal/signin?next=/portal/dashboard'; return; }
      if (SESSION && res.status === 403) { setStatus('noRight', {}, true); return; }
      if (res.status === 401 || res.status === 403) {
        sessionStorage.removeItem(KEY);
        showLogin(t(res.status === 401 ? 'badKey' : 'noRight'));
        return;
      }
      if (!res.ok) { setStatus('failed', { status: res.status }, true); return; }
      return res.json().then((body) => {
        data = body;
        if (!lang) { lang = body.locale === 'en' ? 'en' : 'fr'; applyLang(); }
        if (first && !$('from').value) {
          $('from').value = body.period.from.slice(0, 10);
          $('to').value = addDays(body.period.to.slice(0, 10), -1);
        }
        $('zone').textContent = body.period.timezone;
        showDash();
        render();
        history.replaceState(null, '', '/dashboard?' + query(false).toString());
        loadedAt = new Date();
        setStatus('updated', updatedVars());
        document.body.setAttribute('data-loaded', String(Date.now()));
      });
    }).catch((err) => { setStatus('failed', { status: String(err) }, true); });
  }

  function exportCsv() {
    var p = query(true);
    var name = 'cdrs_' + $('from').value + '_' + $('to').value + '.csv';
    setStatus('exporting');
    $('export').disabled = true;
    api('/v1/cdrs/export.csv?' + p.toString()).then((res) => {
      if (res.status === 404) { setStatus('exportMissing', null, true); return; }
      if (res.status === 403) { setStatus('noCdrRight', null, true); return; }
      if (res.status === 429 || res.status === 408) { setStatus('exportBusy', null, true); return; }
      if (!res.ok) { setStatus('failed', { status: res.status }, true); return; }
      return res.blob().then((blob) => {
        var a = document.createElement('a');
        a.href = URL.createObjectURL(blob);
        a.download = name;
        document.body.appendChild(a);
        a.click();
        setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
        setStatus('exported', { name: name });
      });
    }).catch((err) => { setStatus('failed', { status: String(err) }, true); })
      .finally(() => { $('export').disabled = false; });
  }

  // ---- rendering ----
  function kpi(name, text) { document.querySelectorAll('[data-kpi="' + name + '"]').forEach((el) => { el.textContent = text; }); }

  function render() {
    var o = data.outgoing, i = data.incoming;
    kpi('outgoing.calls', int(o.calls));
    kpi('outgoing.answered', int(o.answered));
    kpi('outgoing.rate', pct(o.answered, o.calls));
    kpi('incoming.calls', int(i.calls));
    kpi('incoming.missed', int(i.missed));
    kpi('incoming.rate', pct(i.missed, i.calls));
    kpi('talk.total', duration(o.talkSeconds + i.talkSeconds));
    kpi('outgoing.talk', durationShort(o.talkSeconds));
    kpi('incoming.talk', durationShort(i.talkSeconds));
    kpi('outgoing.cost', money(o.cost));
    var avg = divideMoney(o.cost, o.answered);
    kpi('outgoing.avgCost', avg === null ? '—' : money(avg));
    renderCharts();
    renderTable();
  }

  var baseOptions = (extra) => {
    var o = {
      responsive: true, maintainAspectRatio: false, animation: false, locale: locale(),
      plugins: { legend: { position: 'bottom', labels: { boxWidth: 12, usePointStyle: true, sort: (a, b) => a.datasetIndex - b.datasetIndex } }, tooltip: { mode: 'index', intersect: false } },
      scales: { x: { grid: { display: false } }, y: { beginAtZero: true, grid: { color: '#eef2f7' }, ticks: { precision: 0 } } },
    };
    return Object.assign(o, extra || {});
  };
  function chart(id, config) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart($(id), config);
  }

  function renderCharts() {
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = '#475569';
    var g = data.period.granularity;
    var labels = data.series.map((p) => bucketLabel(p.start, g));
    var s = data.series;
    chart('chart-calls', {
      type: 'bar',
      data: {
        labels: labels,
        datasets: [
          { label: t('total'), data: s.map((p) => p.outgoingCalls + p.incomingCalls), backgroundColor: COLORS.outSoft, borderRadius: 3, order: 2 },
          { label: t('answered'), data: s.map((p) => p.outgoingAnswered + p.incomingCalls - p.incomingMissed), backgroundColor: COLORS.answered, borderRadius: 3, order: 2 },
          { label: t('missedIn'), type: 'line', data: s.map((p) => p.incomingMissed), borderColor: COLORS.missed, backgroundColor: COLORS.missed, pointRadius: 2, tension: 0.25, order: 1 },
        ],
      },
      options: baseOptions(),
    });
    chart('chart-cost', {
      type: 'bar',
      data: { labels: labels, datasets: [{ label: t('cost'), data: s.map((p) => Number(p.cost)), backgroundColor: COLORS.cost, borderRadius: 3 }] },
      options: baseOptions({
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: (ctx) => money(s[ctx.dataIndex].cost) } },
        },
        scales: { x: { grid: { display: false } }, y: { beginAtZero: true, grid: { color: '#eef2f7' }, ticks: { callback: (v) => money(String(v)) } } },
      }),
    });
    var dests = data.outgoing.byDestination.slice().sort((a, b) => b.seconds - a.seconds).slice(0, 8);
    horizontal('chart-destinations', dests.map((d) => destName(d)), [
      { label: t('minutes'), data: dests.map((d) => Math.round(d.seconds / 60)), backgroundColor: COLORS.out, borderRadius: 3 },
    ], (ctx) => { var d = dests[ctx.dataIndex]; return minutes(d.seconds) + ' min · ' + int(d.calls) + ' ' + t('calls').toLowerCase() + ' · ' + money(d.cost); });
    var lo = data.outgoing.topLines.slice(0, 8);
    horizontal('chart-lines-out', lo.map((l) => l.line || '—'), [
      { label: t('calls'), data: lo.map((l) => l.calls), backgroundColor: COLORS.out, borderRadius: 3 },
    ], (ctx) => { var l = lo[ctx.dataIndex]; return int(l.calls) + ' ' + t('calls').toLowerCase() + ' · ' + minutes(l.seconds) + ' min'; });
    var li = data.incoming.topLines.slice(0, 8);
    horizontal('chart-lines-in', li.map((l) => l.line || '—'), [
      { label: t('calls'), data: li.map((l) => l.calls), backgroundColor: COLORS.in, borderRadius: 3 },
    ], (ctx) => { var l = li[ctx.dataIndex]; return int(l.calls) + ' ' + t('calls').toLowerCase() + ' · ' + minutes(l.seconds) + ' min'; });
  }
  function horizontal(id, labels, datasets, label) {
    chart(id, {
      type: 'bar',
      data: { labels: labels, datasets: datasets },
      options: baseOptions({
        indexAxis: 'y',
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: label } } },
        scales: { x: { beginAtZero: true, grid: { color: '#eef2f7' }, ticks: { precision: 0 } }, y: { grid: { display: false } } },
      }),
    });
  }
  function destLabel(d) {
    if (d.destination === null && d.class === 'free') return t('freeNumbers');
    return d.destination || t('unknownDest');
  }
  function destName(d) {
    return d.class && !(d.destination === null && d.class === 'free') ? destLabel(d) + ' (' + t(d.class) + ')' : destLabel(d);
  }

  function cell(text, tag) { var el = document.createElement(tag || 'td'); el.textContent = text; return el; }
  function row(values, tag) { var tr = document.createElement('tr'); values.forEach((v) => { tr.appendChild(cell(v, tag)); }); return tr; }
  function renderTable() {
    var table = $('table');
    table.textContent = '';
    var head = document.createElement('thead'), body = document.createElement('tbody'), foot = document.createElement('tfoot');
    var g = data.period.granularity;
    if (tab === 'series') {
      head.appendChild(row([t('period'), t('outgoing'), t('answered'), t('incoming'), t('missed'), t('talkTime') + ' (min)', t('cost')], 'th'));
      data.series.forEach((p) => {
        if (g === 'hour' && p.outgoingCalls + p.incomingCalls === 0) return;
        body.appendChild(row([bucketLabel(p.start, g), int(p.outgoingCalls), int(p.outgoingAnswered), int(p.incomingCalls), int(p.incomingMissed), minutes(p.talkSeconds), money(p.cost)]));
      });
      const o = data.outgoing, i = data.incoming;
      foot.appendChild(row([t('totalRow'), int(o.calls), int(o.answered), int(i.calls), int(i.missed), minutes(o.talkSeconds + i.talkSeconds), money(o.cost)]));
    } else if (tab === 'destinations') {
      head.appendChild(row([t('destination'), t('class'), t('calls'), t('minutes'), t('cost')], 'th'));
      data.outgoing.byDestination.forEach((d) => {
        body.appendChild(row([destLabel(d), d.class ? t(d.class) : '—', int(d.calls), minutes(d.seconds), money(d.cost)]));
      });
    } else {
      head.appendChild(row([t('line'), t('direction'), t('calls'), t('minutes')], 'th'));
      data.outgoing.topLines.forEach((l) => { body.appendChild(row([l.line || '—', t('outgoing'), int(l.calls), minutes(l.seconds)])); });
      data.incoming.topLines.forEach((l) => { body.appendChild(row([l.line || '—', t('incoming'), int(l.calls), minutes(l.seconds)])); });
    }
    if (!body.children.length) {
      const tr = document.createElement('tr'), td = cell(t('noData'));
      td.colSpan = 7; td.className = 'empty'; tr.appendChild(td); body.appendChild(tr);
    }
    table.appendChild(head); table.appendChild(body); table.appendChild(foot);
  }

  // ---- screens ----
  function showLogin(message) {
    $('dash').hidden = true;
    $('signout').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = message || '';
    $('key').focus();
  }
  function showDash() {
    $('login').hidden = true;
    $('dash').hidden = false;
    $('signout').hidden = SESSION;
  }

  document.querySelectorAll('[data-lang]').forEach((b) => {
    b.addEventListener('click', () => { lang = b.getAttribute('data-lang'); sessionStorage.setItem(LANG, lang); applyLang(); });
  });
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(KEY, $('key').value.trim());
    $('key').value = '';
    load(true);
  });
  $('signout').addEventListener('click', () => { sessionStorage.removeItem(KEY); data = null; showLogin(); });
  $('filters').addEventListener('submit', (e) => { e.preventDefault(); load(false); });
  $('preset').addEventListener('change', () => {
    if ($('preset').value === 'custom') return;
    var d = presetDates($('preset').value, (data?.period.timezone) || Intl.DateTimeFormat().resolvedOptions().timeZone);
    $('from').value = d[0];
    $('to').value = d[1];
    if ($('preset').value === 'today') $('granularity').value = 'hour';
    else if ($('granularity').value === 'hour') $('granularity').value = 'day';
    load(false);
  });
  ['from', 'to'].forEach((id) => { $(id).addEventListener('change', () => { $('preset').value = 'custom'; }); });
  $('export').addEventListener('click', exportCsv);
  document.querySelectorAll('[data-tab]').forEach((b) => {
    b.addEventListener('click', () => {
      tab = b.getAttribute('data-tab');
      document.querySelectorAll('[data-tab]').forEach((x) => { x.classList.toggle('active', x === b); });
      if (data) renderTable();
    });
  });

  // filters from the address (a bookmarked view): ?from=2026-10-01&to=2026-11-01&granularity=day&site=…
  var params = new URLSearchParams(location.search);
  if (params.get('from') && params.get('to')) {
    $('from').value = params.get('from');
    $('to').value = addDays(params.get('to'), -1);
    $('preset').value = 'custom';
  }
  ['granularity', 'site', 'line', 'class'].forEach((f) => { if (params.get(f)) $(f).value = params.get(f); });

  applyLang();
  if (SESSION || sessionStorage.getItem(KEY)) load(true);
  else showLogin();
})();
