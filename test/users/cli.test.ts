import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { testApp } from '../support/app.js';
import { forfait } from '../support/cli.js';
import { directory, dumpDirectory, line } from './helpers.js';

const app = testApp();

describe('forfait users import|export', () => {
  it('imports a file, lists line errors without writing, and exports what sync-imports unchanged', async () => {
    const t = await directory(app);
    const dir = await mkdtemp(path.join(tmpdir(), 'forfait-cli-'));
    const good = path.join(dir, 'users.csv');
    await writeFile(good, [line('Zoë Martin', '30000000000001', '3000001', ['0612345678']), line('Jean Roux', '30000000000002', '3000002')].join('\r\n'));
    const imported = await forfait(['users', 'import', good, '--tenant', t.id, '--mode', 'append']);
    expect(imported.code, imported.stderr).toBe(0);
    expect(JSON.parse(imported.stdout)).toMatchObject({ created: 2, updated: 0, deleted: 0, unchanged: 0 });

    const bad = path.join(dir, 'bad.csv');
    await writeFile(bad, line('X', '123', '3000003'));
    const before = await dumpDirectory(t.id);
    const refused = await forfait(['users', 'import', bad, '--tenant', t.id, '--mode', 'sync']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/line 1 matricule: matricule must be exactly 14 digits/);
    expect(await dumpDirectory(t.id)).toEqual(before);

    const out = path.join(dir, 'export.csv');
    const exported = await forfait(['users', 'export', '--tenant', t.id, '--out', out]);
    expect(exported.code, exported.stderr).toBe(0);
    const csv = await readFile(out, 'utf8');
    expect(csv).toContain('Zoë Martin,30000000000001,3000001,+33612345678,');
    const dry = await forfait(['users', 'import', out, '--tenant', t.id, '--mode', 'sync', '--dry-run']);
    expect(JSON.parse(dry.stdout)).toMatchObject({ dryRun: true, unchanged: 2, created: 0, updated: 0, deleted: 0 });
  }, 120_000);
});
