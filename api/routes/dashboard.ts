import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Hono } from 'hono';

// The manager dashboard (SPEC §8): a static page whose script asks GET /v1/indicators
// with the key the manager types in. Every asset is a local file — ours from
// reports/dashboard, Chart.js from its npm package — never a CDN: PBX networks
// often have no internet.
const pageDir = path.resolve(import.meta.dirname, '../../reports/dashboard');
// chart.js exports no ./package.json: its main entry lives in dist/, next to the UMD build
const chartDir = path.dirname(createRequire(import.meta.url).resolve('chart.js'));

const assets: Record<string, { file: string; type: string }> = {
  'dashboard.js': { file: path.join(pageDir, 'dashboard.js'), type: 'text/javascript; charset=utf-8' },
  'dashboard.css': { file: path.join(pageDir, 'dashboard.css'), type: 'text/css; charset=utf-8' },
  'chart.umd.min.js': { file: path.join(chartDir, 'chart.umd.min.js'), type: 'text/javascript; charset=utf-8' },
};

export function dashboardApp() {
  const app = new Hono();
  app.get('/', async (c) => {
    const html = await readFile(path.join(pageDir, 'page.html'), 'utf8');
    return c.html(html, 200, { 'cache-control': 'no-cache' });
  });
  app.get('/assets/:file', async (c) => {
    const asset = assets[c.req.param('file')];
    if (!asset) return c.notFound();
    const body = await readFile(asset.file);
    return c.body(body, 200, { 'content-type': asset.type, 'cache-control': 'no-cache' });
  });
  return app;
}
