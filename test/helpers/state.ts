import Database from 'better-sqlite3';

/** Every MDM table and every certificate's status, for "stored state unchanged" assertions. */
export function storedState(dbPath: string): Record<string, string> {
  const db = new Database(dbPath, { readonly: true });
  try {
    const dump = (sql: string) =>
      JSON.stringify(db.prepare(sql).all(), (_k, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v));
    return {
      enrollments: dump('SELECT * FROM enrollments ORDER BY id'),
      bindings: dump('SELECT * FROM certificate_bindings ORDER BY certificate_id'),
      userChannels: dump('SELECT * FROM user_channels ORDER BY enrollment_id, user_id'),
      commands: dump('SELECT * FROM commands ORDER BY uuid'),
      queue: dump('SELECT * FROM command_queue ORDER BY seq'),
      certificates: dump('SELECT id, status, superseded_by FROM certificates ORDER BY id'),
    };
  } finally {
    db.close();
  }
}
