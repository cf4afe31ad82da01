/**
 * The planner's read of the fleet, in SQL both backends run as written (named parameters, casts spelled the way
 * SQLite and PostgreSQL both accept): the devices, and the roots each has installed from the same three sources as
 * `installedAnchors` — its identity's enrollment profile (by SCEP challenge or PKCS#12 identity), which are also its
 * profile anchors, and every delivery it acknowledged. With `due`, only the devices whose identity's renewal window
 * (notAfter - share × lifetime) has opened by @at: one primary-key lookup per enrolled device.
 */
export function enrolledDevicesSql(due: boolean): { devices: string; anchors: string } {
  const onlyDue = due
    ? `AND (SELECT w.not_after - CAST(@share AS DOUBLE PRECISION) * (w.not_after - w.not_before) FROM certificates w
         WHERE w.id = e.identity_certificate_id) <= CAST(@at AS BIGINT)`
    : '';
  const dueDeliveries = due ? `AND d.enrollment_id IN (SELECT e.id FROM enrollments e WHERE e.status = 'enrolled' ${onlyDue})` : '';
  return {
    devices: `SELECT e.id, e.last_seen_at, e.renewal_started_at, c.id AS certificate_id, c.not_before, c.not_after
       FROM enrollments e LEFT JOIN certificates c ON c.id = e.identity_certificate_id
       WHERE e.status = 'enrolled' ${onlyDue} ORDER BY e.enrolled_at, e.id`,
    anchors: `SELECT e.id AS enrollment_id, pc.certificate_id, 1 AS from_profile FROM enrollments e
         JOIN scep_challenges ch ON ch.certificate_id = e.identity_certificate_id
         JOIN profiles p ON p.challenge_id = ch.id
         JOIN profile_certificates pc ON pc.profile_id = p.id AND pc.role = 'anchor'
       WHERE e.status = 'enrolled' ${onlyDue}
       UNION
       SELECT e.id, pc.certificate_id, 1 FROM enrollments e
         JOIN profile_certificates pi ON pi.certificate_id = e.identity_certificate_id AND pi.role = 'identity'
         JOIN profile_certificates pc ON pc.profile_id = pi.profile_id AND pc.role = 'anchor'
       WHERE e.status = 'enrolled' ${onlyDue}
       UNION
       SELECT d.enrollment_id, pc.certificate_id, 0 FROM profile_deliveries d
         JOIN profile_certificates pc ON pc.profile_id = d.profile_id AND pc.role = 'anchor'
       WHERE d.acknowledged_at IS NOT NULL ${dueDeliveries}
       ORDER BY 1, 2`,
  };
}

/** Roots one device has installed (see `enrolledDevicesSql`); parameters @identity and @enrollment. */
export const INSTALLED_ANCHORS_SQL = `SELECT DISTINCT pc.certificate_id FROM profile_certificates pc WHERE pc.role = 'anchor' AND pc.profile_id IN (
     SELECT p.id FROM profiles p JOIN scep_challenges c ON c.id = p.challenge_id WHERE c.certificate_id = @identity
     UNION SELECT profile_id FROM profile_certificates WHERE certificate_id = @identity AND role = 'identity'
     UNION SELECT profile_id FROM profile_deliveries WHERE enrollment_id = @enrollment AND acknowledged_at IS NOT NULL)
   ORDER BY pc.certificate_id`;

/**
 * The SET clauses that keep an enrollment's check-in rhythm (CheckInRhythm) as last_seen_at moves to `at`: a gap of
 * at least `session` ms starts a new session and enters the moving average (weight 1/4) and the longest gap. Every
 * right-hand side reads the row as it was, in both backends; `prefix` qualifies the old row's columns where needed.
 */
export function checkinRhythmSet(at: string, session: string, prefix = ''): string {
  const gap = `(${at} - ${prefix}last_seen_at)`;
  const isNew = `${gap} >= ${session}`;
  return `checkin_sessions = ${prefix}checkin_sessions + CASE WHEN ${isNew} THEN 1 ELSE 0 END,
     checkin_gap_ms = CASE WHEN ${isNew} THEN CASE WHEN ${prefix}checkin_gap_ms IS NULL THEN ${gap}
       ELSE (3 * ${prefix}checkin_gap_ms + ${gap}) / 4 END ELSE ${prefix}checkin_gap_ms END,
     checkin_gap_max_ms = CASE WHEN ${isNew} AND (${prefix}checkin_gap_max_ms IS NULL OR ${gap} > ${prefix}checkin_gap_max_ms)
       THEN ${gap} ELSE ${prefix}checkin_gap_max_ms END`;
}
