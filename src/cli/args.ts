import { parseArgs, type ParseArgsConfig } from 'node:util';
import { OPTIONS, resolveConfig, type Config, type RawOptions } from '../config.ts';
import { OperatorError, messageOf } from '../errors.ts';

type Extra = NonNullable<ParseArgsConfig['options']>;

/** Parses a command's arguments: the shared data-directory options plus the command's own. */
export function parseCommand(argv: string[], extra: Extra = {}): { config: Config; values: RawOptions; positionals: string[] } {
  const options: Extra = { ...extra, help: { type: 'boolean', short: 'h' } };
  for (const o of OPTIONS) options[o.flag] = { type: 'string', multiple: o.kind === 'list' };
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new OperatorError(`${messageOf(err).split('\n')[0]} (see --help)`, 2);
  }
  const values = parsed.values as RawOptions;
  return { config: resolveConfig(values), values, positionals: parsed.positionals };
}
