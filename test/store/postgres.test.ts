import { after } from 'node:test';
import { PostgresStore } from '../../src/store/postgres/index.ts';
import { startPostgres } from '../helpers/postgres.ts';
import { storeConformance } from './conformance/index.ts';

const cluster = await startPostgres();
after(() => cluster.stop());

storeConformance('postgres', async () => PostgresStore.open(await cluster.createDatabase()));
