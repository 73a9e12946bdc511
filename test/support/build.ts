import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * The tests that start `forfait` as a process (bin/forfait.js) run the compiled
 * CLI from dist/, as `npm start` does: build it from the sources under test
 * first (incremental: a second or two when nothing changed).
 */
export default async function build(): Promise<void> {
  const root = path.resolve(import.meta.dirname, '../..');
  try {
    await promisify(execFile)('npm', ['run', '--silent', 'build'], { cwd: root });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`npm run build failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}
