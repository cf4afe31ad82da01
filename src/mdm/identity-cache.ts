import type { CertificateRecord, EnrollmentRecord, Store } from '../store/types.ts';

/** What the binding policy reads of an enrollment: its status and its identities, nothing a message changes. */
export type EnrollmentIdentity = Pick<EnrollmentRecord, 'id' | 'status' | 'identityCertificateId' | 'previousIdentityCertificateId'>;

/** The facts a device identity is judged on, as the verifier and the binding policy read them. */
export interface IdentityFacts {
  /** Called once at the start of each request, before any other read: from then on the facts are current. */
  sync(): Promise<void>;
  getCertificate(id: string): Promise<CertificateRecord | undefined>;
  getCertificateByFingerprint(fingerprintSha256: string): Promise<CertificateRecord | undefined>;
  getBinding(certificateId: string): Promise<string | undefined>;
  getEnrollmentIdentity(id: string): Promise<EnrollmentIdentity | undefined>;
}

type Source = Pick<Store, 'identityEpoch' | 'getCertificate' | 'getCertificateByFingerprint' | 'getBinding' | 'getEnrollment'>;

const LIMIT = 50_000;

/**
 * Identity facts remembered between requests, correct with any number of instances. Every change to them moves the
 * store's identity epoch in the same transaction (a revocation, a binding, a renewal promoted, a check-out, on this
 * instance or another); `sync` reads the epoch at the start of each request and forgets everything when it moved.
 * A request therefore never judges by facts older than the last change committed before it began: a revoked or
 * superseded certificate is refused everywhere from the moment the change commits.
 *
 * Only facts that exist are remembered (an unknown fingerprint is asked again), and a read that began before the
 * cache was last emptied is not remembered, so a slow read can never put back what a newer epoch retired.
 */
export class CachedIdentityFacts implements IdentityFacts {
  #epoch = -1;
  /** Incremented whenever the maps are emptied; a read remembers its result only if it did not change meanwhile. */
  #generation = 0;
  readonly #certificates = new Map<string, CertificateRecord>();
  readonly #byFingerprint = new Map<string, CertificateRecord>();
  readonly #bindings = new Map<string, string>();
  readonly #enrollments = new Map<string, EnrollmentIdentity>();

  constructor(private readonly store: Source) {}

  async sync(): Promise<void> {
    const epoch = await this.store.identityEpoch();
    // Replies may come back out of order (a pool of connections): the epoch only moves forward.
    if (epoch > this.#epoch) {
      this.#forget();
      this.#epoch = epoch;
    }
  }

  #forget(): void {
    this.#generation++;
    this.#certificates.clear();
    this.#byFingerprint.clear();
    this.#bindings.clear();
    this.#enrollments.clear();
  }

  async #remembered<K, V>(map: Map<K, V>, key: K, read: () => Promise<V | undefined>): Promise<V | undefined> {
    const hit = map.get(key);
    if (hit !== undefined) return hit;
    const generation = this.#generation;
    const value = await read();
    if (value !== undefined && generation === this.#generation) {
      if (map.size >= LIMIT) map.delete(map.keys().next().value!);
      map.set(key, value);
    }
    return value;
  }

  getCertificate(id: string): Promise<CertificateRecord | undefined> {
    return this.#remembered(this.#certificates, id, () => this.store.getCertificate(id));
  }

  getCertificateByFingerprint(fingerprintSha256: string): Promise<CertificateRecord | undefined> {
    return this.#remembered(this.#byFingerprint, fingerprintSha256, () => this.store.getCertificateByFingerprint(fingerprintSha256));
  }

  getBinding(certificateId: string): Promise<string | undefined> {
    return this.#remembered(this.#bindings, certificateId, () => this.store.getBinding(certificateId));
  }

  getEnrollmentIdentity(id: string): Promise<EnrollmentIdentity | undefined> {
    return this.#remembered(this.#enrollments, id, async () => {
      const e = await this.store.getEnrollment(id);
      return (
        e && {
          id: e.id,
          status: e.status,
          identityCertificateId: e.identityCertificateId,
          previousIdentityCertificateId: e.previousIdentityCertificateId,
        }
      );
    });
  }
}
