import type { PushImportPreview } from '../../push/certificate.ts';
import { day, html, csrfField, raw, type Html, type PageContext } from '../html.ts';
import { qrSvg } from '../qr.ts';

/** Request types an administrator may enqueue from the console: queries and a few device actions without payloads. */
export const CONSOLE_COMMANDS = [
  'DeviceInformation',
  'SecurityInfo',
  'ProfileList',
  'CertificateList',
  'InstalledApplicationList',
  'ProvisioningProfileList',
  'RestartDevice',
] as const;

export function actionsPage(ctx: PageContext, pushTopic: string | null): Html {
  return html` <form method="post" action="/console/actions/enrollment-link" class="card" id="enrollment-link-form">
      ${csrfField(ctx)}
      <h2>Enrollment link</h2>
      <p class="muted">
        A one-time link to an enrollment profile (signed; roots before the MDM payload), with a QR code for a device's camera. Give a UDID
        to re-enroll that device: only its identity may take over its enrollment.
      </p>
      <label for="identity">Identity</label
      ><select id="identity" name="identity">
        <option value="scep">SCEP (the key never leaves the device)</option>
        <option value="pkcs12">PKCS#12</option>
      </select>
      <label for="ttlHours">Valid for (hours)</label><input id="ttlHours" type="number" name="ttlHours" min="1" max="8760" value="72" />
      <label for="device">Re-enroll device (UDID or EnrollmentID, optional)</label><input id="device" type="text" name="device" />
      <p><button type="submit">Create link…</button></p>
    </form>
    <form method="post" action="/console/actions/push-certificate" enctype="multipart/form-data" class="card" id="push-form">
      ${csrfField(ctx)}
      <h2>Push certificate</h2>
      <p class="muted">
        Apple's MDM push certificate (PEM or DER for a CSR made here, or PKCS#12 with its key). It is checked first — topic, validity, key —
        and nothing changes until you confirm.
        ${pushTopic ? html`Its topic must stay <code>${pushTopic}</code>: enrolled devices accept pushes for that topic only.` : 'No push certificate is installed yet.'}
      </p>
      <label for="certificate">Certificate file</label><input id="certificate" type="file" name="certificate" />
      <label for="password">PKCS#12 password (if any)</label><input id="password" type="password" name="password" autocomplete="off" />
      <p><button type="submit">Check…</button></p>
    </form>
    <form method="post" action="/console/actions/rotate" class="card" id="rotate-form">
      ${csrfField(ctx)}
      <h2>Rotate now</h2>
      <p class="muted">
        Re-issue a server certificate before its planned date (a suspected key compromise, a changed name). Devices keep working: the chain
        stays under the same root.
      </p>
      <label for="what">Certificate</label
      ><select id="what" name="what">
        <option value="tls">TLS certificate</option>
        <option value="intermediate">Intermediate CA (and every leaf it signs)</option>
      </select>
      <p><button type="submit">Rotate…</button></p>
    </form>
    <form method="post" action="/console/actions/command" class="card" id="command-form">
      ${csrfField(ctx)}
      <h2>Enqueue a command</h2>
      <label for="devices">Devices (UDID or EnrollmentID, one per line)</label><textarea id="devices" name="devices" rows="3"></textarea>
      <label for="requestType">Command</label
      ><select id="requestType" name="requestType">
        ${CONSOLE_COMMANDS.map((c) => html`<option value="${c}">${c}</option>`)}
      </select>
      <p><button type="submit">Enqueue…</button></p>
    </form>`;
}

/** The confirmation of an action: what it will do, then the same fields again with confirm=yes. */
export function confirmPage(ctx: PageContext, action: string, fields: Record<string, string>, consequences: Html): Html {
  return html`<div class="card" id="confirm">
    ${consequences}
    <form method="post" action="${action}">
      ${csrfField(ctx)}${Object.entries(fields)
        .filter(([k]) => k !== 'csrf' && k !== 'confirm')
        .map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}" />`)}<input type="hidden" name="confirm" value="yes" />
      <button type="submit" id="confirm-button">Confirm</button> <a href="/console/actions">Cancel</a>
    </form>
  </div>`;
}

export function enrollmentLinkResult(link: { url: string; expiresAt: Date; device: string | null; identity: string }): Html {
  return html`<div class="notice success">
      Enrollment link created${link.device ? html` for re-enrolling <strong>${link.device}</strong>` : ''}. It works once and expires
      ${day(link.expiresAt)}; copy it now — certmdm keeps only its hash.
    </div>
    <div class="card">
      <p><a id="enrollment-url" href="${link.url}">${link.url}</a></p>
      <div class="qr" id="enrollment-qr">${raw(qrSvg(link.url, 'enrollment link'))}</div>
      <p class="muted">
        Identity by ${link.identity === 'scep' ? 'SCEP' : 'PKCS#12'}. Open it on the device (or scan the code) and install the profile.
      </p>
    </div>`;
}

export function pushPreview(ctx: PageContext, preview: PushImportPreview, pending: string): Html {
  return html`<div class="card" id="push-preview">
    <p class="notice success">
      The topic check passed:
      ${preview.current ? html`the new certificate keeps topic <code>${preview.topic}</code>, so every enrolled device keeps receiving pushes` : html`no certificate is installed yet; devices will enroll with topic <code>${preview.topic}</code>`}.
    </p>
    <dl class="facts">
      <dt>Topic</dt>
      <dd>${preview.topic}</dd>
      <dt>Valid</dt>
      <dd>${day(preview.notBefore)} → ${day(preview.notAfter)}</dd>
      <dt>Key</dt>
      <dd>${preview.keySource === 'csr' ? 'the key of a CSR made here' : 'the key in the uploaded file'}</dd>
      ${
        preview.current
          ? html`<dt>Replaces</dt>
              <dd>
                the certificate expiring ${day(preview.current.notAfter)} (<span class="mono"
                  >${preview.current.fingerprintSha256.slice(0, 16)}</span
                >)
              </dd>`
          : ''
      }
    </dl>
    <form method="post" action="/console/actions/push-certificate/confirm">
      ${csrfField(ctx)}<input type="hidden" name="pending" value="${pending}" /><button type="submit" id="confirm-button">
        Install this push certificate
      </button>
      <a href="/console/actions">Cancel</a>
    </form>
  </div>`;
}
