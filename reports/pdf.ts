// What the PDF reports (invoice, user sheet) share: the house colours, the
// typefaces (embedded) and collecting a pdfkit document into one Buffer.
import { createRequire } from 'node:module';
export const colors: Readonly<Record<'ink' | 'muted' | 'rule' | 'brand', string>> = {
  ink: '#1f2933',
  muted: '#616e7c',
  rule: '#cbd2d9',
  brand: '#243b53',
};

/** The document's bytes once doc.end() has been called. Attach before drawing: pdfkit streams as it goes. */
export function collect(doc: PDFKit.PDFDocument): Promise<Buffer> {
  const chunks: Buffer[] = [];
  doc.on('data', (c: Buffer) => chunks.push(c));
  return new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });
}

const fontFile = (name: string): string => createRequire(import.meta.url).resolve(`dejavu-fonts-ttf/ttf/${name}.ttf`);

/**
 * The typefaces every report draws with, as font files that pdfkit embeds (the
 * glyphs used, subset) in each PDF: PDF/A-3b, which a Factur-X invoice is,
 * requires every font embedded, and pdfkit's standard fonts (Helvetica) never are.
 * DejaVu Sans Condensed (npm dejavu-fonts-ttf) is about Helvetica's width, so the
 * pages keep their layout; it also has every glyph the reports print (é, €, —, ’, ·).
 * A pdfkit font given by its file is loaded once per document and reused by name.
 */
export const fonts: Readonly<Record<'regular' | 'bold' | 'italic', string>> = {
  regular: fontFile('DejaVuSansCondensed'),
  bold: fontFile('DejaVuSansCondensed-Bold'),
  italic: fontFile('DejaVuSansCondensed-Oblique'),
};

/** A size given for Helvetica, in DejaVu Sans Condensed: 2 % wider in regular, 5–8 % in bold, and taller
 * in its lowercase, so 97 % reads as large and breaks lines where Helvetica did. */
export const pt = (helveticaSize: number): number => helveticaSize * 0.97;
