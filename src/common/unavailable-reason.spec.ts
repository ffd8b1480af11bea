import { describe, expect, it } from 'vitest';
import { unavailableReason } from './errors.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

describe('unavailableReason', () => {
  it('names the first error code along the cause chain, the driver error of an ORM error included', () => {
    expect(unavailableReason(withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'))).toBe('ECONNREFUSED');
    expect(
      unavailableReason(
        Object.assign(new Error('terminating connection due to administrator command'), { driverError: { code: '57P01' } }),
      ),
    ).toBe('57P01');
    expect(unavailableReason(new Error('discovery failed', { cause: withCode('request timed out', 'OAUTH_TIMEOUT') }))).toBe(
      'OAUTH_TIMEOUT',
    );
  });

  it('tells a wait that ran out from a connection that was lost, and never repeats a message', () => {
    expect(unavailableReason(new Error('timeout exceeded when trying to connect'))).toBe('timeout');
    expect(unavailableReason(new Error('Connection terminated due to connection timeout'))).toBe('timeout');
    expect(unavailableReason(new Error('Query read timeout'))).toBe('timeout');
    expect(unavailableReason(new DOMException('The operation was aborted due to timeout', 'TimeoutError'))).toBe('timeout');
    expect(unavailableReason(new Error('Connection terminated unexpectedly'))).toBe('connection terminated');
    expect(unavailableReason(new TypeError('value alice@example.test is not valid'))).toBe('TypeError');
    expect(unavailableReason('not an error')).toBe('unknown');
  });
});
