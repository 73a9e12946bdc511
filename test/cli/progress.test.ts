import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { progressBar } from '../../cli/users.js';

/** A terminal as cli-progress writes to it: what it printed, its last frame. */
function terminal() {
  let out = '';
  const stream = Object.assign(
    new Writable({
      write(chunk: Buffer, _enc, done) {
        out += chunk.toString();
        done();
      },
    }),
    { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true },
  ) as unknown as NodeJS.WriteStream;
  return { stream, printed: () => out };
}

describe('forfait users import progress bar (issue 18)', () => {
  it('ends at 100 % when a phase learns its real total as it goes', () => {
    const t = terminal();
    const bar = progressBar('import', t.stream);
    // the validate phase counts line breaks first (one more than the records of a file ending with a newline)
    bar.update({ phase: 'validate', done: 0, total: 10_001 });
    bar.update({ phase: 'validate', done: 5_000, total: 10_001 });
    bar.update({ phase: 'validate', done: 10_000, total: 10_000 });
    bar.stop(); // a dry run: no write phase
    const frames = t.printed().split(/\r|\n/).filter((l) => l.includes('%'));
    expect(frames.at(-1)).toContain('validate');
    expect(frames.at(-1)).toContain('100% 10000/10000');
  });

  it('shows a short write phase to its end too', () => {
    const t = terminal();
    const bar = progressBar('import', t.stream);
    bar.update({ phase: 'validate', done: 0, total: 10_001 });
    bar.update({ phase: 'validate', done: 10_000, total: 10_000 });
    bar.update({ phase: 'write', done: 0, total: 40 });
    bar.update({ phase: 'write', done: 40, total: 40 });
    bar.stop();
    const frames = t.printed().split(/\r|\n/).filter((l) => l.includes('%'));
    expect(frames.at(-1)).toContain('write');
    expect(frames.at(-1)).toContain('100% 40/40');
  });

  it('prints nothing when stderr is not a terminal', () => {
    const t = terminal();
    (t.stream as { isTTY: boolean }).isTTY = false;
    const bar = progressBar('import', t.stream);
    bar.update({ phase: 'validate', done: 10_000, total: 10_000 });
    bar.stop();
    expect(t.printed()).toBe('');
  });
});
