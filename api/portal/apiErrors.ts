import type { Locale } from '../../services/invoices/labels.js';
import type { ErrorCode } from '../errors.js';
import type { ApiFailure } from './client.js';
import { labels, say, type LabelKey } from './labels.js';

/**
 * The API's error envelope in the person's language (issue 20). The API speaks
 * English to programs; a page says the refusal from the envelope's stable parts:
 * its `code` (one sentence per code, below) and each detail's `field`, `value`
 * and `line`. A detail's message is the API's English; the French one is said
 * from the templates `api/errors.ts` (issueDetails) and the field rules write
 * them with, and a message no template matches is "valeur refusée", which with
 * its field and value still says what to correct. English pages keep the API's
 * own words, which are more precise than any table.
 */

const codes: Record<ErrorCode, Record<Locale, string>> = {
  BAD_REQUEST: { fr: 'La demande est mal formée.', en: 'The request is malformed.' },
  VALIDATION_FAILED: { fr: 'Des valeurs sont refusées.', en: 'Some values are refused.' },
  UNAUTHORIZED: { fr: 'Connexion requise.', en: 'Sign-in required.' },
  FORBIDDEN: { fr: 'Vos rôles ne permettent pas cette action.', en: 'Your roles do not allow this.' },
  NOT_FOUND: { fr: 'Introuvable.', en: 'Not found.' },
  REQUEST_TIMEOUT: { fr: 'La demande a pris trop de temps : réessayez.', en: 'The request took too long: try again.' },
  CONFLICT: { fr: 'Impossible dans l’état actuel des données.', en: 'Not possible as things are.' },
  LICENCE_LIMIT: { fr: 'Toutes les licences sont utilisées : libérez-en une ou changez d’offre.', en: 'Every licence is in use: free one or change the product type.' },
  ISSUER_NOT_CONFIGURED: { fr: 'Les mentions de l’émetteur des factures ne sont pas encore réglées.', en: 'The invoice issuer’s details are not set yet.' },
  PRODUCT_TYPE_LOCKED: { fr: 'Cette offre est verrouillée : elle ne peut pas être changée ici.', en: 'This product type is locked: it cannot be changed here.' },
  IDEMPOTENCY_CONFLICT: { fr: 'Cette opération a déjà été enregistrée avec d’autres valeurs.', en: 'This operation was already recorded with other values.' },
  PAYLOAD_TOO_LARGE: { fr: 'Le fichier est trop volumineux.', en: 'The file is too large.' },
  UNSUPPORTED_MEDIA_TYPE: { fr: 'Ce type de fichier n’est pas accepté.', en: 'This type of file is not accepted.' },
  TOO_MANY_REQUESTS: { fr: 'Trop de demandes : réessayez dans un instant.', en: 'Too many requests: try again in a moment.' },
  INTERNAL: { fr: 'Une erreur interne est survenue : réessayez, ou signalez-la.', en: 'An internal error occurred: try again, or report it.' },
  SERVICE_UNAVAILABLE: { fr: 'Le service est momentanément indisponible : réessayez dans un instant.', en: 'The service is unavailable for a moment: try again shortly.' },
};

/** The French of the API's detail templates (api/errors.ts, the field rules), first match wins. */
const frDetails: [RegExp, (m: RegExpExecArray) => string][] = [
  [/is required$/, () => 'obligatoire'],
  [/is not a field of this request/, () => 'n’est pas un champ de ce formulaire'],
  [/must be one of ([^:]+)/, (m) => `doit être l’une des valeurs : ${m[1]}`],
  [/exactly (\d+) digits/, (m) => `doit compter exactement ${m[1]} chiffres`],
  [/must be at least (\d+) character/, (m) => `doit compter au moins ${m[1]} caractère(s)`],
  [/must be at most (\d+) character/, (m) => `doit compter au plus ${m[1]} caractère(s)`],
  [/(\d+) to (\d+) characters/, (m) => `doit compter de ${m[1]} à ${m[2]} caractères`],
  [/must hold at least (\d+) item/, (m) => `au moins ${m[1]} élément(s)`],
  [/must hold at most (\d+) item/, (m) => `au plus ${m[1]} élément(s)`],
  [/must be at least (-?[\d.]+)/, (m) => `doit valoir au moins ${m[1]}`],
  [/must be at most (-?[\d.]+)/, (m) => `doit valoir au plus ${m[1]}`],
  [/must be a whole number/, () => 'doit être un nombre entier'],
  [/must be a number/, () => 'doit être un nombre'],
  [/must be true or false/, () => 'doit être oui ou non'],
  [/must be an ISO 8601 date-time/, () => 'doit être une date et heure (2026-11-03T10:15:00+01:00)'],
  [/must be a date \(YYYY-MM-DD\)/, () => 'doit être une date (AAAA-MM-JJ)'],
  [/must be an email address/, () => 'doit être une adresse e-mail'],
  [/already taken|already exists|taken$|in use/, () => 'déjà utilisé(e)'],
  [/^not a MAC address: (.*)$/, (m) => `n’est pas une adresse MAC : ${m[1]!.replace(' or ', ' ou ')}`],
  [/all-zero address is no device|broadcast address is no device|group \(multicast\) address is no device/, () => 'n’est l’adresse d’aucun appareil'],
  [/^no such site/, () => 'site inconnu (voir la liste des sites)'],
  [/^no such device type/, () => 'type d’appareil inconnu du catalogue'],
  [/^not approved for site (.*)$/, (m) => `type non approuvé pour le site ${m[1]}`],
  [/^the (\S+) has (\d+) line port/, (m) => `le ${m[1]} n’a que ${m[2]} port(s)`],
  [/^a port is a whole number from 1/, () => 'un port est un nombre entier à partir de 1'],
  [/^port given twice/, () => 'port donné deux fois'],
  [/^no user has this identifiant/, () => 'aucun utilisateur n’a cet identifiant'],
  [/is not a DECT device/, () => 'n’est pas un appareil DECT : pas de station multicellule'],
  [/^a line is port:identifiant/, () => 'une ligne s’écrit port:identifiant, par exemple 1:1234567'],
  [/^the same device as line (\d+)/, (m) => `le même appareil qu’à la ligne ${m[1]}`],
  [/^live devices of the site are of this type/, () => 'des appareils en service du site sont de ce type'],
  [/^a restart goes to a registered phone|: a restart goes to a registered phone$/, () => 'un redémarrage ne s’adresse qu’à un téléphone enregistré'],
  [/no Kamailio RPC is configured \((\w+)\)/, (m) => `aucun Kamailio n’est configuré pour les envoyer (${m[1]}) : les redémarrages ne peuvent pas partir`],
  [/unknown column/, () => 'colonne inconnue'],
  [/missing column/, () => 'colonne manquante'],
];

/** A field as the page names it: its form label where the portal has one, else the API's name. */
export function fieldLabel(locale: Locale, field: string): string {
  const key = field === 'fullName' ? 'name' : field;
  return key in labels[locale] ? labels[locale][key as LabelKey] : field;
}

/** The French of an API message a template knows, else undefined. */
function frenchOf(message: string): string | undefined {
  for (const [re, fr] of frDetails) {
    const m = re.exec(message);
    if (m) return fr(m);
  }
  return undefined;
}

function detailMessage(locale: Locale, message: string): string {
  if (locale === 'en') return message;
  return frenchOf(message) ?? 'valeur refusée';
}

export interface SaidError {
  headline: string;
  details: { line?: number; field: string; value: string; message: string }[];
}

/** What the error box shows: the headline and each detail in the page's language. */
export function sayError(locale: Locale, error: ApiFailure): SaidError {
  const details = (error.details ?? []).map((d) => ({
    ...(d.line !== undefined ? { line: d.line } : {}),
    field: d.field === undefined ? '' : fieldLabel(locale, d.field),
    value: d.value ?? '',
    message: error.said ? d.message : detailMessage(locale, d.message),
  }));
  if (error.said) return { headline: error.message, details };
  if (error.code === 'FORBIDDEN' && /CSRF/.test(error.message)) return { headline: say(locale, 'csrfRefused'), details };
  const sentence = codes[error.code as ErrorCode]?.[locale];
  if (locale === 'en' || sentence === undefined) return { headline: error.message, details };
  const fields = [...new Set(details.map((d) => d.field).filter(Boolean))].map((f) => `« ${f} »`);
  if (fields.length) return { headline: `${sentence} À corriger : ${fields.join(', ')}.`, details };
  // a refusal without details (a 409 on the device's state…): its reason too, where a template knows it
  const reason = details.length === 0 ? frenchOf(error.message) : undefined;
  return { headline: reason ? `${reason[0]!.toUpperCase()}${reason.slice(1)}.` : sentence, details };
}
