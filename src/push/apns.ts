import { connect, constants, type ClientHttp2Session } from 'node:http2';
import type { KeyObject } from 'node:crypto';
import { toPem } from '../pki/certificate.ts';

/** Apple's APNs `reason` values, in words an administrator can act on. */
export const APNS_REASONS: Record<string, string> = {
  BadDeviceToken: 'the device token is not valid for this environment',
  DeviceTokenNotForTopic: 'the device token does not belong to this push topic',
  TopicDisallowed: 'pushing to this topic is not allowed',
  BadTopic: 'the apns-topic is invalid',
  MissingTopic: 'the apns-topic header is missing',
  BadCertificate: 'the push certificate was refused',
  BadCertificateEnvironment: 'the push certificate is for another APNs environment',
  ExpiredProviderToken: 'the provider credential has expired',
  Forbidden: 'the push certificate is not allowed to push',
  Unregistered: 'the device token is no longer active for this topic',
  PayloadTooLarge: 'the push payload is too large',
  TooManyRequests: 'too many pushes to this device token',
  InternalServerError: 'APNs had an internal error',
  ServiceUnavailable: 'APNs is unavailable',
  Shutdown: 'the APNs server is shutting down',
};

export interface PushRequest {
  token: Buffer;
  pushMagic: string;
  topic: string;
}

export type PushOutcome =
  | { ok: true; apnsId: string | null; attempts: number }
  | { ok: false; status: number; reason: string; message: string; unregistered: boolean; attempts: number };

export interface ApnsSettings {
  /** https://api.push.apple.com by default; a stand-in in tests. */
  url: string;
  certificate: Buffer;
  privateKey: KeyObject;
  /** Extra trust anchors for the APNs server's TLS (tests only: Apple's servers chain to public roots). */
  ca?: string[];
  /** At most this many pushes in flight on the connection. */
  concurrency: number;
  /** APNs keeps the notification this long for an offline device. */
  expirationSeconds: number;
  retries: number;
  backoffMs: number;
}

/**
 * An HTTP/2 APNs client with the push certificate as its TLS identity: one connection, reused and re-made when it
 * goes away, at most `concurrency` streams at a time; 429 and 5xx are retried with exponential backoff.
 */
export class ApnsClient {
  #session?: ClientHttp2Session;
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(private readonly settings: ApnsSettings) {}

  #connect(): ClientHttp2Session {
    if (this.#session && !this.#session.closed && !this.#session.destroyed) return this.#session;
    const session = connect(this.settings.url, {
      cert: toPem(this.settings.certificate),
      key: this.settings.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      ...(this.settings.ca ? { ca: this.settings.ca } : {}),
    });
    session.on('error', () => session.destroy());
    session.on('goaway', () => session.close());
    session.unref();
    this.#session = session;
    return session;
  }

  async #slot(): Promise<() => void> {
    if (this.#active >= this.settings.concurrency) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#active++;
    return () => {
      this.#active--;
      this.#waiting.shift()?.();
    };
  }

  #once(request: PushRequest, now: Date): Promise<{ status: number; body: string; apnsId: string | null }> {
    return new Promise((resolve, reject) => {
      const stream = this.#connect().request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: `/3/device/${request.token.toString('hex')}`,
        'content-type': 'application/json',
        'apns-push-type': 'mdm',
        'apns-topic': request.topic,
        'apns-priority': '10',
        'apns-expiration': String(Math.floor(now.getTime() / 1000) + this.settings.expirationSeconds),
      });
      let status = 0;
      let apnsId: string | null = null;
      let body = '';
      stream.setEncoding('utf8');
      stream.on('response', (headers) => {
        status = Number(headers[constants.HTTP2_HEADER_STATUS]);
        apnsId = (headers['apns-id'] as string | undefined) ?? null;
      });
      stream.on('data', (chunk: string) => (body += chunk));
      stream.on('end', () => resolve({ status, body, apnsId }));
      stream.on('error', reject);
      stream.setTimeout(15_000, () => stream.close(constants.NGHTTP2_CANCEL));
      stream.end(JSON.stringify({ mdm: request.pushMagic }));
    });
  }

  async push(request: PushRequest, now: Date = new Date()): Promise<PushOutcome> {
    const release = await this.#slot();
    try {
      for (let attempt = 1; ; attempt++) {
        let response: { status: number; body: string; apnsId: string | null };
        try {
          response = await this.#once(request, now);
        } catch (err) {
          if (attempt > this.settings.retries)
            return {
              ok: false,
              status: 0,
              reason: 'ConnectionError',
              message: (err as Error).message,
              unregistered: false,
              attempts: attempt,
            };
          this.#session?.destroy();
          await new Promise((r) => setTimeout(r, this.settings.backoffMs * 2 ** (attempt - 1)));
          continue;
        }
        if (response.status === 200) return { ok: true, apnsId: response.apnsId, attempts: attempt };
        let reason = `HTTP ${response.status}`;
        try {
          reason = (JSON.parse(response.body) as { reason?: string }).reason ?? reason;
        } catch {
          /* not JSON: keep the status */
        }
        const retryable = response.status === 429 || response.status >= 500;
        if (retryable && attempt <= this.settings.retries) {
          await new Promise((r) => setTimeout(r, this.settings.backoffMs * 2 ** (attempt - 1)));
          continue;
        }
        return {
          ok: false,
          status: response.status,
          reason,
          message: APNS_REASONS[reason] ?? `APNs refused the push (${reason})`,
          unregistered: response.status === 410,
          attempts: attempt,
        };
      }
    } finally {
      release();
    }
  }

  close(): void {
    this.#session?.close();
  }
}
