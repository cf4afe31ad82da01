/**
 * What the lifecycle planner sees: plain facts, no storage. `state.ts` derives them from the store; tests and the
 * simulator build them by hand.
 */
export interface CertificateFact {
  id: string;
  notBefore: Date;
  notAfter: Date;
}

export interface DeviceFact {
  id: string;
  /** The identity certificate the device uses now. */
  identity: CertificateFact | null;
  /** Root certificates the device has installed through its enrollment or trust profile. */
  anchors: string[];
  lastSeenAt: Date;
  /** When certmdm last started renewing this device's identity, if that renewal has not completed. */
  renewalStartedAt: Date | null;
}

export interface LifecycleState {
  now: Date;
  /** Active roots, oldest first: during a rollover the last one is the successor. */
  roots: CertificateFact[];
  /** The issuing intermediate. */
  intermediate: CertificateFact;
  /** The root the server's TLS chain ends in. */
  tlsRootId: string;
  tls: CertificateFact | null;
  profileSigning: CertificateFact | null;
  /** The SCEP RA: GetCACert hands it to devices, which encrypt their requests to it and check its CertRep signature. */
  scepRa: CertificateFact | null;
  push: CertificateFact | null;
  /** Enrolled devices (checked-out ones depend on nothing). */
  devices: DeviceFact[];
  /** The nominal lifetime of an identity issued now (ms): the CA must never cut one short. */
  identityLifetime: number;
  /**
   * `--rescue-grace-days` in ms (absent or 0: off). A device whose identity expired less than this ago is rescuable:
   * the MDM edge still hands it its renewal profile (src/mdm/rescue.ts), so the plan keeps renewing it.
   */
  rescueGrace?: number;
}

/** When to act, as a share of each certificate's lifetime left (so short simulated lifetimes scale). */
export interface LifecyclePolicy {
  identityRenewAt: number;
  tlsRenewAt: number;
  profileSigningRenewAt: number;
  scepRaRenewAt: number;
  intermediateRolloverAt: number;
  /** A root successor is made when this share of the current root's life is left... */
  rootRolloverAt: number;
  /** ...and the TLS chain switches to it at the latest when this share is left, stragglers or not. */
  rootSwitchDeadlineAt: number;
  /** A renewal that has not completed after this share of the identity's lifetime puts the device at risk. */
  renewalOverdueAfter: number;
  pushWarningDays: number[];
}

export const DEFAULT_POLICY: LifecyclePolicy = {
  // 40%: a device online about once a month still meets a 90-day identity's renewal window (36 days).
  identityRenewAt: 0.4,
  tlsRenewAt: 0.25,
  profileSigningRenewAt: 0.25,
  scepRaRenewAt: 0.25,
  intermediateRolloverAt: 0.3,
  rootRolloverAt: 0.3,
  rootSwitchDeadlineAt: 0.1,
  renewalOverdueAfter: 0.2,
  pushWarningDays: [60, 30, 14, 7, 1],
};

export type Action =
  | { kind: 'renew-identity'; deviceId: string; deadline: Date; reason: string }
  /** `dependency`: the certificate that will cost the device: its identity, or the root the TLS chain moves to. */
  | { kind: 'device-at-risk'; deviceId: string; dependency: 'identity' | 'root'; deadline: Date; reason: string }
  | { kind: 'reissue-tls'; deadline: Date; reason: string }
  | { kind: 'reissue-profile-signing'; deadline: Date; reason: string }
  | { kind: 'reissue-scep-ra'; deadline: Date; reason: string }
  | { kind: 'rollover-intermediate'; deadline: Date; reason: string }
  | { kind: 'create-root-successor'; deadline: Date; reason: string }
  | { kind: 'deliver-root'; deviceId: string; rootId: string; deadline: Date; reason: string }
  | { kind: 'switch-tls-root'; rootId: string; deadline: Date; stragglers: string[]; reason: string }
  | { kind: 'push-certificate-expiring'; deadline: Date; reason: string };
