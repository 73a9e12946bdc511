import { describe, expect, it } from 'vitest';
import { detectDelimiter, parseUsersCsv, textCell, unescapeFormula } from '../../services/users/csv.js';

const thirteen = (sep: string, name = 'A') => [name, '12345678901234', '1234567', ...Array(10).fill('')].join(sep);

describe('users CSV reader', () => {
  it('finds the separator from the first record', () => {
    expect(detectDelimiter(thirteen(','))).toBe(',');
    expect(detectDelimiter(thirteen(';'))).toBe(';');
    expect(detectDelimiter(thirteen(';', '"Dupont, Jean"'))).toBe(';');
    expect(detectDelimiter('\n\n' + thirteen(';'))).toBe(';');
  });

  it('reads quotes, doubled quotes, separators and line breaks inside quotes, with the line each record starts on', () => {
    const r = parseUsersCsv('\uFEFFa,"b,""c""",d\r\n\r\n"multi\nline",x\ry\n');
    expect(r.errors).toEqual([]);
    expect(r.records).toEqual([
      { line: 1, fields: ['a', 'b,"c"', 'd'] },
      { line: 3, fields: ['multi\nline', 'x'] },
      { line: 5, fields: ['y'] },
    ]);
  });

  it('skips blank and separator-only lines, keeps a trailing empty field', () => {
    const r = parseUsersCsv(',,,\n  \na,b,\n');
    expect(r.records).toEqual([{ line: 3, fields: ['a', 'b', ''] }]);
  });

  it('reports an unterminated quote on the line it opens', () => {
    const r = parseUsersCsv('a,b\n"open,c\nd');
    expect(r.errors).toEqual([{ line: 2, message: expect.stringMatching(/unterminated/) }]);
  });

  it('escapes formula-like text cells and reads them back', () => {
    for (const v of ['=1+1', '+33', '-x', '@SUM(A1)', 'plain', "it's", '"q", r']) {
      const written = textCell(v);
      const read = parseUsersCsv(written).records[0]!.fields[0]!;
      expect(unescapeFormula(read)).toBe(v);
    }
    expect(textCell('=1+1')).toBe("'=1+1");
    expect(textCell('a,b')).toBe('"a,b"');
  });
});
