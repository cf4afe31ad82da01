/**
 * A connection string as messages show it: no password, wherever the string carries one (user info, even with an
 * '@' in it, or a `password` parameter). Anything that does not parse as a URL is not shown at all.
 */
export function redacted(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'postgres://(unreadable connection string)';
  }
  if (parsed.password) parsed.password = '***';
  for (const key of [...parsed.searchParams.keys()]) if (/pass/i.test(key)) parsed.searchParams.set(key, '***');
  return parsed.toString();
}
