import type { BindingDecision, BindingFacts } from '../store/types.ts';

export interface BindingPolicyOptions {
  /**
   * Any fresh identity may take over an enrolled UDID or EnrollmentID, as other MDM servers allow. Weaker: whoever
   * obtains any identity (one enrollment link, one challenge) can take over any enrolled device. Off by default.
   */
  permissiveReenrollment: boolean;
}

/**
 * Who may become an enrollment's identity. An identity serves the enrollment it was minted for: a RenewalReq, a
 * renewal profile's challenge and a re-enrollment link mint identities for one named enrollment; a plain enrollment
 * link or challenge mints one that may only start a new enrollment. Pure: the store applies it to the facts it reads
 * inside the transaction that makes the change, so concurrent Authenticates cannot race past it.
 */
export function bindingPolicy(options: BindingPolicyOptions): (facts: BindingFacts) => BindingDecision {
  return (facts) => {
    const { claimed, certificate, boundTo, enrollment } = facts;
    if (certificate.role !== 'device-identity')
      return { refuse: 'not-a-device-identity', message: 'the certificate is not a device identity' };
    if (boundTo !== null && boundTo !== claimed)
      return { refuse: 'bound-to-another-enrollment', message: 'the certificate is bound to another enrollment' };
    if (certificate.status !== 'active' || certificate.notAfter <= facts.now)
      return { refuse: 'identity-retired', message: `the identity is ${certificate.status === 'active' ? 'expired' : certificate.status}` };
    if (boundTo === claimed) {
      // Bound here before: only the enrollment's current identity may authenticate again.
      if (enrollment?.identityCertificateId !== certificate.id)
        return { refuse: 'identity-retired', message: 'the identity was replaced by a renewal and may not become current again' };
      return { allow: enrollment.status === 'enrolled' ? 're-authenticate' : 'fresh' };
    }
    const enrolled = enrollment?.status === 'enrolled';
    if (certificate.servesEnrollment !== null) {
      if (certificate.servesEnrollment !== claimed)
        return { refuse: 'minted-for-another-enrollment', message: 'the identity was minted for another enrollment' };
      // A RenewalReq's identity speaks for the identity that signed it, so only while that one is still the
      // enrollment's current identity: once a fresh enrollment or a re-enrollment link replaced it, whoever kept the
      // old key must not take the enrollment back with an identity minted from it beforehand.
      if (certificate.renewalOf !== null && certificate.renewalOf !== enrollment?.identityCertificateId)
        return {
          refuse: 'identity-retired',
          message: "the identity renews one that is no longer the enrollment's current identity",
        };
      return { allow: enrolled ? 'renewal' : 'fresh' };
    }
    if (!enrolled) return { allow: 'fresh' };
    if (options.permissiveReenrollment) return { allow: 'renewal' };
    return {
      refuse: 'enrollment-exists',
      message: 'the device is enrolled; only an identity minted for its enrollment (renewal or re-enrollment link) may take it over',
    };
  };
}
