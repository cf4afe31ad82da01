import { join } from 'node:path';
import { mintApiToken } from '../../src/admin/tokens.ts';
import type { RawOptions } from '../../src/config.ts';
import assert from 'node:assert/strict';
import { checkIn, enrollTestDevice, mdmSignature, type SignatureForm, type TestDevice } from '../helpers/device.ts';
import { scepFixture } from '../scep/fixture.ts';
import { storedState } from '../helpers/state.ts';

export const CHECKIN = 'application/x-apple-aspen-mdm-checkin';
export const SERVER = 'application/x-apple-aspen-mdm';

/** The in-process server with helpers to speak MDM as a device and to read the stored MDM state. */
export async function mdmFixture(flags: RawOptions = {}) {
  const f = await scepFixture(flags);
  const { token } = await mintApiToken(f.app.store, () => new Date(), 'test');
  const dbPath = join(f.app.config.dataDir, 'certmdm.db');
  const send = (body: Buffer, headers: Record<string, string>, options: { path?: string; remoteAddress?: string } = {}) =>
    f.server.inject({ method: 'PUT', url: options.path ?? '/mdm/checkin', payload: body, headers, remoteAddress: options.remoteAddress });
  /** A check-in or report from `device`, signed in Apple's form unless told otherwise. */
  const speak = (
    device: TestDevice,
    message: Record<string, unknown>,
    options: { form?: SignatureForm; path?: string; contentType?: string } = {},
  ) => {
    const body = checkIn(device, message);
    return send(
      body,
      {
        'content-type': options.contentType ?? (message.MessageType ? CHECKIN : SERVER),
        'mdm-signature': mdmSignature(body, device, options.form),
      },
      { path: options.path ?? (message.MessageType ? '/mdm/checkin' : '/mdm/server') },
    );
  };
  return {
    ...f,
    // Spreading copies a getter's value once: keep the RA live.
    get ra() {
      return f.ra;
    },
    token,
    speak,
    send,
    admin: (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown, headers: Record<string, string> = {}) =>
      f.server.inject({ method, url, payload: payload as never, headers: { authorization: `Bearer ${token}`, ...headers } }),
    /**
     * A device enrolled as a real one does it: a SCEP identity, Authenticate (with `info`: DeviceName, SerialNumber, …)
     * and TokenUpdate for `topic`.
     */
    enrolled: async (udid: string, topic: string, info: Record<string, string> = { DeviceName: 'x', Model: 'm', ModelName: 'n' }) => {
      const device = await enrollTestDevice(f, udid);
      const authenticated = await speak(device, { MessageType: 'Authenticate', Topic: topic, ...info });
      assert.equal(authenticated.statusCode, 200, authenticated.body);
      const token = {
        MessageType: 'TokenUpdate',
        Topic: topic,
        Token: { $data: Buffer.from(`${udid}-token`).toString('base64') },
        PushMagic: 'm',
      };
      assert.equal((await speak(device, token)).statusCode, 200);
      return device;
    },
    /** Every MDM table and every certificate's status, for "stored state unchanged" assertions. */
    state: () => storedState(dbPath),
  };
}
