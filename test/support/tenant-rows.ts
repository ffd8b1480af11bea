import type { Database } from '../../src/database/database.js';

/**
 * The rows of one statement run in its own transaction of one tenant (row-level security shows
 * that tenant's rows only): for tests that look at, or age, what the service stored.
 */
export async function tenantRows<T = Record<string, unknown>>(
  app: { database: Database },
  tenantId: string,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  return app.database.transaction({ tenant: tenantId }, async (tx) => (await tx.query<T>(sql, params)).rows);
}
