import { accessSync, chmodSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { OperatorError, messageOf } from '../errors.ts';

export interface DataDirectory {
  path: string;
  databasePath: string;
  /** True when the directory held no database before this run. */
  fresh: boolean;
}

/**
 * Makes sure the data directory exists (0700), is a directory and is writable, without touching its contents. With
 * `databaseFile: false` (the database is PostgreSQL) the directory holds the master key only, and whether the
 * deployment is fresh is the database's to say, not the directory's.
 */
export function prepareDataDir(path: string, options: { create: boolean; databaseFile?: boolean }): DataDirectory {
  const databasePath = `${path}/certmdm.db`;
  if (!existsSync(path)) {
    if (!options.create) throw new OperatorError(`no certmdm data directory at ${path}; run 'certmdm init' first`);
    try {
      mkdirSync(path, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new OperatorError(`cannot create data directory ${path}: ${messageOf(err)}`);
    }
  }
  const stat = statSync(path);
  if (!stat.isDirectory()) throw new OperatorError(`data directory ${path} is not a directory`);
  try {
    accessSync(path, constants.W_OK | constants.X_OK);
    if (existsSync(databasePath)) accessSync(databasePath, constants.R_OK | constants.W_OK);
  } catch (err) {
    throw new OperatorError(`data directory ${path} is not writable: ${messageOf(err)}`);
  }
  const fresh = options.databaseFile !== false && !existsSync(databasePath);
  if (!fresh || options.create) {
    // Keys live here, sealed or not: nobody else has any business reading the directory.
    if ((stat.mode & 0o077) !== 0) chmodSync(path, 0o700);
  }
  if (options.databaseFile !== false && fresh && !options.create)
    throw new OperatorError(`no certmdm database in ${path}; run 'certmdm init' first`);
  return { path, databasePath, fresh };
}
