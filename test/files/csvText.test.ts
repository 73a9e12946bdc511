import { readFile } from 'node:fs/promises';
import path from 'node:path';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { CsvDecoder, decodeCsv, headerLineMessage, looksLikeHeader } from '../../services/shared/csvText.js';
import { ValidationError } from '../../services/shared/errors.js';

const fixture = (name: string) => readFile(path.join(import.meta.dirname, '../fixtures/files', name));

function refusal(bytes: Uint8Array): ValidationError {
  try {
    decodeCsv(bytes);
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('decodeCsv accepted the file');
}

/** The text of `bytes` pushed in chunks of `size` bytes. */
function chunked(bytes: Uint8Array, size: number) {
  const decoder = new CsvDecoder();
  let text = '';
  for (let i = 0; i < bytes.length; i += size) text += decoder.push(bytes.subarray(i, i + size));
  text += decoder.end();
  return { text, ...decoder.reading };
}

describe('CSV bytes as text (issue 18)', () => {
  it('UTF-8 without BOM is read as it is, with nothing to say', () => {
    expect(decodeCsv(Buffer.from('Zoë,1\n', 'utf8'))).toEqual({ text: 'Zoë,1\n', encoding: 'utf-8', notes: [] });
  });

  it('a UTF-8 BOM is removed, and said', async () => {
    const r = decodeCsv(await fixture('users-excel-header.csv'));
    expect(r.encoding).toBe('utf-8');
    expect(r.text.startsWith('Nom;Matricule')).toBe(true);
    expect(r.text).toContain('Noël Garçon');
    expect(r.notes).toEqual([expect.stringContaining('byte order mark')]);
  });

  it('a file saved by French Excel (Windows-1252) is converted, accents intact, and the answer says so', async () => {
    const r = decodeCsv(await fixture('users-windows-1252.csv'));
    expect(r.encoding).toBe('windows-1252');
    expect(r.text).toContain('François Lefèvre');
    expect(r.text).toContain('Zoë Œillet-Müller');
    expect(r.text).toContain('Agnès Bénédicte Ñúñez');
    expect(r.text).not.toContain('\uFFFD');
    expect(r.notes).toEqual([expect.stringContaining('Windows-1252')]);
  });

  it('the same when the first accent comes in a later chunk, or a chunk cuts a UTF-8 letter in two', async () => {
    const ascii = Buffer.from('Jean Dupont;1\r\n'.repeat(50), 'latin1');
    const latin = Buffer.concat([ascii, await fixture('users-windows-1252.csv')]);
    for (const size of [1, 2, 7, 64, 100_000]) {
      const r = chunked(latin, size);
      expect(r.encoding).toBe('windows-1252');
      expect(r.text).toBe(ascii.toString('latin1') + iconv.decode(await fixture('users-windows-1252.csv'), 'windows-1252'));
      const utf8 = chunked(Buffer.from('Hélène;1\nZoë;2\n€;3\n', 'utf8'), size);
      expect(utf8).toEqual({ text: 'Hélène;1\nZoë;2\n€;3\n', encoding: 'utf-8', notes: [] });
    }
  });

  it('UTF-16 with its BOM (Excel "Unicode text") is converted', () => {
    const bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('Hélène;1\n', 'utf16le')]);
    expect(decodeCsv(bytes)).toMatchObject({ text: 'Hélène;1\n', encoding: 'utf-16le' });
  });

  it('refuses, naming the line, a file that mixes UTF-8 and Windows-1252', () => {
    const bytes = Buffer.concat([Buffer.from('Hélène;1\nA;2\n', 'utf8'), iconv.encode('François;3\n', 'windows-1252')]);
    const err = refusal(bytes);
    expect(err.details).toEqual([{ line: 3, field: 'encoding', message: expect.stringContaining('mixes two encodings') }]);
  });

  it('refuses a file in an encoding it cannot be sure of (Japanese Shift_JIS), naming the line', () => {
    const bytes = Buffer.concat([Buffer.from('a;1\n', 'utf8'), iconv.encode('山田太郎;2\n東京都千代田区;3\n', 'shift_jis')]);
    const err = refusal(bytes);
    expect(err.details[0]).toMatchObject({ line: 2, field: 'encoding' });
    expect(err.details[0]!.message).toContain('CSV UTF-8');
  });

  it('never lets U+FFFD through: a file already damaged by an earlier conversion is refused at its line', () => {
    const err = refusal(Buffer.from('Zoë;1\nFran\uFFFDois;2\n', 'utf8'));
    expect(err.details).toEqual([{ line: 2, field: 'encoding', message: expect.stringContaining('U+FFFD') }]);
  });
});

describe('header lines', () => {
  it('column names look like a header; data lines do not', () => {
    expect(looksLikeHeader(['Nom', 'Matricule', 'Identifiant', 'Numéro 1', ''])).toBe(true);
    expect(looksLikeHeader(['accountcode', 'src', 'dst', 'dcontext'])).toBe(true);
    expect(looksLikeHeader(['François Lefèvre', '20260000000101', '1000101', '06 12 34 56 78'])).toBe(false);
    expect(looksLikeHeader(['5550001', '1001', '0612345678', 'from-internal'])).toBe(false);
    expect(looksLikeHeader(['Zoë Martin'])).toBe(false);
  });

  it('the message names the line and what is on it', () => {
    expect(headerLineMessage(['Nom', 'Matricule', 'Identifiant', 'Numéro 1'], 'users')).toBe(
      'the file must have no header line: line 1 ("Nom", "Matricule", "Identifiant", …) looks like column names, and a users file starts with its first record; delete that line and import again',
    );
  });
});
