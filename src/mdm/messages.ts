import type { PlistDict } from '../plist/types.ts';
import type { ChannelKey } from '../store/types.ts';

/** A malformed MDM message: HTTP 400. */
export class MessageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MessageError';
  }
}

export const CHECKIN_TYPES = [
  'Authenticate',
  'TokenUpdate',
  'CheckOut',
  'SetBootstrapToken',
  'GetBootstrapToken',
  'UserAuthenticate',
  'DeclarativeManagement',
  'GetToken',
] as const;
export type CheckInType = (typeof CHECKIN_TYPES)[number];

export const REPORT_STATUSES = ['Idle', 'Acknowledged', 'Error', 'CommandFormatError', 'NotNow'] as const;
export type ReportStatus = (typeof REPORT_STATUSES)[number];

/**
 * Who a message speaks for. The identity certificate belongs to the device channel (`deviceId`: UDID, or the
 * EnrollmentID of a User Enrollment); a user channel (macOS user, Shared iPad user, User Enrollment user) rides on
 * it and has its own command queue. `key` names the queue structurally: (deviceId, user id or null).
 */
export interface Channel {
  deviceId: string;
  kind: 'device' | 'user-enrollment';
  key: ChannelKey;
  user?: { id: string; userId: string | null; shortName: string | null; longName: string | null };
}

function text(message: PlistDict, key: string): string | undefined {
  const value = message[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) throw new MessageError(`${key} must be a non-empty string`);
  return value;
}

// C0, DEL and C1 controls: no Apple identifier has them, and they would forge lines in logs and audit views.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * An identifier that keys enrollments and queues. ':' is allowed: Apple documents no character set for UDID or
 * EnrollmentID, and queues are keyed by (enrollment, user), never by a joined string.
 */
function identifier(message: PlistDict, key: string): string | undefined {
  const value = text(message, key);
  if (value !== undefined && CONTROL.test(value)) throw new MessageError(`${key} must not contain control characters`);
  return value;
}

export function channelOf(message: PlistDict): Channel {
  const udid = identifier(message, 'UDID');
  const enrollmentId = identifier(message, 'EnrollmentID');
  if (udid && enrollmentId) throw new MessageError('a message carries UDID or EnrollmentID, not both');
  const deviceId = udid ?? enrollmentId;
  if (!deviceId) throw new MessageError('the message names no UDID or EnrollmentID');
  const kind = udid ? 'device' : 'user-enrollment';
  const userId = identifier(message, udid ? 'UserID' : 'EnrollmentUserID');
  if (!userId) return { deviceId, kind, key: { enrollmentId: deviceId, userId: null } };
  return {
    deviceId,
    kind,
    key: { enrollmentId: deviceId, userId },
    user: {
      id: userId,
      userId: text(message, 'UserID') ?? null,
      shortName: text(message, 'UserShortName') ?? null,
      longName: text(message, 'UserLongName') ?? null,
    },
  };
}

export interface CheckIn {
  type: CheckInType;
  channel: Channel;
  message: PlistDict;
}

export interface CommandReport {
  status: ReportStatus;
  commandUuid: string | null;
  channel: Channel;
  message: PlistDict;
}

/** A check-in (it has MessageType) or a command report (it has Status): one URL can serve both. */
export function readMessage(message: PlistDict): { checkIn: CheckIn } | { report: CommandReport } {
  if (message.MessageType !== undefined) {
    const type = message.MessageType;
    if (typeof type !== 'string' || !(CHECKIN_TYPES as readonly string[]).includes(type))
      throw new MessageError(`unknown MessageType ${JSON.stringify(type)}`);
    // GetBootstrapToken and SetBootstrapToken are device-channel messages from macOS, which always sends UDID.
    return { checkIn: { type: type as CheckInType, channel: channelOf(message), message } };
  }
  const status = message.Status;
  if (typeof status !== 'string' || !(REPORT_STATUSES as readonly string[]).includes(status))
    throw new MessageError('neither a check-in (MessageType) nor a command report (Status)');
  const commandUuid = status === 'Idle' ? null : (text(message, 'CommandUUID') ?? null);
  if (status !== 'Idle' && !commandUuid) throw new MessageError(`a ${status} report needs a CommandUUID`);
  return { report: { status: status as ReportStatus, commandUuid, channel: channelOf(message), message } };
}
