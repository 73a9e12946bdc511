import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { XMLParser } from 'fast-xml-parser';

/**
 * The official EN 16931 validation artefacts for CII (the European Commission's
 * eInvoicing-EN16931 rules, vendored in test/fixtures/en16931-cii with their
 * licence and version), run with SaxonJS: the XSLT is compiled once to a SEF
 * by xslt3, then applied to each document; its SVRL report is parsed.
 */
const require = createRequire(import.meta.url);
const run = promisify(execFile);
const XSLT = fileURLToPath(new URL('../fixtures/en16931-cii/EN16931-CII-validation.xslt', import.meta.url));

interface SaxonJs {
  transform(options: { stylesheetFileName: string; sourceText: string; destination: 'serialized' }, mode: 'async'): Promise<{ principalResult: string }>;
}
const SaxonJS = require('saxon-js') as SaxonJs;

/** One rule that fired: its id (BR-CO-15, CII-SR-…), flag (fatal | warning) and message. */
export interface Assertion {
  id: string;
  flag: string;
  location: string;
  text: string;
}

export interface Schematron {
  /** Every failed assertion of the rules for this CII XML (an empty list: conformant to EN 16931). */
  validate(xml: string): Promise<{ failed: Assertion[]; firedRules: number }>;
  close(): Promise<void>;
}

const svrl = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '', removeNSPrefix: true, isArray: (name) => name === 'failed-assert' || name === 'fired-rule' });

/** Compiles the rules (tens of seconds on a loaded machine: call it from a hook with a long timeout). */
export async function en16931Schematron(): Promise<Schematron> {
  const dir = await mkdtemp(path.join(tmpdir(), 'forfait-sch-'));
  const sef = path.join(dir, 'EN16931-CII-validation.sef.json');
  await run(process.execPath, [require.resolve('xslt3/xslt3.js'), `-xsl:${XSLT}`, `-export:${sef}`, '-nogo', '-relocate:on'], { maxBuffer: 16 * 1024 * 1024 });
  return {
    async validate(xml) {
      const out = await SaxonJS.transform({ stylesheetFileName: sef, sourceText: xml, destination: 'serialized' }, 'async');
      const report = svrl.parse(out.principalResult)['schematron-output'] as { 'failed-assert'?: Record<string, unknown>[]; 'fired-rule'?: unknown[] };
      const failed = (report['failed-assert'] ?? []).map((a) => ({
        id: String(a.id),
        flag: String(a.flag),
        location: String(a.location),
        text: String(a.text).trim(),
      }));
      return { failed, firedRules: (report['fired-rule'] ?? []).length };
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}
