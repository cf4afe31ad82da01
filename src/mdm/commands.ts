import { randomUUID } from 'node:crypto';
import { parsePlistDict, PlistError } from '../plist/parse.ts';
import { serializePlist } from '../plist/serialize.ts';
import { PlistReal, type PlistDict } from '../plist/types.ts';

export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

export interface BuiltCommand {
  uuid: string;
  requestType: string;
  body: Buffer;
}

/** A real a device's plist reader can read: `<real>Infinity</real>` or NaN would be sent and never understood. */
function assertFinite(value: unknown): void {
  if (value instanceof PlistReal && !Number.isFinite(value.value)) throw new CommandError('a <real> in the command is not a finite number');
  if (Array.isArray(value)) value.forEach(assertFinite);
  else if (value && typeof value === 'object' && !Buffer.isBuffer(value) && !(value instanceof Date))
    Object.values(value).forEach(assertFinite);
}

function finish(command: PlistDict, uuid: string = randomUUID().toUpperCase()): BuiltCommand {
  const requestType = command.RequestType;
  if (typeof requestType !== 'string' || !/^[A-Za-z]+$/.test(requestType)) throw new CommandError('Command.RequestType must be a name');
  assertFinite(command);
  return { uuid, requestType, body: serializePlist({ CommandUUID: uuid, Command: command }) };
}

/**
 * A raw plist command as NanoMDM takes it: `{CommandUUID?, Command: {RequestType, ...}}`. A missing CommandUUID is
 * generated.
 */
export function commandFromPlist(raw: Buffer): BuiltCommand {
  let dict: PlistDict;
  try {
    dict = parsePlistDict(raw);
  } catch (err) {
    throw new CommandError(`not a property list: ${(err as PlistError).message}`);
  }
  const command = dict.Command;
  if (!command || typeof command !== 'object' || Array.isArray(command) || Buffer.isBuffer(command) || command instanceof Date)
    throw new CommandError('the plist has no Command dictionary');
  const uuid = dict.CommandUUID;
  if (uuid !== undefined && (typeof uuid !== 'string' || !/^[A-Za-z0-9._-]{1,128}$/.test(uuid)))
    throw new CommandError('CommandUUID must be a short identifier');
  return finish(command as PlistDict, uuid as string | undefined);
}

const DEVICE_INFORMATION_DEFAULT_QUERIES = [
  'DeviceName',
  'Model',
  'ModelName',
  'OSVersion',
  'BuildVersion',
  'SerialNumber',
  'UDID',
  'IsSupervised',
];

/** JSON for the common commands, e.g. `{"RequestType":"InstallProfile","Payload":"<base64>"}`. */
export function commandFromJson(input: unknown): BuiltCommand {
  if (!input || typeof input !== 'object' || Array.isArray(input)) throw new CommandError('the command must be a JSON object');
  const body = input as Record<string, unknown>;
  switch (body.RequestType) {
    case 'DeviceInformation': {
      const queries = body.Queries ?? DEVICE_INFORMATION_DEFAULT_QUERIES;
      if (!Array.isArray(queries) || !queries.every((q) => typeof q === 'string'))
        throw new CommandError('Queries must be an array of strings');
      return finish({ RequestType: 'DeviceInformation', Queries: queries as string[] });
    }
    case 'ProfileList':
    case 'CertificateList':
    case 'SecurityInfo':
      return finish({
        RequestType: body.RequestType,
        ...(body.RequestType === 'ProfileList' && typeof body.ManagedOnly === 'boolean' ? { ManagedOnly: body.ManagedOnly } : {}),
      });
    case 'InstallProfile': {
      if (typeof body.Payload !== 'string' || !/^[A-Za-z0-9+/=\s]+$/.test(body.Payload))
        throw new CommandError('InstallProfile needs Payload as base64');
      return finish({ RequestType: 'InstallProfile', Payload: Buffer.from(body.Payload, 'base64') });
    }
    case 'RemoveProfile': {
      if (typeof body.Identifier !== 'string' || !body.Identifier) throw new CommandError('RemoveProfile needs Identifier');
      return finish({ RequestType: 'RemoveProfile', Identifier: body.Identifier });
    }
    default:
      throw new CommandError(
        `JSON commands are DeviceInformation, ProfileList, InstallProfile, RemoveProfile, CertificateList and SecurityInfo; send other commands as a plist`,
      );
  }
}
