import { DAY_MS } from '../clock.ts';
import type { CertificateRecord, Store } from '../store/types.ts';
import type { CertificateFact, DeviceFact, LifecycleState } from './model.ts';

const fact = (c: CertificateRecord): CertificateFact => ({ id: c.id, notBefore: c.notBefore, notAfter: c.notAfter });

/** The newest active certificate of a role (the one in use during a rollover). */
async function newest(store: Store, role: CertificateRecord['role']): Promise<CertificateRecord | undefined> {
  return (await store.listCertificates({ role, status: 'active' })).sort((a, b) => b.notAfter.getTime() - a.notAfter.getTime())[0];
}

/**
 * The planner's facts, read from the store. With `onlyRenewalDue` (the policy's identity renewal share), the devices
 * are only those whose identity's renewal window has opened, the only ones the planner acts on or warns about while no
 * root rollover is in progress; during one, every device is read (each may lack the successor root). `lifecycle plan`
 * reads the whole fleet, since it lists every expiry. A device's anchors are the roots it may use for ServerURL: those of the
 * profile that produced its current identity and of every profile delivery it acknowledged — or, with ServerURL
 * pinning, only the former, since the MDM payload pins exactly its own profile's roots.
 */
export async function lifecycleState(
  store: Store,
  now: Date,
  options: { pinning: boolean; identityDays: number; rescueGraceDays?: number; onlyRenewalDue?: number },
): Promise<LifecycleState> {
  const roots = (await store.listCertificates({ role: 'root', status: 'active' })).sort(
    (a, b) => a.notBefore.getTime() - b.notBefore.getTime(),
  );
  const intermediate = await newest(store, 'intermediate');
  if (!intermediate || roots.length === 0) throw new Error('the inventory has no active CA');
  const tls = await newest(store, 'tls');
  const tlsRootId = (tls?.issuerId ? (await store.getCertificate(tls.issuerId))?.issuerId : intermediate.issuerId) ?? roots[0]!.id;
  const tlsRoot = roots.find((r) => r.id === tlsRootId) ?? roots[0]!;
  const rollover = roots.at(-1)!.id !== tlsRoot.id;
  // A day's slack: the store's arithmetic is in floating point; the planner decides to the millisecond.
  const filter =
    options.onlyRenewalDue !== undefined && !rollover
      ? { renewalWindowOpenBy: { at: new Date(now.getTime() + DAY_MS), share: options.onlyRenewalDue } }
      : undefined;
  const devices: DeviceFact[] = (await store.listEnrolledDevices(filter)).map((d) => ({
    id: d.id,
    identity: d.identity,
    anchors: options.pinning ? d.profileAnchors : d.anchors,
    lastSeenAt: d.lastSeenAt,
    renewalStartedAt: d.renewalStartedAt,
  }));
  const profileSigning = await newest(store, 'profile-signing');
  const push = await newest(store, 'push');
  const scepRa = await newest(store, 'scep-ra');
  return {
    now,
    roots: roots.map(fact),
    intermediate: fact(intermediate),
    tlsRootId,
    tls: tls ? fact(tls) : null,
    profileSigning: profileSigning ? fact(profileSigning) : null,
    scepRa: scepRa ? fact(scepRa) : null,
    push: push ? fact(push) : null,
    devices,
    identityLifetime: options.identityDays * DAY_MS,
    rescueGrace: (options.rescueGraceDays ?? 0) * DAY_MS,
  };
}
