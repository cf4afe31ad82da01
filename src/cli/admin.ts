import { readFileSync } from 'node:fs';
import type { AppContext } from '../app/context.ts';
import { hashPassword, passwordAcceptable, PASSWORD_RULE } from '../console/passwords.ts';
import { OperatorError } from '../errors.ts';
import { ConflictError } from '../store/types.ts';

export const ADMIN_NAME_RULE = 'an administrator name has 1 to 64 letters, digits and . _ @ -';
const NAME = /^[A-Za-z0-9._@-]{1,64}$/;

/**
 * The password of `admin create|passwd`: CERTMDM_ADMIN_PASSWORD, else the first line of standard input — never an
 * argument, which other users of the machine could read in the process list.
 */
export function readAdminPassword(env: NodeJS.ProcessEnv = process.env): string {
  const password = env.CERTMDM_ADMIN_PASSWORD ?? readFileSync(0, 'utf8').split(/\r?\n/)[0] ?? '';
  if (!passwordAcceptable(password)) throw new OperatorError(`${PASSWORD_RULE} (from CERTMDM_ADMIN_PASSWORD or standard input)`, 2);
  return password;
}

/** certmdm admin create|passwd|list|delete: the console's administrators. */
export async function adminCommand(app: AppContext, sub: string, name: string | undefined, json: boolean): Promise<string> {
  const named = () => {
    if (!name || !NAME.test(name)) throw new OperatorError(`--name: ${ADMIN_NAME_RULE}`, 2);
    return name;
  };
  const now = app.clock();
  switch (sub) {
    case 'create': {
      const account = named();
      const passwordHash = await hashPassword(readAdminPassword());
      try {
        await app.store.insertAdminAccount({ name: account, passwordHash, createdAt: now, passwordChangedAt: now, lastLoginAt: null });
      } catch (err) {
        if (err instanceof ConflictError)
          throw new OperatorError(`an administrator named ${account} already exists (certmdm admin passwd to change the password)`);
        throw err;
      }
      await app.audit.record({ actor: 'cli', action: 'console.admin-created', target: account, outcome: 'ok' });
      return `administrator ${account} created; log in at /console`;
    }
    case 'passwd': {
      const account = named();
      const passwordHash = await hashPassword(readAdminPassword());
      if (!(await app.store.setAdminPassword(account, passwordHash, now))) throw new OperatorError(`no administrator named ${account}`);
      await app.audit.record({
        actor: 'cli',
        action: 'console.admin-password',
        target: account,
        outcome: 'ok',
        reason: 'every session of the account ended',
      });
      return `password of ${account} changed; its sessions are ended`;
    }
    case 'delete': {
      const account = named();
      if (!(await app.store.deleteAdminAccount(account))) throw new OperatorError(`no administrator named ${account}`);
      await app.audit.record({ actor: 'cli', action: 'console.admin-deleted', target: account, outcome: 'ok' });
      return `administrator ${account} deleted`;
    }
    case 'list': {
      const accounts = (await app.store.listAdminAccounts()).map((a) => ({
        name: a.name,
        createdAt: a.createdAt.toISOString(),
        passwordChangedAt: a.passwordChangedAt.toISOString(),
        lastLoginAt: a.lastLoginAt?.toISOString() ?? null,
      }));
      return json
        ? JSON.stringify(accounts, null, 2)
        : accounts.map((a) => `${a.name}  last login ${a.lastLoginAt ?? 'never'}`).join('\n') ||
            'no administrators (certmdm admin create --name NAME)';
    }
    default:
      throw new OperatorError(`unknown admin command '${sub}'`, 2);
  }
}
