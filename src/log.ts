import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Structured JSON logs. Secrets must never be logged in the first place; the redaction list is a second line of
 * defence for the field names we use for them.
 */
export const REDACTED_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  '*.privateKey',
  '*.token',
  '*.challenge',
  '*.password',
  '*.masterKey',
];

export function createLogger(level = 'info', destination?: DestinationStream): Logger {
  return pino({ level, base: { service: 'certmdm' }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' } }, destination);
}
