import { describe, expect, test } from 'vitest';
import { parseAgentConfig } from '../config/index.js';
import { createDispatchLedger, OverCommitError } from './index.js';

const ledger = () =>
  createDispatchLedger({
    capacity: (_t, direction) => (direction === 'export' ? 1000n : direction === 'reduction' ? 300n : 0n),
    priorities: ['deals', 'demand-response', 'pool'],
  });

describe('the dispatch ledger', () => {
  test('never commits the same capacity twice across services', () => {
    const l = ledger();
    l.commit({ key: 'deal:a', service: 'deals', interval: 5n, direction: 'export', wh: 600n });
    expect(l.available(5n, 'export')).toBe(400n);
    expect(() =>
      l.commit({ key: 'pool:5', service: 'pool', interval: 5n, direction: 'export', wh: 401n }),
    ).toThrow(OverCommitError);
    l.commit({ key: 'pool:5', service: 'pool', interval: 5n, direction: 'export', wh: 400n });
    expect(l.available(5n, 'export')).toBe(0n);
    // Other intervals and directions are untouched.
    expect(l.available(6n, 'export')).toBe(1000n);
    expect(l.available(5n, 'reduction')).toBe(300n);
  });

  test('releases and resizes within what is left', () => {
    const l = ledger();
    l.commit({ key: 'deal:a', service: 'deals', interval: 1n, direction: 'export', wh: 600n });
    l.commit({ key: 'deal:b', service: 'deals', interval: 1n, direction: 'export', wh: 400n });
    expect(() => l.resize('deal:a', 1n, 'export', 601n)).toThrow(
      /cannot commit 601 Wh of export in interval 1/,
    );
    l.resize('deal:a', 1n, 'export', 100n);
    expect(l.available(1n, 'export')).toBe(500n);
    l.release('deal:b');
    expect(l.available(1n, 'export')).toBe(900n);
  });

  test('orders requests by the owner priorities', () => {
    const l = createDispatchLedger({ capacity: () => 0n, priorities: ['pool', 'deals', 'demand-response'] });
    const ordered = l.byPriority([
      { service: 'deals' as const },
      { service: 'demand-response' as const },
      { service: 'pool' as const },
    ]);
    expect(ordered.map((r) => r.service)).toEqual(['pool', 'deals', 'demand-response']);
  });

  test('error: a config names the field, what was received and what was expected', () => {
    expect(() =>
      parseAgentConfig({ cell: '0', zone: 'Z!', meter: '0x12', profile: { loadWh: [], generationWh: [1] } }),
    ).toThrow(/cell: .*\n?.*zone: 1-32 lower-case letters/s);
  });
});
