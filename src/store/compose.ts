import type { Store, StoreParts } from './types.ts';

/**
 * One Store from its parts: the methods each part's own class defines (not the helpers of a shared base class), bound
 * to the part. A name two parts both define is a programming error, caught when the store is made rather than by a
 * call that reaches the wrong part.
 */
export function composeStore(parts: StoreParts): Store {
  const store: Record<string, unknown> = { backend: parts.meta.backend };
  for (const [concern, part] of Object.entries(parts) as [string, object][]) {
    for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(part))) {
      const member = (part as Record<string, unknown>)[name];
      if (name === 'constructor' || typeof member !== 'function') continue;
      if (name in store) throw new Error(`store parts overlap: ${name} is defined again by ${concern}`);
      store[name] = member.bind(part);
    }
  }
  return store as unknown as Store;
}
