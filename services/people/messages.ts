import type { Locale } from '../invoices/labels.js';

/** The mails people receive, in their language: the one place their words live. */
export const mailTexts: Record<Locale, {
  invitation: (o: { name: string; by: string; link: string; hours: number }) => { subject: string; text: string };
  reset: (o: { name: string; link: string; minutes: number }) => { subject: string; text: string };
}> = {
  fr: {
    invitation: (o) => ({
      subject: 'Votre accès au portail Forfait',
      text: `Bonjour ${o.name},\n\n${o.by} vous invite sur le portail Forfait.\nChoisissez votre mot de passe en ouvrant ce lien (valable ${o.hours} heures, une seule fois) :\n\n${o.link}\n\nSi vous n’attendiez pas cette invitation, ignorez ce message.\n`,
    }),
    reset: (o) => ({
      subject: 'Réinitialisation de votre mot de passe Forfait',
      text: `Bonjour ${o.name},\n\nPour choisir un nouveau mot de passe, ouvrez ce lien (valable ${o.minutes} minutes, une seule fois) :\n\n${o.link}\n\nSi vous n’avez rien demandé, ignorez ce message : votre mot de passe ne change pas.\n`,
    }),
  },
  en: {
    invitation: (o) => ({
      subject: 'Your access to the Forfait portal',
      text: `Hello ${o.name},\n\n${o.by} invites you to the Forfait portal.\nChoose your password by opening this link (valid ${o.hours} hours, once):\n\n${o.link}\n\nIf you did not expect this invitation, ignore this message.\n`,
    }),
    reset: (o) => ({
      subject: 'Resetting your Forfait password',
      text: `Hello ${o.name},\n\nTo choose a new password, open this link (valid ${o.minutes} minutes, once):\n\n${o.link}\n\nIf you did not ask for this, ignore this message: your password does not change.\n`,
    }),
  },
};
