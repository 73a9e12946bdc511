import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface CaughtMail {
  to: string[];
  raw: string;
}

/**
 * A real SMTP server (the smtp-server package) in the test process: every
 * message nodemailer sends is kept whole, and `next(to)` waits for the next one
 * to an address. No TLS (STARTTLS disabled) and no authentication, on loopback.
 */
export async function startSmtp(): Promise<{ url: string; mails: CaughtMail[]; next(to: string, ms?: number): Promise<CaughtMail>; close(): Promise<void> }> {
  const mails: CaughtMail[] = [];
  const waiting: { to: string; resolve: (m: CaughtMail) => void }[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const mail = { to: session.envelope.rcptTo.map((r) => r.address.toLowerCase()), raw: Buffer.concat(chunks).toString('utf8') };
        mails.push(mail);
        for (const w of [...waiting]) {
          if (mail.to.includes(w.to)) {
            waiting.splice(waiting.indexOf(w), 1);
            w.resolve(mail);
          }
        }
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    mails,
    next(to, ms = 20_000) {
      const seen = mails.length;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no mail to ${to} in ${ms} ms (${mails.length - seen} others)`)), ms);
        waiting.push({
          to: to.toLowerCase(),
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The portal link of a mail (quoted-printable soft breaks undone). */
export function linkIn(mail: CaughtMail): string {
  const body = mail.raw.replace(/=\r?\n/g, '').replace(/=3D/g, '=');
  const m = /https?:\/\/\S+\/portal\/(?:accept|reset)\?token=[A-Za-z0-9_-]+/.exec(body);
  if (!m) throw new Error(`no portal link in:\n${mail.raw}`);
  return m[0];
}

export const tokenOf = (link: string) => new URL(link).searchParams.get('token')!;
