import { composeStore } from '../compose.ts';
import type { Store } from '../types.ts';
import { PgAdmin } from './admin.ts';
import { PgConsole } from './console.ts';
import { PgCommands } from './commands.ts';
import { PgDb, PgMeta } from './connection.ts';
import { PgDeliveries } from './deliveries.ts';
import { PgEnrollmentLinks } from './enrollment-links.ts';
import { PgEnrollments } from './enrollments.ts';
import { PgInventory } from './inventory.ts';
import { PgPush } from './push.ts';

/** PostgreSQL (`--store postgres://…`): every store part over one pool; several instances may share the database. */
export const PostgresStore = {
  /** Connects lazily (the first query opens the pool's first connection); does not migrate. */
  open(url: string, options: { max?: number } = {}): Store {
    const db = PgDb.open(url, options);
    return composeStore({
      meta: new PgMeta(db),
      inventory: new PgInventory(db),
      enrollmentLinks: new PgEnrollmentLinks(db),
      enrollments: new PgEnrollments(db),
      push: new PgPush(db),
      deliveries: new PgDeliveries(db),
      commands: new PgCommands(db),
      admin: new PgAdmin(db),
      console: new PgConsole(db),
    });
  },
};
