import type { Store } from '../../../src/store/types.ts';
import { adminConformance } from './admin.ts';
import { consoleConformance } from './console.ts';
import { commandConformance } from './commands.ts';
import { deliveryConformance } from './deliveries.ts';
import { enrollmentLinkConformance } from './enrollment-links.ts';
import { enrollmentConformance } from './enrollments.ts';
import { inventoryConformance } from './inventory.ts';
import { metaConformance } from './meta.ts';
import { pushConformance } from './push.ts';
import { withStoreOf } from './support.ts';

/**
 * The storage contract, one part per store interface. Every backend runs all of it; a backend that passes it can
 * stand in for any other.
 */
export function storeConformance(backend: string, open: () => Promise<Store>): void {
  metaConformance(withStoreOf(backend, 'meta', open));
  inventoryConformance(withStoreOf(backend, 'inventory', open));
  enrollmentLinkConformance(withStoreOf(backend, 'enrollment links', open));
  enrollmentConformance(withStoreOf(backend, 'enrollments', open));
  pushConformance(withStoreOf(backend, 'push', open));
  deliveryConformance(withStoreOf(backend, 'deliveries', open));
  commandConformance(withStoreOf(backend, 'commands', open));
  adminConformance(withStoreOf(backend, 'admin', open));
  consoleConformance(withStoreOf(backend, 'console', open));
}
