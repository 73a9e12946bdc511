// What the PDF reports (invoice, user sheet) share: the house colours and
// collecting a pdfkit document into one Buffer.
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
