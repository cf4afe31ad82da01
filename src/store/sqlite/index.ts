import { composeStore } from '../compose.ts';
import type { Store } from '../types.ts';
import { SqliteAdmin } from './admin.ts';
import { SqliteConsole } from './console.ts';
import { SqliteCommands } from './commands.ts';
import { SqliteDb, SqliteMeta, type SqliteOptions } from './connection.ts';
import { SqliteDeliveries } from './deliveries.ts';
import { SqliteEnrollmentLinks } from './enrollment-links.ts';
import { SqliteEnrollments } from './enrollments.ts';
import { SqliteInventory } from './inventory.ts';
import { SqlitePush } from './push.ts';

export type { SqliteOptions } from './connection.ts';

/** The embedded default: one SQLite file (WAL), every store part over the same connection. */
export const SqliteStore = {
  /** Opens (creating if absent) and configures the database; does not migrate. */
  open(path: string, options: SqliteOptions = {}): Store {
    const db = SqliteDb.open(path, options);
    return composeStore({
      meta: new SqliteMeta(db),
      inventory: new SqliteInventory(db),
      enrollmentLinks: new SqliteEnrollmentLinks(db),
      enrollments: new SqliteEnrollments(db),
      push: new SqlitePush(db),
      deliveries: new SqliteDeliveries(db),
      commands: new SqliteCommands(db),
      admin: new SqliteAdmin(db),
      console: new SqliteConsole(db),
    });
  },
};
