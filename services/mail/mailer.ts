import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Logger } from 'pino';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  /** The one link the message is about (logged when the message goes to the outbox). */
  link?: string;
}

export interface Mailer {
  send(message: MailMessage): Promise<void>;
  close(): void;
}

export interface MailSettings {
  /** FORFAIT_SMTP_URL: smtp:// or smtps://user:pass@host:port; unset: the outbox folder. */
  smtpUrl?: string;
  /** FORFAIT_MAIL_FROM */
  from: string;
  /** Where messages go without SMTP: one .eml file each (<data dir>/outbox). */
  outboxDir: string;
}

/**
 * Invitations and password resets by nodemailer: SMTP when a URL is set; else
 * nodemailer builds the same RFC 5322 message and it is written to the outbox
 * as an .eml file, its link logged, so `npm start` needs nothing else.
 */
export function createMailer(settings: MailSettings, logger: Logger): Mailer {
  if (settings.smtpUrl) {
    const transport = nodemailer.createTransport(settings.smtpUrl);
    return {
      async send(m) {
        await transport.sendMail({ from: settings.from, to: m.to, subject: m.subject, text: m.text });
      },
      close: () => transport.close(),
    };
  }
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  return {
    async send(m) {
      const info = await transport.sendMail({ from: settings.from, to: m.to, subject: m.subject, text: m.text });
      await mkdir(settings.outboxDir, { recursive: true });
      const file = path.join(settings.outboxDir, `${new Date().toISOString().replace(/[:.]/g, '-')}-${randomBytes(4).toString('hex')}.eml`);
      await writeFile(file, info.message as Buffer, { mode: 0o600 });
      logger.info({ to: m.to, file, link: m.link }, 'mail written to the outbox (FORFAIT_SMTP_URL is not set)');
    },
    close: () => transport.close(),
  };
}
