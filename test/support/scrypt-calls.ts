/**
 * Counts node:crypto's scrypt calls during `body` (the product's named import follows the
 * spied export once syncBuiltinESMExports runs): "ran scrypt once", "refused without running
 * scrypt" are proven by the count, never by how fast something was.
 */
import { mock } from 'node:test';
import crypto from 'node:crypto';
import { syncBuiltinESMExports } from 'node:module';

export async function scryptCallsDuring(body: () => Promise<void>): Promise<number> {
  const spy = mock.method(crypto, 'scrypt');
  syncBuiltinESMExports();
  try {
    await body();
    return spy.mock.callCount();
  } finally {
    spy.mock.restore();
    syncBuiltinESMExports();
  }
}
